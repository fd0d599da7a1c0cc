"""CLIP models for streamdet: export to ONNX, resolve model names, and run the two towers.

- ``hub.resolve_model(spec)``: a folder, built-in name or hub id -> an exported folder.
- ``export.export_model(source, out_dir)``: HF CLIP folder -> image.onnx, text.onnx, meta.json,
  tracing the PyTorch modules of ``towers`` and proving them with ``parity``.
- ``base.Encoders``: what both backends below share (meta.json, tokenizer, input checks, batching).
- ``ort_encoders.OrtEncoders(folder)``: ONNX Runtime sessions: ``encode_images``, ``encode_texts``.
- ``torch_encoders.TorchEncoders(folder, hf_folder)``: the same calls run with PyTorch (GPUs).

Submodules are imported explicitly so that the ONNX Runtime path never loads torch or transformers.
"""
