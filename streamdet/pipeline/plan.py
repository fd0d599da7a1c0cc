"""Which outputs each input of a run gets, decided and checked before anything is processed.

A folder of 50 clips must not fail on clip 37 because ``out/clip37.mp4`` already exists, so
every output path is checked up front: it must not be an input, must not be given twice, must
not exist unless ``overwrite``, and its folder must be creatable.

Rules:

* one input (a file, a URL, a camera): ``-o`` is a file (``.mp4`` for video, an image suffix
  for a still image) or a folder (an existing one, or a path ending in ``/``), in which case the
  file is named after the input; ``--jsonl`` likewise, or ``-`` for standard output;
* several inputs (a folder or a glob): ``-o`` and ``--jsonl`` are folders, one file per input
  named after it (``clip.mp4`` -> ``clip.mp4`` and ``clip.jsonl``; a still image ``a.jpg`` ->
  ``a.png``); two inputs with the same name stem are refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from streamdet.errors import ConfigError, OutputExistsError
from streamdet.sinks import STDOUT, ImageSink
from streamdet.sources import IMAGE_SUFFIXES, is_url, mask_url

VIDEO_OUT_SUFFIXES = (".mp4", ".m4v", ".mov")


@dataclass(frozen=True)
class InputPlan:
    """One input and where its results go (None: not written)."""

    source: str
    video: Path | None  # annotated MP4, or annotated image for a still-image input
    jsonl: str | None  # a path, or "-" for stdout


def _is_image(spec: str) -> bool:
    return Path(spec).suffix.lower() in IMAGE_SUFFIXES


def _is_local(spec: str) -> bool:
    return not is_url(spec) and not spec.isdigit()


def _stem(spec: str) -> str:
    if spec.isdigit():
        return f"camera{spec}"
    if is_url(spec):
        tail = mask_url(spec).rstrip("/").rsplit("/", 1)[-1]
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in tail) or "stream"
    return Path(spec).stem


def _names(inputs: list[str]) -> list[str]:
    """Each input's output name stem; streams whose URLs end alike (``rtsp://a/live`` and
    ``rtsp://b/live``) are told apart by host and port."""
    stems = [_stem(spec) for spec in inputs]
    out = []
    for spec, stem in zip(inputs, stems, strict=True):
        if is_url(spec) and stems.count(stem) > 1:
            netloc = urlsplit(mask_url(spec)).netloc.rsplit("@", 1)[-1]
            where = "".join(c if c.isalnum() or c in "-." else "_" for c in netloc)
            stem = f"{where}_{stem}"
        out.append(stem)
    return out


def _looks_like_folder(path: str) -> bool:
    return path.endswith(("/", os.sep)) or Path(path).is_dir()


def _video_target(stem: str, spec: str, out: str, many: bool) -> Path:
    name = stem + (".png" if _is_image(spec) else ".mp4")
    if many or _looks_like_folder(out):
        if Path(out).exists() and not Path(out).is_dir():
            raise ConfigError(f"-o '{out}' must be a folder for several inputs, but it is a file")
        return Path(out) / name
    target = Path(out)
    suffix = target.suffix.lower()
    if _is_image(spec):
        if suffix not in ImageSink.SUFFIXES and suffix not in VIDEO_OUT_SUFFIXES:
            raise ConfigError(
                f"-o '{out}' must end in .png/.jpg (annotated image) or .mp4 for image input"
            )
    elif suffix not in VIDEO_OUT_SUFFIXES:
        raise ConfigError(
            f"-o '{out}' must end in .mp4 (an H.264 MP4), or be a folder ending in '/'"
        )
    return target


def _jsonl_target(stem: str, out: str, many: bool) -> str:
    if out == STDOUT:
        if many:
            raise ConfigError("--jsonl - (stdout) takes one input; give a folder for several")
        return STDOUT
    if many or _looks_like_folder(out):
        if Path(out).exists() and not Path(out).is_dir():
            raise ConfigError(
                f"--jsonl '{out}' must be a folder for several inputs, but it is a file"
            )
        return str(Path(out) / (stem + ".jsonl"))
    if Path(out).suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        raise ConfigError(f"--jsonl '{out}' must end in .jsonl (or be '-' for stdout)")
    return out


def plan_outputs(
    inputs: list[str],
    *,
    video_out: str | None,
    jsonl_out: str | None,
    many: bool,
    overwrite: bool,
) -> list[InputPlan]:
    """Decide and check every output of the run; one-line errors for anything wrong."""
    names = _names(inputs)
    plans = [
        InputPlan(
            source=spec,
            video=None if video_out is None else _video_target(name, spec, video_out, many),
            jsonl=None if jsonl_out is None else _jsonl_target(name, jsonl_out, many),
        )
        for spec, name in zip(inputs, names, strict=True)
    ]
    local_inputs = {Path(s).resolve(): s for s in inputs if _is_local(s)}
    seen: dict[Path, str] = {}
    for plan in plans:
        targets = [plan.video] if plan.video is not None else []
        if plan.jsonl not in (None, STDOUT):
            targets.append(Path(plan.jsonl))
        for target in targets:
            resolved = target.resolve()
            if resolved in local_inputs:
                raise ConfigError(
                    f"output '{target}' is the input '{local_inputs[resolved]}'; "
                    "choose another output path (inputs are never overwritten)"
                )
            if resolved in seen:
                raise ConfigError(
                    f"output '{target}' would be written twice (for '{seen[resolved]}' and "
                    f"'{mask_url(plan.source)}'); rename an input or choose other outputs"
                )
            seen[resolved] = mask_url(plan.source)
            if target.exists() and not overwrite:
                raise OutputExistsError(
                    f"'{target}' already exists; choose another output or pass --overwrite"
                )
            if target.is_dir():
                raise ConfigError(f"output '{target}' is a folder; give a file name")
    return plans
