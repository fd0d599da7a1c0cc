"""The PyTorch modules streamdet runs: what the ONNX export traces and the PyTorch backend executes.

Both runtimes see the same two towers:

- ``image_tower``: (N, S, S, 3) BGR float32 0..255 pixels, as OpenCV gives them after resizing,
  -> L2-normalised window embeddings (N, D) and, optionally, patch tokens (N, T, D). The channel
  swap and CLIP's normalisation are folded into its patch embedding (``folded_embeddings``), so the
  runtime does no per-pixel work on the host; the patch tokens are ``dense_tokens``.
- ``text_tower``: (K, L) ``input_ids`` and ``attention_mask`` -> (K, D) L2-normalised prompt
  embeddings.

They wrap a transformers ``CLIPModel`` and share its weights. The built-in model's training
(``streamdet.synth.train``) uses ``dense_tokens`` too, so the tokens it teaches are the ones the
exported graph computes.

torch is passed in (or imported inside the functions), never imported at module level: it is the
optional ``export`` extra, and the ONNX Runtime path must not need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.errors import ModelFormatError


def load_clip(torch: Any, transformers: Any, source: Path) -> Any:
    """The CLIPModel of an HF folder in fp32, eval mode, eager attention; one-line errors."""
    progress = transformers.utils.logging
    shown = progress.is_progress_bar_enabled()
    progress.disable_progress_bar()  # no "Loading weights" bar on stderr
    try:
        model = transformers.CLIPModel.from_pretrained(
            source, dtype=torch.float32, attn_implementation="eager"
        )
    except Exception as error:  # transformers raises many kinds; the message is what matters
        raise ModelFormatError(
            f"transformers cannot load '{source}' as a CLIPModel "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            "pass a folder saved with CLIPModel.save_pretrained"
        ) from error
    finally:
        if shown:
            progress.enable_progress_bar()
    return model.float().eval()  # weights stored in fp16 are exported in fp32


def text_inputs(tokenizer: Any, prompts: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """The text tower's inputs for ``prompts``: (K, length) int64 ids and attention mask, padded
    to ``length`` the way the runtime tokenizer pads."""
    tokens = tokenizer(prompts, padding="max_length", max_length=length, return_tensors="np")
    return tokens["input_ids"].astype(np.int64), tokens["attention_mask"].astype(np.int64)


def dense_tokens(model: Any, before_last: Any) -> Any:
    """Per-patch embeddings in the joint space, for where in a window the prompt is.

    ``before_last`` is the vision encoder's input to its last layer (``hidden_states[-2]``). The
    last layer is re-run on it with key-key attention and without its residual and MLP (as in
    ClearCLIP / SCLIP): each patch token then mostly keeps its own content instead of the global
    summary the class token needs, and goes through the same final layer norm and projection as
    the class token. Returns (N, patches, D), L2-normalised. The exported image graph and the
    built-in model's training (which teaches these tokens where objects are) share this function.
    """
    import torch

    vision = model.vision_model
    last = vision.encoder.layers[-1]
    attn = last.self_attn
    x = last.layer_norm1(before_last)
    n, t, width = x.shape
    heads = attn.num_heads
    keys = attn.k_proj(x).view(n, t, heads, width // heads).transpose(1, 2)
    values = attn.v_proj(x).view(n, t, heads, width // heads).transpose(1, 2)
    weights = torch.softmax(keys @ keys.transpose(-1, -2) * attn.scale, dim=-1)
    mixed = (weights @ values).transpose(1, 2).reshape(n, t, width)
    tokens = vision.post_layernorm(attn.out_proj(mixed)[:, 1:])
    return torch.nn.functional.normalize(model.visual_projection(tokens), dim=-1)


def normalisation(torch: Any, mean: list[float], std: list[float]) -> tuple[Any, Any]:
    """(scale, shift) per RGB channel with (x / 255 - mean) / std == x * scale + shift."""
    std_t = torch.tensor(std, dtype=torch.float32)
    return 1.0 / (255.0 * std_t), -torch.tensor(mean, dtype=torch.float32) / std_t


def folded_weights(
    torch: Any, vision: Any, mean: list[float], std: list[float]
) -> tuple[Any, Any, Any, int]:
    """The patch embedding folded for raw NHWC BGR 0..255 patches (``folded_embeddings``):
    (weight (P*P*3, width), convolution bias (width,) or zeros, mean colour (P*P*3,), P)."""
    conv = vision.embeddings.patch_embedding
    patch = int(conv.kernel_size[0])
    weight = conv.weight.detach().float()  # (width, 3 RGB, P, P)
    width = weight.shape[0]
    scale, _ = normalisation(torch, mean, std)
    # rows ordered (y, x, BGR channel) as the NHWC patch is read; RGB channel c is BGR 2 - c
    folded = (weight * scale.view(1, 3, 1, 1))[:, [2, 1, 0]].permute(2, 3, 1, 0)
    bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(width)
    centre = torch.tensor(mean[::-1], dtype=torch.float32) * 255.0  # BGR 0..255
    return (
        folded.reshape(patch * patch * 3, width).contiguous(),
        bias,
        centre.repeat(patch * patch),
        patch,
    )


def folded_embeddings(torch: Any, vision: Any, mean: list[float], std: list[float]) -> Any:
    """An nn.Module doing what ``vision.embeddings`` does, but on raw NHWC BGR 0..255 pixels.

    CLIP cuts a normalised image into P x P patches with a stride-P convolution. Here the patches
    are cut from the NHWC input with one reshape/transpose and embedded by one MatMul,
    ``(patches - mean colour) @ W (P*P*3, width) + position embeddings``, with the channel swap
    and the division by the std folded into ``W``. On the CPU that is one transpose fewer than
    NHWC -> NCHW + Conv, and int8 dynamic quantisation (which covers MatMuls, not Convs) then
    covers the patch embedding too. The mean colour is subtracted, not folded into the bias: with
    it in the bias a patch near the mean colour is a large product cancelled by a large bias, and
    int8 weight errors on the large product stay (the int8 graph drifts further from fp32). It is
    subtracted from the (N, T, P*P*3) patch rows, where the broadcast runs along a long last axis,
    rather than from the NHWC input, where a 3-channel broadcast is slow. The class token's row
    (class embedding + its position embedding) is a constant. docs/benchmarks.md has the
    measurements behind these choices.
    """
    nn = torch.nn
    embeddings = vision.embeddings
    weight, conv_bias, centre, patch = folded_weights(torch, vision, mean, std)
    side = int(embeddings.image_size) // patch
    width = weight.shape[1]
    positions = embeddings.position_embedding.weight.detach().float()  # (1 + T, width)
    bias = positions[1:] + conv_bias

    class FoldedEmbeddings(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("centre", centre)  # (P*P*3,)
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias.contiguous())  # (T, width)
            first = embeddings.class_embedding.detach().float() + positions[0]
            self.register_buffer("first", first.view(1, 1, width))

        def forward(self, pixels: Any, interpolate_pos_encoding: bool = False) -> Any:
            if interpolate_pos_encoding:
                raise ValueError("folded patch embeddings have fixed positions")
            x = pixels.reshape(-1, side, patch, side, patch, 3).permute(0, 1, 3, 2, 4, 5)
            patches = x.reshape(-1, side * side, patch * patch * 3)
            tokens = (patches - self.centre) @ self.weight + self.bias
            return torch.cat([self.first.expand(tokens.shape[0], 1, width), tokens], dim=1)

    return FoldedEmbeddings().eval()


@contextlib.contextmanager
def _replaced(parent: Any, name: str, module: Any) -> Iterator[None]:
    """``parent.<name>`` is ``module`` inside the block and the original again after it."""
    original = getattr(parent, name)
    setattr(parent, name, module)
    try:
        yield
    finally:
        setattr(parent, name, original)


def _features(torch: Any, output: Any) -> Any:
    """Projected features from ``get_*_features``: transformers >= 5 returns an output object
    whose pooler_output is the projection."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def image_tower(
    torch: Any, model: Any, mean: list[float], std: list[float], *, tokens: bool = True
) -> Any:
    """The image tower streamdet exports (and the PyTorch backend runs): an nn.Module from
    (N, S, S, 3) BGR 0..255 pixels to a tuple of window embeddings (N, D) and, with ``tokens``,
    patch tokens (N, T, D), all L2-normalised.

    It runs the vision transformer with ``folded_embeddings`` in place of its patch embedding; the
    model's own weights are shared, not copied. Without ``tokens`` the hidden states and the
    re-run of the last layer (``dense_tokens``) are skipped.
    """
    nn = torch.nn
    functional = torch.nn.functional
    vision = model.vision_model

    class ImageTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.embeddings = folded_embeddings(torch, vision, mean, std)

        def forward(self, pixels: Any) -> Any:
            with _replaced(vision, "embeddings", self.embeddings):
                out = vision(pixel_values=pixels, output_hidden_states=tokens)
            pooled = functional.normalize(model.visual_projection(out.pooler_output))
            if not tokens:
                return (pooled,)
            return pooled, dense_tokens(model, out.hidden_states[-2])

    return ImageTower().eval()


def text_tower(torch: Any, model: Any) -> Any:
    """The text tower streamdet exports (and the PyTorch backend runs): (K, L) input_ids and
    attention_mask -> (K, D) L2-normalised prompt embeddings."""

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return torch.nn.functional.normalize(_features(torch, out))  # (K, D)

    return TextTower().eval()
