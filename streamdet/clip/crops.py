"""Cutting a frame's windows out on the device that runs the image tower (the GPU path).

On the CPU, ``streamdet.detect.windows.crop_windows`` resizes the frame once and slices every
window out of it. On a GPU that would mean sending N windows of S x S pixels to the device per
frame; instead the frame goes up once and a tiny ONNX graph cuts, resizes and pads all windows
there, straight into the image tower's input (IO binding: the crops never come back to the host).

The graph is ONNX's ``RoiAlign`` (opset 16, ``half_pixel`` coordinates, average mode, adaptive
sampling): each output pixel is the mean of ceil(window / S) x ceil(window / S) bilinear samples
at evenly spaced points of its bin, so a window downscaled by a whole factor gets exactly the area
mean that OpenCV's ``INTER_AREA`` gives, and other factors come within half a grey level (mean) of
resizing each window alone (closer than the host's one-resize shortcut, which resizes the whole
frame once).
``RoiAlign`` reads zero outside the frame; the graph subtracts the padding colour before and adds
it back after, so windows over the frame edge are padded with the model's mean colour, as on the
CPU path. Inputs: ``frame`` (H, W, 3) float32 BGR 0..255 and ``boxes`` (N, 4) float32 window
corners x1, y1, x2, y2 in pixels; output ``pixels`` (N, S, S, 3), the image graph's input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamdet.errors import MissingDependencyError

#: RoiAlign's coordinate_transformation_mode attribute needs opset 16.
CROP_OPSET = 16


def crop_graph(size: int, fill: tuple[float, float, float]) -> bytes:
    """The serialised ONNX crop graph for S = ``size`` and a BGR padding colour."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as error:
        raise MissingDependencyError(
            f"cropping on the GPU needs the onnx package ({error}); pip install onnx"
        ) from None
    fill_value = np.asarray(fill, np.float32).reshape(1, 1, 3)
    nodes = [
        helper.make_node("Sub", ["frame", "fill"], ["centred"]),
        helper.make_node("Unsqueeze", ["centred", "axis0"], ["batched"]),
        helper.make_node("Transpose", ["batched"], ["unpadded"], perm=[0, 3, 1, 2]),
        # one pixel of padding colour (zero here) around the frame, so that samples just outside
        # it blend with the padding instead of repeating the edge pixel
        helper.make_node("Pad", ["unpadded", "pads"], ["nchw"], mode="constant"),
        helper.make_node("Add", ["boxes", "one_float"], ["shifted"]),
        helper.make_node("Shape", ["boxes"], ["boxes_shape"]),
        helper.make_node("Slice", ["boxes_shape", "zero", "one"], ["count"]),
        helper.make_node(
            "ConstantOfShape",
            ["count"],
            ["batch_index"],
            value=helper.make_tensor("v", TensorProto.INT64, [1], [0]),
        ),
        helper.make_node(
            "RoiAlign",
            ["nchw", "shifted", "batch_index"],
            ["crops"],
            mode="avg",
            output_height=size,
            output_width=size,
            sampling_ratio=0,
            spatial_scale=1.0,
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("Transpose", ["crops"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Add", ["nhwc", "fill"], ["pixels"]),
    ]
    graph = helper.make_graph(
        nodes,
        "streamdet_crops",
        [
            helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["height", "width", 3]),
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["windows", 4]),
        ],
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["windows", size, size, 3])],
        initializer=[
            helper.make_tensor("fill", TensorProto.FLOAT, [1, 1, 3], fill_value.ravel().tolist()),
            helper.make_tensor("axis0", TensorProto.INT64, [1], [0]),
            helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
            helper.make_tensor("one", TensorProto.INT64, [1], [1]),
            helper.make_tensor("one_float", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", CROP_OPSET)])
    model.ir_version = min(model.ir_version, 8)  # readable by every supported onnxruntime
    onnx.checker.check_model(model)
    return model.SerializeToString()


class DeviceCropper:
    """Runs the crop graph with the image tower's providers. ``device`` None: plain runs on numpy
    arrays (the CPU); else the frame is an OrtValue on that device and so are the crops."""

    def __init__(
        self, size: int, fill: tuple[float, float, float], providers: list[str], options: Any
    ) -> None:
        import onnxruntime as ort

        self._ort = ort
        self._session = ort.InferenceSession(
            crop_graph(size, fill), sess_options=options, providers=providers
        )

    def upload(self, frame: np.ndarray, device: str | None) -> Any:
        """The frame as the crop graph's input: float32, sent to ``device`` once."""
        frame = np.ascontiguousarray(frame, np.float32)
        if device is None:
            return frame
        return self._ort.OrtValue.ortvalue_from_numpy(frame, device, 0)

    def crop(self, frame: Any, boxes: np.ndarray, device: str | None) -> Any:
        """(N, S, S, 3) crops of ``boxes`` (N, 4) from an ``upload``-ed frame: a numpy array
        (``device`` None) or an OrtValue left on ``device``."""
        boxes = np.ascontiguousarray(boxes, np.float32)
        if device is None:
            return self._session.run(["pixels"], {"frame": frame, "boxes": boxes})[0]
        binding = self._session.io_binding()
        binding.bind_ortvalue_input("frame", frame)
        binding.bind_cpu_input("boxes", boxes)
        binding.bind_output("pixels", device)
        self._session.run_with_iobinding(binding)
        return binding.get_outputs()[0]
