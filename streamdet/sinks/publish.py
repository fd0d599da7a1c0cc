"""How a sink that writes a file keeps every run's end safe: the two write rules, in one place.

**Write-then-rename** (the default, for files): the sink writes a hidden partial file next to
the target (``.NAME.PID.partial``) and moves it into place only on ``close``, once it is
complete, so a file at the target path is a finished one. Only a hard kill (SIGKILL, power
loss) leaves the partial file behind, and never at the target path.

**Live** (``live=True``, for cameras and streams, whose run may never end): the sink writes at
the target path from the start, in pieces that are each usable as soon as they land (whole
flushed JSON lines; MP4 fragments), so the file can be followed during the run (``tail -f``,
a player) and a hard kill leaves it usable up to the last piece written.

Both rules: leaving a ``with`` block by an exception (``KeyboardInterrupt`` included) still
finalises what was written and re-raises, so after Ctrl-C an MP4 plays and holds exactly the
frames written, a JSONL exactly the lines written. A sink that got nothing leaves no file and its
``close()`` returns ``None``. An existing file is never replaced unless ``overwrite=True`` (a
live sink replaces it when it opens, a write-then-rename one when it closes); a missing or
read-only folder fails before anything is written.
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


def _check_target(target: Path, overwrite: bool) -> None:
    """The checks every file output passes before anything is created; one-line errors."""
    folder = target.parent
    if not folder.is_dir():
        raise OutputFolderError(
            f"output folder '{folder}' does not exist or is not a folder; create it first"
        )
    if target.is_dir():
        raise OutputFolderError(f"output path '{target}' is a folder; give a file name inside it")
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"'{target}' already exists; choose another name or pass overwrite=True to replace it"
        )


def _create_new(path: Path, *, taken: str) -> int:
    """Create ``path`` empty, only if absent (``taken``: the error when it exists); its open file
    descriptor. Creating it is the writability check: it is real (``os.access`` can lie on
    network shares and for root) and it happens before anything is encoded."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise OutputExistsError(taken) from None
    except OSError as err:
        raise OutputFolderError(
            f"cannot write in output folder '{path.parent}' ({err.strerror}); choose a writable "
            "folder"
        ) from None


class PartialFile:
    """A target path and the hidden partial file written in its place until ``publish``."""

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool) -> None:
        target = Path(path)
        _check_target(target, overwrite)
        partial = target.parent / f".{target.name}.{os.getpid()}.partial"
        taken = (
            f"partial file '{partial}' exists: another sink in this process is writing "
            f"'{target}'; close it first"
        )
        os.close(_create_new(partial, taken=taken))
        self.target = target
        self.partial = partial
        self.overwrite = overwrite

    @property
    def writing(self) -> Path:
        """Where the bytes go until ``publish``: the partial file."""
        return self.partial

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
        """Remove the partial file (nothing was written, or finishing it failed)."""
        self.partial.unlink(missing_ok=True)

    def abandon(self) -> None:
        """Finishing failed: a half-finished partial file is of no use; remove it."""
        self.discard()


class LiveFile:
    """A target path written in place from the start (the live rule in the module docstring).

    The target is created empty when the sink opens: only if absent (an atomic check), or, with
    ``overwrite``, by moving a fresh empty file over the old one, so the old file is replaced
    whole (another name linked to it keeps it) rather than truncated under a reader. The file
    stays open here until the sink closes, so that ``discard`` can tell it from a file someone
    else put at the path since (an open file's inode number cannot be reused).
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool) -> None:
        target = Path(path)
        _check_target(target, overwrite)
        taken = (
            f"'{target}' already exists; choose another name or pass overwrite=True to replace it"
        )
        if overwrite and target.exists():
            fresh = target.parent / f".{target.name}.{os.getpid()}.partial"
            self._fd: int | None = _create_new(fresh, taken=taken)
            os.replace(fresh, target)
        else:
            self._fd = _create_new(target, taken=taken)
        self.target = target

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def writing(self) -> Path:
        """Where the bytes go: the target itself."""
        return self.target

    def publish(self) -> None:
        """Nothing to move: the file has been at its path all along."""
        self._release()

    def discard(self) -> None:
        """Nothing was written: remove the empty file this sink created (only if it is still
        the one at the path: a file put there by someone else since is left alone)."""
        if self._fd is None:
            return
        try:
            ours, there = os.fstat(self._fd), self.target.stat()
            if (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino):
                self.target.unlink()
        except FileNotFoundError:
            pass
        finally:
            self._release()

    def abandon(self) -> None:
        """Finishing failed: keep what was written, usable up to its last whole piece."""
        self._release()


class PublishedOnClose(abc.ABC):
    """Base of the sinks that write a file (or a stream) and say on ``close`` what they wrote.

    Subclasses open their writer on ``writing_path`` in ``__init__`` (or on the first frame),
    write in ``write`` and implement ``_finish`` (flush and close the writer; return how many
    frames or lines were written). ``path`` None means the sink writes to a stream (standard
    output), which has nothing to publish; ``where`` is then the name ``close`` reports.
    ``live`` picks the live rule instead of write-then-rename (module docstring); both live here,
    once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        overwrite: bool,
        where: str = "",
        live: bool = False,
    ) -> None:
        self._file: PartialFile | LiveFile | None = None
        if path is not None:
            self._file = (LiveFile if live else PartialFile)(path, overwrite=overwrite)
        self._where = where if self._file is None else str(self._file.target)
        self._closed = False
        self._result: tuple[str, int] | None = None

    @property
    def path(self) -> Path | None:
        """The final output path; None for a stream."""
        return None if self._file is None else self._file.target

    @property
    def live(self) -> bool:
        """True when the file is written at ``path`` as the run goes (the live rule)."""
        return isinstance(self._file, LiveFile)

    @property
    def partial_path(self) -> Path | None:
        """The hidden file being written until ``close``; None for a live sink or a stream."""
        return self._file.partial if isinstance(self._file, PartialFile) else None

    @property
    def writing_path(self) -> Path | None:
        """Where the bytes go now: the partial file, or ``path`` for a live sink; None for a
        stream."""
        return None if self._file is None else self._file.writing

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
                self._file.abandon()
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
