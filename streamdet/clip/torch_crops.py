"""Cutting a frame's windows out with PyTorch, on the device the PyTorch backend runs on.

The PyTorch twin of ``streamdet.clip.crops`` (ONNX's ``RoiAlign`` there): the frame goes to the
device once, and every window is cut, resized to S x S and padded there, straight into the image
tower's input. Each output pixel is the mean of ceil(window / S) x ceil(window / S) bilinear
samples at evenly spaced points of its bin (RoiAlign's average mode with adaptive sampling and
``half_pixel`` coordinates), so both backends give the same crops, and a window downscaled by a
whole factor gets the area mean OpenCV's ``INTER_AREA`` gives. Samples outside the frame read the
padding colour (the model's mean colour, zero after normalisation), blended bilinearly at the
edge as the ONNX graph does with its one pixel of padding.

The bilinear samples come from one ``grid_sample`` call per group of windows with the same number
of samples per bin (normally one group per window scale): all windows of a group are stacked
along the height of one sampling grid, so the frame is never copied per window.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _samples(start: Any, length: Any, size: int, count: int, torch: Any) -> Any:
    """(n, size * count) sample coordinates along one axis: ``count`` evenly spaced points in
    each of ``size`` bins of windows starting at ``start`` (pixel edges) and ``length`` long;
    returned in pixel-centre coordinates (RoiAlign's half_pixel)."""
    bins = torch.arange(size, dtype=start.dtype, device=start.device).view(size, 1)
    within = (torch.arange(count, dtype=start.dtype, device=start.device) + 0.5) / count
    offsets = (bins + within.view(1, count)).reshape(1, size * count)  # in bins
    return start.view(-1, 1) - 0.5 + offsets * (length.view(-1, 1) / size)


def crop_windows(
    torch: Any, frame: Any, boxes: np.ndarray, size: int, fill: tuple[float, float, float]
) -> Any:
    """(N, S, S, 3) crops of ``boxes`` from ``frame``.

    frame: (H, W, 3) float tensor, BGR 0..255, on the device; boxes: (N, 4) window corners x1,
    y1, x2, y2 in pixels (may reach outside the frame); fill: the BGR padding colour. Returns a
    float32 tensor on the frame's device, NHWC BGR 0..255 (the image tower's input).
    """
    functional = torch.nn.functional
    height, width = int(frame.shape[0]), int(frame.shape[1])
    device = frame.device
    fill_t = torch.tensor(fill, dtype=torch.float32, device=device)
    centred = (frame.float() - fill_t).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W), pad = 0
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)  # float32, as RoiAlign reads them
    sides = boxes[:, 2:] - boxes[:, :2]  # (N, 2) width, height
    counts = np.maximum(1, np.ceil(sides / np.float32(size))).astype(int)  # samples per bin x, y
    out = torch.empty((len(boxes), size, size, 3), dtype=torch.float32, device=device)
    groups, group_of = np.unique(counts, axis=0, return_inverse=True)
    for index, (count_x, count_y) in enumerate(groups.tolist()):
        rows = np.flatnonzero(group_of.ravel() == index)
        group = torch.from_numpy(boxes[rows]).to(device)
        xs = _samples(group[:, 0], group[:, 2] - group[:, 0], size, count_x, torch)
        ys = _samples(group[:, 1], group[:, 3] - group[:, 1], size, count_y, torch)
        n, gy, gx = len(rows), size * count_y, size * count_x
        # grid_sample's normalised coordinates (align_corners=False): pixel centre i is at
        # (2 i + 1) / extent - 1, and samples outside read zero (the padding colour here)
        grid = torch.stack(
            [
                ((2 * xs + 1) / width - 1).view(n, 1, gx).expand(n, gy, gx),
                ((2 * ys + 1) / height - 1).view(n, gy, 1).expand(n, gy, gx),
            ],
            dim=-1,
        ).reshape(1, n * gy, gx, 2)
        sampled = functional.grid_sample(
            centred, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (1, 3, n * gy, gx)
        pooled = sampled.view(3, n, size, count_y, size, count_x).mean(dim=(3, 5))
        out[torch.from_numpy(rows).to(device)] = pooled.permute(1, 2, 3, 0) + fill_t
    return out
