"""The image tower replayed as a CUDA graph (ONNX Runtime's ``enable_cuda_graph``).

A CUDA graph records every kernel launch of one run and replays them with one call, which saves
the per-operator launch overhead that dominates small, fast models on a big GPU. ONNX Runtime can
capture a session as a graph on its first run, if three things hold, and this module is what makes
them hold:

- every node runs on the CUDA provider, which needs static shapes (no shape arithmetic left on the
  host): the image graph gets a fixed batch (``optimize.image_graph(..., batch=N)``), so ONNX
  Runtime folds the shape computations away;
- every run reads and writes the same device memory: ``FixedBatchRunner`` allocates the input and
  output buffers once, binds them once, and copies each chunk of windows into the input buffer in
  place (``OrtValue.update_inplace``);
- every run has the same shapes: the last chunk of a frame is padded to the batch with copies of
  its last window, and the padding's outputs are dropped.

The runner does not depend on CUDA: on the CPU it runs the same fixed-batch path without capture,
which is how its logic is tested on machines without a GPU. Whether graphs help is a measurement
(``benchmarks/bench_model.py --device cuda --cuda-graph``), so they are opt-in
(``OrtEncoders(cuda_graph=True)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: CUDA provider options that turn capture on.
CUDA_GRAPH_OPTIONS = {"enable_cuda_graph": "1"}


class FixedBatchRunner:
    """Runs a fixed-batch image session through buffers bound once (see the module docstring).

    session: an ONNX Runtime session whose first input is (batch, S, S, 3) float32 and whose
    ``output`` is (batch, D); device: "cuda" or "cpu", where the buffers live.
    """

    def __init__(self, session: Any, *, batch: int, output: str, device: str) -> None:
        import onnxruntime as ort

        inputs = session.get_inputs()[0]
        shape = list(inputs.shape)
        if shape[0] != batch or not all(isinstance(d, int) for d in shape):
            raise ValueError(f"the session's input must be ({batch}, S, S, 3), not {shape}")
        width = next(o.shape[-1] for o in session.get_outputs() if o.name == output)
        self.batch = batch
        self._session = session
        self._staging = np.zeros(shape, np.float32)  # host copy of one padded chunk
        self._input = ort.OrtValue.ortvalue_from_numpy(self._staging, device, 0)
        self._output = ort.OrtValue.ortvalue_from_shape_and_type(
            [batch, width], np.float32, device, 0
        )
        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(inputs.name, self._input)
        self._binding.bind_ortvalue_output(output, self._output)

    @property
    def buffers(self) -> tuple[int, int]:
        """Device addresses of the input and output buffers (the same for every run)."""
        return self._input.data_ptr(), self._output.data_ptr()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) float32 -> (N, D): chunks of ``batch``, the last padded with its last
        window (whose extra outputs are dropped)."""
        parts = []
        for start in range(0, len(pixels), self.batch):
            chunk = pixels[start : start + self.batch]
            self._staging[: len(chunk)] = chunk
            self._staging[len(chunk) :] = chunk[-1]
            self._input.update_inplace(self._staging)
            self._session.run_with_iobinding(self._binding)
            parts.append(self._binding.copy_outputs_to_cpu()[0][: len(chunk)])
        return np.concatenate(parts).astype(np.float32, copy=False)
