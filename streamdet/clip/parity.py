"""The export's proof: the ONNX graphs give what PyTorch gives, within a tolerance.

The image graph is traced from ``towers.image_tower`` (folded patch embedding, NHWC BGR input) but
checked against ``reference_tower``, the same outputs computed by transformers' own path (NCHW RGB,
normalised, Conv patches), so a mistake in the folding cannot pass. The text graph is checked
against ``towers.text_tower``. Both run on the same inputs: random pixels and prompts of different
lengths.

torch and onnxruntime are imported inside the functions (torch is passed in): only exporting
needs this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamdet.clip.meta import IMAGE_FILE, TEXT_FILE
from streamdet.clip.towers import dense_tokens, normalisation, text_inputs
from streamdet.errors import ParityError

FP32_TOLERANCE = 1e-4
"""Default parity tolerance (max abs diff of L2-normalised embeddings) of an fp32 export."""
FP16_TOLERANCE = 2e-2
"""Default parity tolerance of an fp16 export (fp16 weights and compute, fp32 inputs/outputs)."""

# Prompts of different lengths for the text parity check.
PARITY_PROMPTS = (
    "a photo of a cat",
    "a red car",
    "x",
    "a small blue triangle next to a large green circle on a white table, seen from above",
    "Street at NIGHT, with   rain!",
)
PARITY_IMAGES = 3


def reference_tower(torch: Any, model: Any, mean: list[float], std: list[float]) -> Any:
    """``image_tower``'s outputs by transformers' own path (NCHW RGB, normalised, Conv patches).
    Parity is checked against it, so the folding is proven on every export."""
    functional = torch.nn.functional
    vision = model.vision_model

    class ReferenceImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            scale, shift = normalisation(torch, mean, std)
            self.register_buffer("scale", scale.view(1, 3, 1, 1))
            self.register_buffer("shift", shift.view(1, 3, 1, 1))

        def forward(self, pixels: Any) -> Any:
            x = pixels.permute(0, 3, 1, 2)  # (N, S, S, 3) BGR -> (N, 3, S, S) BGR
            x = x[:, [2, 1, 0]]  # (N, 3, S, S) RGB
            x = x * self.scale + self.shift
            out = vision(pixel_values=x, output_hidden_states=True)
            pooled = functional.normalize(model.visual_projection(out.pooler_output))
            return pooled, dense_tokens(model, out.hidden_states[-2])

    return ReferenceImageTower().eval()


def measure(
    torch: Any, reference: Any, text: Any, tokenizer: Any, folder: Path, size: int, length: int
) -> tuple[float, float]:
    """Max abs diff (image, text) between the ONNX graphs in ``folder``, run by ONNX Runtime, and
    the PyTorch modules ``reference`` and ``text`` on the same inputs."""
    import onnxruntime as ort

    generator = np.random.default_rng(0)
    pixels = generator.integers(0, 256, (PARITY_IMAGES, size, size, 3)).astype(np.float32)
    # Models with a short context (small trained ones) get the prompts that fit.
    prompts = [p for p in PARITY_PROMPTS if len(tokenizer(p)["input_ids"]) <= length]
    ids, mask = text_inputs(tokenizer, prompts or ["a"], length)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    image_session = ort.InferenceSession(str(folder / IMAGE_FILE), options, providers=providers)
    text_session = ort.InferenceSession(str(folder / TEXT_FILE), options, providers=providers)
    onnx_image = image_session.run(None, {"pixels": pixels})  # [embeddings, tokens]
    onnx_text = text_session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        torch_image = [t.numpy() for t in reference(torch.from_numpy(pixels))]
        torch_text = text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    image_diff = max(
        float(np.abs(o - t).max()) for o, t in zip(onnx_image, torch_image, strict=True)
    )
    return image_diff, float(np.abs(onnx_text - torch_text).max())


def require(image_diff: float, text_diff: float, tolerance: float, out_dir: Path) -> None:
    """Raise ParityError, naming the graph, when either difference exceeds ``tolerance`` (or is
    NaN); nothing has been written to ``out_dir`` at that point, and the message says so."""
    for graph, diff in (("image", image_diff), ("text", text_diff)):
        if not diff <= tolerance:  # also catches NaN
            raise ParityError(
                f"the {graph} graph differs from PyTorch by {diff:.3g} (max abs), more than "
                f"the tolerance {tolerance:.3g}; nothing was written to '{out_dir}'"
            )
