"""The crash rule of every sink that writes a file: a file at the target path is a finished one.

A file sink writes to a hidden partial file next to the target (``.NAME.PID.partial``) and moves
it into place only on ``close``, once it is complete. Leaving a ``with`` block by an exception
(``KeyboardInterrupt`` included) still finalises what was written and re-raises: after Ctrl-C an
MP4 plays and holds exactly the frames written, a JSONL exactly the lines written. Only a hard
kill (SIGKILL, power loss) leaves the partial file behind, and never at the target path. A sink
that got nothing leaves no file and its ``close()`` returns ``None``. An existing file is never
replaced unless ``overwrite=True``; a missing or read-only folder fails before anything is written.
"""

from __future__ import annotations

import abc
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from streamdet.errors import OutputExistsError, OutputFolderError

_log = logging.getLogger("streamdet.sinks")

_P = TypeVar("_P", bound="PublishedOnClose")


def ensure_folder(path: Path) -> None:
    """Create an output folder (and parents); a one-line error if it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputFolderError(
            f"cannot create output folder '{path}' ({err.strerror}); choose a writable place"
        ) from None


class PartialFile:
    """A target path and the hidden partial file written in its place until ``publish``.

    Creating the partial file is the writability check: it is real (``os.access`` can lie on
    network shares and for root) and it happens before anything is encoded.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool) -> None:
        target = Path(path)
        folder = target.parent
        if not folder.is_dir():
            raise OutputFolderError(
                f"output folder '{folder}' does not exist or is not a folder; create it first"
            )
        if target.is_dir():
            raise OutputFolderError(
                f"output path '{target}' is a folder; give a file name inside it"
            )
        if target.exists() and not overwrite:
            raise OutputExistsError(
                f"'{target}' already exists; choose another name or pass overwrite=True to "
                "replace it"
            )
        partial = folder / f".{target.name}.{os.getpid()}.partial"
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise OutputExistsError(
                f"partial file '{partial}' exists: another sink in this process is writing "
                f"'{target}'; close it first"
            ) from None
        except OSError as err:
            raise OutputFolderError(
                f"cannot write in output folder '{folder}' ({err.strerror}); choose a writable "
                "folder"
            ) from None
        self.target = target
        self.partial = partial
        self.overwrite = overwrite

    def publish(self) -> None:
        """Move the finished partial file to the target; never over another file unless
        ``overwrite``."""
        if self.overwrite:
            os.replace(self.partial, self.target)
            return
        appeared = OutputExistsError(
            f"'{self.target}' appeared while writing; the result is kept as '{self.partial}': "
            "move it yourself or pass overwrite=True"
        )
        try:
            os.link(self.partial, self.target)  # atomic "create only if absent"
        except FileExistsError:
            raise appeared from None
        except OSError:  # no hard links on this file system (FAT, some shares): check, rename
            if self.target.exists():
                raise appeared from None
            os.replace(self.partial, self.target)
            return
        self.partial.unlink()

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)


class PublishedOnClose(abc.ABC):
    """Base of the sinks that write a file (or a stream) and say on ``close`` what they wrote.

    Subclasses open their writer in ``__init__``, write in ``write`` and implement ``_finish``
    (flush and close the writer; return how many frames or lines were written). ``path`` None
    means the sink writes to a stream (standard output), which has nothing to publish; ``where``
    is then the name ``close`` reports. The crash rule (module docstring) lives here, once.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, *, overwrite: bool, where: str = ""
    ) -> None:
        self._file = None if path is None else PartialFile(path, overwrite=overwrite)
        self._where = where if self._file is None else str(self._file.target)
        self._closed = False
        self._result: tuple[str, int] | None = None

    @property
    def path(self) -> Path | None:
        """The final output path (the file appears there on ``close``); None for a stream."""
        return None if self._file is None else self._file.target

    @property
    def partial_path(self) -> Path | None:
        """The hidden file being written until ``close``; None for a stream."""
        return None if self._file is None else self._file.partial

    @abc.abstractmethod
    def _finish(self) -> int:
        """Flush and close the writer; the number of frames or lines written."""

    def close(self) -> tuple[str, int] | None:
        """Finalise and publish; (path, frames or lines written), or None when nothing was."""
        if self._closed:
            return self._result
        self._closed = True
        try:
            written = self._finish()
        except BaseException:
            if self._file is not None:
                self._file.discard()
            raise
        if written == 0:
            if self._file is not None:
                self._file.discard()
            return None
        if self._file is not None:
            self._file.publish()
        self._result = (self._where, written)
        return self._result

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # Keep what was written, and let the original exception (Ctrl-C included) propagate.
        try:
            self.close()
        except Exception as err:
            _log.warning(
                "could not finalise '%s' after %s: %s", self._where, exc_type.__name__, err
            )
