"""The one-pass image tower: a whole frame through CLIP's vision transformer once, patch tokens out.

Windows mode runs the image tower over hundreds of crops per frame. The frame tower runs it once
over the whole frame (resized by the caller so that one patch token covers about what it covers in
a window) and returns one embedding per patch token, comparable with the prompt embeddings.

Two things make CLIP, trained on square crops with one class token read out, do that:

* **Any frame size.** The position embeddings, learnt for a g x g grid, are interpolated
  bicubically to the frame's h x w grid (as ViT and transformers' ``interpolate_pos_encoding``
  do), inside the graph, so one exported graph serves every frame size. The patch embedding is
  the folded one of the windows graph (``towers.folded_embeddings``: raw NHWC BGR 0..255 in).
* **A dense last layer.** CLIP's last layer mixes every patch with the global summary the class
  token needs, so its patch outputs hardly say what is where. The published training-free fixes
  re-run that last layer differently; ``DENSE_HEADS`` implements four, chosen by measurement
  (docs/benchmarks.md):

  - ``maskclip``: value path only, no attention mixing (Zhou et al., "Extract Free Dense Labels
    from CLIP", ECCV 2022);
  - ``sclip``: correlative self-attention softmax(q q^T) + softmax(k k^T), residual kept, no
    feed-forward (Wang et al., "SCLIP: Rethinking Self-Attention for Dense Vision-Language
    Inference", ECCV 2024);
  - ``clearclip``: q-q attention without the residual and the feed-forward (Lan et al.,
    "ClearCLIP: Decomposing CLIP Representations for Dense Vision-Language Inference",
    ECCV 2024);
  - ``naclip``: k-k attention plus a Gaussian neighbourhood prior on the attention logits
    (standard deviation 5 patches), without the residual and the feed-forward (Hajimiri et al.,
    "Pay Attention to Your Neighbours: Training-Free Open-Vocabulary Semantic Segmentation",
    WACV 2025).

  Each output goes through the model's final layer norm and projection, as the class token does.

torch is imported inside the functions: it is the optional ``export`` extra.
"""

from __future__ import annotations

from typing import Any

from streamdet.clip.towers import folded_weights
from streamdet.config.settings import DENSE_HEADS

#: NACLIP's neighbourhood prior: standard deviation of its Gaussian, in patches.
NACLIP_SIGMA = 5.0


