"""Errors streamdet raises on purpose.

Every error derives from :class:`StreamdetError` and also from the builtin exception that fits, so
callers can catch what they already know (``FileNotFoundError``, ``ValueError``, ...). Messages are
one line: what was expected, what was found, and what to do instead. The CLI prints them without a
traceback.
"""

from __future__ import annotations


class StreamdetError(Exception):
    """Base class of every error streamdet raises on purpose."""


class ModelNotFoundError(StreamdetError, FileNotFoundError):
    """A model path, hub id or built-in name that does not resolve to anything."""


class ModelUnavailableError(StreamdetError, ConnectionError):
    """A hub model that cannot be downloaded (no network, or the hub refused)."""


class ModelFormatError(StreamdetError, ValueError):
    """A model folder that exists but is malformed (missing files, bad JSON, wrong checksums)."""


class MissingDependencyError(StreamdetError, ImportError):
    """An optional dependency (torch, transformers, ...) needed for this one operation is absent."""


class ExportError(StreamdetError, RuntimeError):
    """Exporting a model to ONNX failed."""


class ParityError(ExportError):
    """The exported ONNX graphs disagree with PyTorch beyond the stated tolerance."""


class ProviderError(StreamdetError, RuntimeError):
    """A requested ONNX Runtime execution provider (CUDA, TensorRT) cannot be used."""


class PromptError(StreamdetError, ValueError):
    """Empty, blank, duplicated-to-nothing or over-long prompts."""


class ConfigError(StreamdetError, ValueError):
    """Invalid settings: window geometry, thresholds, device names, ..."""


class FrameTypeError(StreamdetError, TypeError):
    """A frame that is not a numpy array."""


class FrameError(StreamdetError, ValueError):
    """A frame array with the wrong dtype, rank, channel count or an empty size."""


class ImageReadError(StreamdetError, ValueError):
    """An image file that cannot be read or decoded."""


class OutputExistsError(StreamdetError, FileExistsError):
    """The output file already exists and ``overwrite=True`` was not given."""


class OutputFolderError(StreamdetError, OSError):
    """The output folder is missing, is not a folder, or cannot be written to."""


class WriterClosedError(StreamdetError, ValueError):
    """A ``write`` on a writer that was already closed."""


class VideoReadError(StreamdetError, ValueError):
    """A video file that does not exist or cannot be opened and decoded."""


class SourceError(StreamdetError, ValueError):
    """An input that cannot be opened or read: missing, empty or corrupt file, unsupported URL
    scheme, unreachable stream, camera that does not exist, folder or glob with no media."""


class StreamLostError(SourceError):
    """A live network stream dropped and did not come back within the reconnect time limit."""


class PipelineError(StreamdetError, RuntimeError):
    """A pipeline stage failed or stalled; the message names the stage and the cause."""


class ClusterError(StreamdetError, ConnectionError):
    """A Ray cluster that cannot be reached or started, or whose workers cannot start."""


class IndexFolderError(StreamdetError, ValueError):
    """A search index folder that is missing, not an index, damaged, or built with another
    model than the one asked for."""
