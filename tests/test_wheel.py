"""The built wheel works on its own: a fresh virtual environment with only the wheel installed runs
``streamdet demo`` offline with the built-in model that ships inside the package.

Builds the wheel with pip from the repository root, checks its file list against the source tree
(the package's modules, ``py.typed`` and the built-in model: no caches, no training-stage folders,
no tests), installs it into a new venv (dependencies from the registry or pip's cache) and runs the
demo there with the checkout off the path and HOME, the caches and the Hugging Face hub pointed at
empty or offline places. Skipped only when pip cannot reach a package registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "streamdet"
MODEL = PACKAGE / "models" / "scenes-clip"

# building, installing into a fresh venv and running the demo takes minutes with a cold pip cache
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# What pip prints when no registry answers (as opposed to a build or install that is wrong).
_UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeout",
    "Max retries exceeded",
    "No matching distribution found",
)


def _run(cmd: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _pip(cmd: list[str], what: str, *, timeout: float, **kwargs) -> None:
    """Run a pip command; skip when it failed for want of a registry, fail on anything else."""
    done = _run(cmd, timeout=timeout, **kwargs)
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    if any(sign in output for sign in _UNREACHABLE):
        pytest.skip(f"pip cannot reach a package registry to {what}")
    pytest.fail(f"{what} failed (exit {done.returncode}):\n{output[-4000:]}")


def _expected_files() -> set[str]:
    """The package's files a wheel must hold: modules of every package, py.typed, the model,
    the live view's static files."""
    files = {"streamdet/py.typed"}
    files |= {p.relative_to(REPO).as_posix() for p in (PACKAGE / "serve" / "static").iterdir()}
    for init in PACKAGE.rglob("__init__.py"):
        files |= {p.relative_to(REPO).as_posix() for p in init.parent.glob("*.py")}
    meta = json.loads((MODEL / "meta.json").read_text(encoding="utf-8"))
    files |= {f"streamdet/models/scenes-clip/{name}" for name in [*meta["files"], "meta.json"]}
    return files


def _scratch_env(tmp_path: Path) -> dict[str, str]:
    """The environment for a setuptools build whose scratch folders (build/, *.egg-info) lie in
    tmp_path: setuptools packs whatever a stale build/lib holds, and the test leaves the checkout
    as it found it."""
    scratch = tmp_path / "setuptools"
    scratch.mkdir()
    config = tmp_path / "build.cfg"
    config.write_text(
        f"[build]\nbuild_base = {scratch / 'build'}\n[egg_info]\negg_base = {scratch}\n",
        encoding="utf-8",
    )
    return {**os.environ, "DIST_EXTRA_CONFIG": str(config)}


def _build_wheel(tmp_path: Path) -> Path:
    """``pip wheel --no-deps .`` from the repository root."""
    dist = tmp_path / "dist"
    env = _scratch_env(tmp_path)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), "."]
    _pip(cmd, "build the wheel", timeout=300, cwd=REPO, env=env)
    wheels = list(dist.glob("streamdet-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}, found {wheels}"
    return wheels[0]


def test_wheel_installs_and_runs_the_demo_offline(tmp_path: Path, capsys) -> None:
    wheel = _build_wheel(tmp_path)
    with capsys.disabled():
        print(f"\nwheel {wheel.name}: {wheel.stat().st_size:,} bytes")

    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.startswith("streamdet-0")}
        model_sizes = {
            Path(i.filename).name: i.file_size
            for i in archive.infolist()
            if i.filename.startswith("streamdet/models/scenes-clip/")
        }
    assert names == _expected_files(), (
        f"wheel holds extra {sorted(names - _expected_files())}, "
        f"misses {sorted(_expected_files() - names)}"
    )
    assert model_sizes == {name: (MODEL / name).stat().st_size for name in model_sizes}

    venv = tmp_path / "venv"
    done = _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _pip(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        "install the wheel's dependencies",
        timeout=600,
        env=env,
    )

    home = tmp_path / "home"
    home.mkdir()
    env |= {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HF_HOME": str(home / "hf"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("HF_HUB_CACHE", None)
    where = _run(
        [str(python), "-c", "import streamdet; print(streamdet.__file__)"],
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    module = Path(where.stdout.strip()).resolve()
    assert module.is_relative_to(venv.resolve()), f"imported {module}, not the venv's copy"

    out = tmp_path / "out"
    demo = _run(
        [str(venv / "bin" / "streamdet"), "demo", "-o", str(out), "--frames", "4"],
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr

    lines = [json.loads(line) for line in (out / "demo.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3]
    assert sum(len(line["detections"]) for line in lines) >= 1, "the demo found nothing"
    import av

    with av.open(str(out / "demo.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (360, 640, 3)


def test_sdist_holds_the_package_and_its_model(tmp_path: Path) -> None:
    """The sdist (what a wheel is rebuilt from) has every package file and the model, and no
    tests, caches or training-stage folders."""
    pytest.importorskip("setuptools", minversion="77")
    dist = tmp_path / "sdist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"
    done = _run([sys.executable, "-c", code], timeout=120, cwd=REPO, env=_scratch_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    (archive,) = dist.glob("streamdet-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    package = {n for n in names if n.startswith("streamdet/")}
    assert package == _expected_files(), (
        f"sdist holds extra {sorted(package - _expected_files())}, "
        f"misses {sorted(_expected_files() - package)}"
    )
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
    assert not [n for n in names if n.startswith("tests/")]