def _attention_weights(torch: Any, attn: Any, y: Any, head: str, grid: tuple[Any, Any]) -> Any:
    """(N, heads, T, T) attention weights of ``head`` over the layer-normed tokens ``y``."""
    n, t, width = y.shape
    heads = attn.num_heads

    def split(z: Any) -> Any:
        return z.view(n, t, heads, width // heads).transpose(1, 2)

    scale = attn.scale
    if head == "clearclip":
        q = split(attn.q_proj(y))
        return torch.softmax(q @ q.transpose(-1, -2) * scale, dim=-1)
    if head == "sclip":
        q, k = split(attn.q_proj(y)), split(attn.k_proj(y))
        return torch.softmax(q @ q.transpose(-1, -2) * scale, dim=-1) + torch.softmax(
            k @ k.transpose(-1, -2) * scale, dim=-1
        )
    if head == "naclip":
        k = split(attn.k_proj(y))
        logits = k @ k.transpose(-1, -2) * scale + _neighbourhood(torch, grid, y.dtype)
        return torch.softmax(logits, dim=-1)
    raise ValueError(f"unknown dense head {head!r}; one of {', '.join(DENSE_HEADS)}")


def _neighbourhood(torch: Any, grid: tuple[Any, Any], dtype: Any) -> Any:
    """(1 + h*w, 1 + h*w) Gaussian of the distance between patch positions (1 at distance 0);
    the class token's row and column are 0."""
    h, w = grid
    rows = torch.arange(h, dtype=dtype).view(-1, 1).expand(h, w).reshape(-1)
    cols = torch.arange(w, dtype=dtype).view(1, -1).expand(h, w).reshape(-1)
    d2 = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2
    gauss = torch.exp(-d2 / (2.0 * NACLIP_SIGMA**2))
    return torch.nn.functional.pad(gauss, (1, 0, 1, 0))


def dense_last_layer(torch: Any, layer: Any, hidden: Any, head: str, grid: tuple[Any, Any]) -> Any:
    """The patch outputs (N, h*w, width) of CLIP's last encoder ``layer`` re-run on its input
    ``hidden`` (N, 1 + h*w, width) as ``head`` does it (module docstring)."""
    attn = layer.self_attn
    y = layer.layer_norm1(hidden)
    n, t, width = y.shape
    values = attn.v_proj(y)
    if head == "maskclip":
        mixed = values
    else:
        weights = _attention_weights(torch, attn, y, head, grid)
        v = values.view(n, t, attn.num_heads, width // attn.num_heads).transpose(1, 2)
        mixed = (weights @ v).transpose(1, 2).reshape(n, t, width)
    out = attn.out_proj(mixed)
    if head == "sclip":
        out = hidden + out
    return out[:, 1:]


def _run_layer(layer: Any, x: Any) -> Any:
    out = layer(x, None)  # transformers < 5 returns a tuple
    return out[0] if isinstance(out, tuple) else out


def frame_tower(torch: Any, model: Any, mean: list[float], std: list[float], head: str) -> Any:
    """An nn.Module from (N, H, W, 3) BGR 0..255 frames (H and W multiples of the patch size) to
    L2-normalised patch-token embeddings (N, H / patch, W / patch, D) through ``head``.

    Shares the model's weights. The position embeddings are interpolated to the frame's grid
    inside ``forward`` (bicubic, as transformers' ``interpolate_pos_encoding``), so the exported
    graph takes any frame size.
    """
    if head not in DENSE_HEADS:
        raise ValueError(f"unknown dense head {head!r}; one of {', '.join(DENSE_HEADS)}")
    nn = torch.nn
    functional = nn.functional
    vision = model.vision_model
    weight, bias, centre, patch = folded_weights(torch, vision, mean, std)
    positions = vision.embeddings.position_embedding.weight.detach().float()  # (1 + g*g, width)
    side = round((positions.shape[0] - 1) ** 0.5)
    width = positions.shape[1]
    first = vision.embeddings.class_embedding.detach().float() + positions[0]
    grid_positions = positions[1:].reshape(1, side, side, width).permute(0, 3, 1, 2)
    layers = vision.encoder.layers

    class FrameTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("weight", weight)  # (P*P*3, width)
            self.register_buffer("bias", bias)  # (width,)
            self.register_buffer("centre", centre)  # (P*P*3,)
            self.register_buffer("first", first.view(1, 1, width))
            self.register_buffer("grid_positions", grid_positions.contiguous())

        def forward(self, pixels: Any) -> Any:
            n, height, frame_w = pixels.shape[0], pixels.shape[1], pixels.shape[2]
            h, w = height // patch, frame_w // patch
            x = pixels.reshape(n, h, patch, w, patch, 3).permute(0, 1, 3, 2, 4, 5)
            rows = x.reshape(n, h * w, patch * patch * 3)
            pos = functional.interpolate(
                self.grid_positions, size=(h, w), mode="bicubic", align_corners=False
            )
            pos = pos.reshape(width, h * w).transpose(0, 1)
            tokens = (rows - self.centre) @ self.weight + self.bias + pos
            hidden = torch.cat([self.first.expand(n, 1, width), tokens], dim=1)
            hidden = vision.pre_layrnorm(hidden)
            for layer in layers[:-1]:
                hidden = _run_layer(layer, hidden)
            out = dense_last_layer(torch, layers[-1], hidden, head, (h, w))
            out = model.visual_projection(vision.post_layernorm(out))
            out = functional.normalize(out, dim=-1)
            return out.reshape(n, h, w, out.shape[-1])

    return FrameTower().eval()
