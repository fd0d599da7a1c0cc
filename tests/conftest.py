"""Fixtures shared by all test folders: the real CLIP tokenizer files and a tiny CLIP model.

The tiny model has the real CLIP architecture and tokenizer (random weights, 32 px images), so
export, ONNX Runtime and tokenisation are exercised exactly as with ViT-B/32, in about a second.
Its tokenizer and processor files come from the built-in model, which ships the files of
openai/clip-vit-base-patch32, so these tests need nothing outside the repository. Only tests of
the full ViT-B/32 shape read its config from ``../shared`` and skip without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _models import TINY_TEXT, TINY_VISION
from streamdet.clip.export import TOKENIZER_FILES
from streamdet.clip.hub import BUILTIN_MODELS

REPO = Path(__file__).resolve().parent.parent
SHARED_CLIP_DIR = REPO.parent / "shared" / "models" / "clip-vit-base-patch32-noweights"
# The built-in model ships CLIP's tokenizer (tokenizer.json: CLIPTokenizerFast needs no
# vocab.json/merges.txt) and processor config (CLIP's mean and std; its size is rewritten).
CLIP_TOKENIZER_DIR = BUILTIN_MODELS["streamdet/scenes-clip"]

MEDIA = REPO.parent / "shared" / "media"

TINY_IMAGE_SIZE = TINY_VISION["image_size"]

#: Markers that follow from a fixture: a test using the fixture gets the marker, so that
#: `-m "not media"` or `-m "not network"` never depends on someone remembering to mark a test.
FIXTURE_MARKERS = {"media_dir": "media", "rtsp_server": "network", "silent_server": "network"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture
def media_dir() -> Path:
    """The real clips beside the repo (``../shared/media``); skips when they are absent."""
    if not MEDIA.is_dir() or not any(MEDIA.glob("*.mp4")):
        pytest.skip(f"{MEDIA} is absent: the real video clips are not available")
    return MEDIA


@pytest.fixture(scope="session")
def shared_clip_dir() -> Path:
    """The ViT-B/32 config, tokenizer and processor files (no weights) shipped beside the repo:
    for tests that need ViT-B/32's real shape."""
    if not (SHARED_CLIP_DIR / "config.json").is_file():
        pytest.skip(f"{SHARED_CLIP_DIR} is absent: the ViT-B/32 config is needed")
    return SHARED_CLIP_DIR


@pytest.fixture(scope="session")
def clip_tokenizer_dir() -> Path:
    """CLIP's tokenizer and processor files, from the built-in model inside the package."""
    if not (CLIP_TOKENIZER_DIR / "tokenizer.json").is_file():
        pytest.fail(f"{CLIP_TOKENIZER_DIR} has no tokenizer.json: the built-in model is incomplete")
    return CLIP_TOKENIZER_DIR


def copy_tokenizer_files(source: Path, target: Path) -> None:
    """Copy the CLIP tokenizer files of `source` into `target` (for tests that build models)."""
    for name in TOKENIZER_FILES:
        if (source / name).is_file():  # the exporter's list includes optional files
            shutil.copyfile(source / name, target / name)


def write_preprocessor_config(source: Path, target: Path, size: int) -> None:
    """The processor config of `source` with its resize and crop set to `size` pixels."""
    config = json.loads((source / "preprocessor_config.json").read_text(encoding="utf-8"))
    config["size"] = {"shortest_edge": size}
    config["crop_size"] = {"height": size, "width": size}
    (target / "preprocessor_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_hf_dir(clip_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face folder of a tiny random CLIPModel (32 px, patch 8, width 32, D=16)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    # the same shape as the benchmarks' --quick model (benchmarks/ is on the test path)
    config = transformers.CLIPConfig(
        text_config=TINY_TEXT, vision_config=TINY_VISION, projection_dim=16
    )
    folder = tmp_path_factory.mktemp("tiny-hf")
    transformers.CLIPModel(config).eval().save_pretrained(folder)
    copy_tokenizer_files(clip_tokenizer_dir, folder)
    write_preprocessor_config(clip_tokenizer_dir, folder, TINY_IMAGE_SIZE)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_hf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported by streamdet (fp32): image.onnx, text.onnx, tokenizer, meta.json."""
    from streamdet.clip.export import export_model

    out_dir = tmp_path_factory.mktemp("tiny-export") / "model"
    return export_model(tiny_hf_dir, out_dir).out_dir


@pytest.fixture
def quick_argv(tiny_hf_dir: Path, tmp_path: Path) -> list[str]:
    """The speed benchmarks' --quick arguments on the tiny model, with a cache of this test's."""
    return ["--quick", "--source", str(tiny_hf_dir), "--cache-dir", str(tmp_path / "cache")]
