"""Training the built-in model: the per-patch loss teaches patch tokens, fine-tuning resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from streamdet.clip.hub import BUILTIN_MODELS  # noqa: E402
from streamdet.synth.data import BACKGROUND_PROMPTS, CaptionTable, caption_set, make_batch  # noqa: E402
from streamdet.synth.logits import logits_for, logits_with_patches  # noqa: E402
from streamdet.synth.model import build_model, to_pixels  # noqa: E402
from streamdet.synth.train import main, patch_loss  # noqa: E402

MODEL_DIR = BUILTIN_MODELS["streamdet/scenes-clip"]


@pytest.fixture(scope="module")
def tokens():
    from transformers import CLIPTokenizerFast

    if not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip("no tokenizer in streamdet/models/scenes-clip")
    tokenizer = CLIPTokenizerFast.from_pretrained(MODEL_DIR)
    texts = ["a red circle", "a blue square", "a car", *BACKGROUND_PROMPTS]
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def test_patch_logits_come_with_the_same_crop_logits(tokens, tiny_arch) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_arch).eval()
    pixels = to_pixels(np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), np.uint8))
    with torch.no_grad():
        crops, patches = logits_with_patches(model, pixels, tokens)
        assert torch.allclose(crops, logits_for(model, pixels, tokens), atol=1e-5)
    assert patches.shape == (3, 16, 6)  # 4 x 4 patches, 3 captions + 3 backgrounds


def test_patch_loss_teaches_where_objects_are(tokens, tiny_arch) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_arch)
    table = CaptionTable.build(caption_set())
    batch = make_batch(np.random.default_rng(0), table, 32, image_size=32, patch_grid=4)
    cols = [table.texts.index(t) for t in ("a red circle", "a blue square", "a car")]
    labels = torch.from_numpy(batch.patches[..., cols].reshape(32, 16, 3))
    pixels = to_pixels(batch.images)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        _, patches = logits_with_patches(model, pixels, tokens)
        loss = patch_loss(patches, labels, len(BACKGROUND_PROMPTS))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_patch_loss_ignores_what_is_not_labelled() -> None:
    logits = torch.zeros(1, 2, 4)  # 2 captions + 2 backgrounds
    ignored = torch.full((1, 2, 2), -1, dtype=torch.int8)
    assert float(patch_loss(logits, ignored, 2)) == 0.0
    one = ignored.clone()
    one[0, 0, 0] = 1  # one positive: p = 1/3 against two equal backgrounds, loss log(3)
    assert float(patch_loss(logits, one, 2)) == pytest.approx(np.log(3), rel=1e-5)


def test_fine_tune_from_a_saved_model(tmp_path) -> None:
    if not (MODEL_DIR / "model.safetensors").is_file():
        pytest.skip("no trained model in streamdet/models/scenes-clip")
    out = tmp_path / "tuned"
    record = tmp_path / "record.json"
    argv = [
        "--out",
        str(out),
        "--init",
        str(MODEL_DIR),
        "--steps",
        "2",
        "--batch",
        "8",
        "--patch-weight",
        "1",
        "--easy-until",
        "0",
        "--frame-weight",
        "1",
        "--frames",
        "1",
        "--checkpoint-minutes",
        "0",
        "--record",
        str(record),
    ]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    shipped = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["vision_config"]["hidden_size"] == shipped["vision_config"]["hidden_size"]
    assert (
        config["text_config"]["num_attention_heads"]
        == shipped["text_config"]["num_attention_heads"]
    )
    run = json.loads(record.read_text())
    assert run["steps_done"] == 2 and run["config"]["init"] == str(MODEL_DIR)
    assert run["history"][0]["patch"] > 0  # the patch loss ran
    assert run["history"][0]["frame"] > 0  # and the whole-frame token loss
    assert run["config"]["frame_head"] == "naclip"
    assert (out / "tokenizer.json").is_file()


def test_soft_targets_train_on_randomised_crops_and_frames(tmp_path) -> None:
    if not (MODEL_DIR / "model.safetensors").is_file():
        pytest.skip("no trained model in streamdet/models/scenes-clip")
    record = tmp_path / "record.json"
    argv = ["--out", str(tmp_path / "soft"), "--init", str(MODEL_DIR), "--steps", "1"]
    argv += ["--batch", "8", "--patch-weight", "1", "--patch-soft", "--easy-until", "0"]
    argv += ["--frame-weight", "1", "--frames", "1", "--frame-soft", "--randomise", "1"]
    argv += ["--checkpoint-minutes", "0", "--record", str(record)]
    assert main(argv) == 0
    run = json.loads(record.read_text())
    assert run["config"]["patch_soft"] and run["config"]["frame_soft"]
    first = run["history"][0]
    assert np.isfinite(first["patch"]) and first["patch"] > 0  # NaN covers are left out
    assert np.isfinite(first["frame"]) and first["frame"] > 0


@pytest.mark.parametrize(
    ("option", "needs"), [("--patch-soft", "--patch-weight"), ("--frame-soft", "--frame-weight")]
)
def test_soft_targets_need_their_loss(capsys, option, needs) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--out", "/nonexistent/x", "--steps", "1", option])
    assert stop.value.code == 2
    assert f"{option} needs {needs} above 0" in capsys.readouterr().err


def test_hard_negative_term_weighs_the_worst_wrong_caption() -> None:
    from streamdet.synth.train import streamdet_loss

    labels = torch.zeros(4, 5, dtype=torch.int8)  # 4 crops, 3 captions (all wrong) + 2 backgrounds
    labels[:, 3:] = 1
    calm = torch.zeros(4, 5)
    calm[:, :3] = -5.0  # every wrong caption well below the backgrounds
    one_bad = calm.clone()
    one_bad[2, 1] = 5.0  # one confident false positive among 12
    args = (2, 0.5, {})
    base_calm, _ = streamdet_loss(calm, labels, *args)
    base_bad, _ = streamdet_loss(one_bad, labels, *args)
    hard_calm, parts = streamdet_loss(calm, labels, *args, hard_weight=1.0)
    hard_bad, _ = streamdet_loss(one_bad, labels, *args, hard_weight=1.0)
    assert "hard" in parts
    # the mean spreads the one mistake over 12 pairs; the hard term over the worst 4 (one per
    # crop): it adds about softplus(z) / 4 for it, z = 5 - log(2) against the two backgrounds
    extra = float(hard_bad - hard_calm) - float(base_bad - base_calm)
    assert extra == pytest.approx(
        float(torch.nn.functional.softplus(torch.tensor(5 - np.log(2)))) / 4, abs=0.02
    )


def test_weak_positive_term_lifts_the_least_confident_true_caption() -> None:
    from streamdet.synth.train import streamdet_loss

    labels = torch.zeros(4, 5, dtype=torch.int8)  # 4 crops, 3 captions + 2 backgrounds
    labels[:, 0] = 1  # caption 0 is true in every crop
    sure = torch.zeros(4, 5)
    sure[:, 0] = 5.0  # every true caption well above the backgrounds
    sure[:, 1:3] = -5.0
    one_weak = sure.clone()
    one_weak[2, 0] = -5.0  # one true object the crop all but misses
    args = (2, 0.5, {})
    base_sure, _ = streamdet_loss(sure, labels, *args)
    base_weak, _ = streamdet_loss(one_weak, labels, *args)
    weak_sure, parts = streamdet_loss(sure, labels, *args, weak_weight=1.0)
    weak_weak, _ = streamdet_loss(one_weak, labels, *args, weak_weight=1.0)
    assert "weak" in parts and "weak" not in streamdet_loss(sure, labels, *args)[1]
    # all 4 positives are the weakest 4 (one per crop): the term adds the missed one's
    # softplus(-z) / 4, z = -5 - log(2) against the two backgrounds, less the sure one's
    extra = float(weak_weak - weak_sure) - float(base_weak - base_sure)
    softplus = torch.nn.functional.softplus
    expected = float(softplus(torch.tensor(5 + np.log(2))) - softplus(torch.tensor(np.log(2) - 5)))
    assert extra == pytest.approx(expected / 4, abs=0.02)


@pytest.mark.parametrize("option", ["--hard-weight", "--weak-weight"])
def test_train_rejects_a_negative_loss_weight(capsys, option) -> None:
    from streamdet.synth.train import main as train_main

    with pytest.raises(SystemExit) as stop:
        train_main(["--out", "/nonexistent/x", "--steps", "1", option, "-0.5"])
    assert stop.value.code == 2
    assert f"{option} is a loss weight" in capsys.readouterr().err


def test_recipe_chains_nine_stages_the_eighth_from_an_average(tmp_path, capsys) -> None:
    from streamdet.synth.recipe import average_folder, averaged_sources, stage_commands
    from streamdet.synth.recipe import main as recipe_main

    out = tmp_path / "model"
    commands = stage_commands(out)
    assert [c[c.index("--out") + 1] for c in commands] == [
        str(tmp_path / "model.stage1"),
        str(tmp_path / "model.stage2"),
        str(tmp_path / "model.stage3"),
        str(tmp_path / "model.stage4"),
        str(tmp_path / "model.stage5"),
        str(tmp_path / "model.stage6"),
        str(tmp_path / "model.stage7"),
        str(tmp_path / "model.stage8"),
        str(tmp_path / "model.stage9"),
    ]
    assert "--init" not in commands[0]
    assert commands[1][commands[1].index("--init") + 1] == str(tmp_path / "model.stage1")
    assert commands[2][commands[2].index("--init") + 1] == str(tmp_path / "model.stage2")
    assert "--patch-weight" in commands[1] and "--hard-weight" in commands[2]
    assert "--hard-weight" not in commands[1]
    assert commands[3][commands[3].index("--init") + 1] == str(tmp_path / "model.stage3")
    assert "--frame-weight" in commands[3] and "--frame-weight" not in commands[2]
    # every stage's arguments are ones the training script accepts
    from streamdet.synth.train import main as train_main

    for command in commands:
        with pytest.raises(SystemExit) as stop:
            train_main([*command, "--help"])
        assert stop.value.code == 0
    capsys.readouterr()
    assert stage_commands(out, first=3) == commands[2:]
    assert commands[4][commands[4].index("--init") + 1] == str(tmp_path / "model.stage4")
    # stages 5 and 6 randomise the scenes, on one thread; the others do not
    assert commands[4][commands[4].index("--randomise") + 1] == "0.8"
    assert commands[4][commands[4].index("--threads") + 1] == "1"
    assert all("--randomise" not in c for c in commands[:4])
    assert commands[5][commands[5].index("--init") + 1] == str(tmp_path / "model.stage5")
    assert commands[5][commands[5].index("--randomise") + 1] == "0.9"
    assert commands[5][commands[5].index("--threads") + 1] == "1"
    # stage 6 alone adds verification views; stage 5 stays as the shipped stage-5 model was made
    assert commands[5][commands[5].index("--verify-crops") + 1] == "0.25"
    assert all("--verify-crops" not in c for c in commands[:5])
    alone = stage_commands(out, first=6, init=tmp_path / "shipped")
    assert alone[0] == [*commands[5][:3], str(tmp_path / "shipped"), *commands[5][4:]]
    # stage 7 goes on from stage 6 with varied occluders; only it has them
    assert commands[6][commands[6].index("--init") + 1] == str(tmp_path / "model.stage6")
    assert "--varied-occluders" in commands[6]
    assert all("--varied-occluders" not in c for c in commands[:6])
    # stages 6 and 7 are averaged; from stage 7, stage 6 is --init
    assert averaged_sources(out) == [tmp_path / "model.stage6", tmp_path / "model.stage7"]
    assert averaged_sources(out, 7, tmp_path / "s6") == [tmp_path / "s6", tmp_path / "model.stage7"]
    # stage 8 starts from the average with the hard camera; only it has it
    assert average_folder(out) == tmp_path / "model.average"
    assert commands[7][commands[7].index("--init") + 1] == str(tmp_path / "model.average")
    assert "--hard-camera" in commands[7] and "--varied-occluders" in commands[7]
    assert all("--hard-camera" not in c for c in commands[:7])
    # stage 9 goes on from stage 8 at a 96-pixel input; only it changes the input size
    assert commands[8][commands[8].index("--init") + 1] == str(tmp_path / "model.stage8")
    assert commands[8][commands[8].index("--image-size") + 1] == "96"
    assert "--hard-camera" in commands[8]
    assert all("--image-size" not in c for c in commands[:8])
    assert recipe_main(["--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 13 and printed[-1].startswith("streamdet export")
    assert printed[7].startswith("python -m streamdet.synth.average --out " + str(out) + ".average")
    assert printed[8].startswith(f"python -m streamdet.synth.train --out {out}.stage8")
    assert printed[9].startswith(f"python -m streamdet.synth.train --out {out}.stage9")
    assert printed[10] == f"cp -R {out}.stage9/. {out}/"
    shipped = str(tmp_path / "shipped")
    assert (
        recipe_main(["--out", str(out), "--from-stage", "5", "--init", shipped, "--dry-run"]) == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert (
        len(printed) == 9 and f"--init {shipped}" in printed[0] and "--randomise 0.8" in printed[0]
    )
    assert f"--init {out.with_name('model.stage5')}" in printed[1]
    # stage 8 alone: from the given average, no average made
    assert (
        recipe_main(["--out", str(out), "--from-stage", "8", "--init", shipped, "--dry-run"]) == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5 and f"--out {out}.stage8 --init {shipped} " in printed[0]
    assert f"--out {out}.stage9 --init {out}.stage8 " in printed[1]
    # stage 9 alone: from the given stage-8 model
    assert (
        recipe_main(["--out", str(out), "--from-stage", "9", "--init", shipped, "--dry-run"]) == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and f"--out {out}.stage9 --init {shipped} " in printed[0]
    assert not out.exists() and not (tmp_path / "model.stage1").exists()


def test_fine_tune_draws_crops_at_the_models_own_size(tmp_path, tiny_arch, monkeypatch) -> None:
    """A model of another input size (32 px here, not the built-in 64) trains on crops of its
    own size, patch labels on its own token grid, frames on the tokens the detector's one pass
    gives it (32 frame pixels, not the 64 px model's 16), and is validated at that size."""
    from streamdet.config import GridConfig
    from streamdet.detect.onepass import token_px
    from streamdet.synth import train as train_module
    from streamdet.synth.frames import TOKEN_PX
    from streamdet.synth.model import DETECTOR_DEFAULTS, save_model

    if not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip("no tokenizer in streamdet/models/scenes-clip")
    drawn: list[tuple[int, tuple[int, ...]]] = []
    real_batch = train_module.make_frame_batch

    def recorded(*args, **kwargs):
        batch = real_batch(*args, **kwargs)
        drawn.append((kwargs.get("token_px", TOKEN_PX), batch.pixels.shape))
        return batch

    monkeypatch.setattr(train_module, "make_frame_batch", recorded)
    start = tmp_path / "small"
    save_model(
        build_model(tiny_arch), start, tokenizer_source=MODEL_DIR, arch=tiny_arch, threshold=None
    )
    out, record = tmp_path / "tuned", tmp_path / "record.json"
    argv = ["--out", str(out), "--init", str(start), "--steps", "1", "--batch", "4"]
    argv += ["--patch-weight", "1", "--easy-until", "0", "--frame-weight", "1", "--frames", "1"]
    assert main([*argv, "--checkpoint-minutes", "0", "--record", str(record)]) == 0
    run = json.loads(record.read_text())
    assert run["config"]["arch"]["image_size"] == 32
    assert run["history"][0]["patch"] > 0 and np.isfinite(run["history"][0]["loss"])
    assert 0.0 < run["calibration"]["threshold"] < 1.0  # calibrated on 32 px crops too
    config = json.loads((out / "config.json").read_text())
    assert config["vision_config"]["image_size"] == 32
    grid = GridConfig(patch=DETECTOR_DEFAULTS["patch"], window=DETECTOR_DEFAULTS["window"])
    runs_on = token_px(grid, 32, tiny_arch.patch_size)  # what Detector's one pass uses
    assert runs_on == 32 and drawn
    for px, shape in drawn:  # each token one model patch of 8 px, cut from 32 frame pixels
        assert px == runs_on
        assert shape[1] % 8 == 0 and shape[2] % 8 == 0


def test_image_size_resizes_a_saved_models_positions_and_trains_at_it(tmp_path, tiny_arch) -> None:
    """``--image-size`` with ``--init``: the 32 px model's 4 x 4 position grid becomes 6 x 6
    (the class token's row kept), and it trains and is saved at 48 px."""
    from transformers import CLIPModel

    from streamdet.synth.model import resized_input, save_model

    if not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip("no tokenizer in streamdet/models/scenes-clip")
    model = build_model(tiny_arch)
    grown = resized_input(model, 48)
    old = model.vision_model.embeddings.position_embedding.weight.detach()
    new = grown.vision_model.embeddings.position_embedding.weight.detach()
    assert old.shape[0] == 1 + 16 and new.shape[0] == 1 + 36
    assert torch.equal(new[0], old[0])
    assert torch.allclose(new[1:].mean(0), old[1:].mean(0), atol=0.05)  # resized, not re-drawn
    pixels = torch.rand(2, 3, 48, 48)
    assert grown.get_image_features(pixel_values=pixels) is not None
    start = tmp_path / "small"
    save_model(model, start, tokenizer_source=MODEL_DIR, arch=tiny_arch, threshold=None)
    out, record = tmp_path / "grown", tmp_path / "record.json"
    argv = ["--out", str(out), "--init", str(start), "--image-size", "48", "--steps", "1"]
    argv += ["--batch", "4", "--patch-weight", "1", "--easy-until", "0", "--frame-weight", "0"]
    assert main([*argv, "--checkpoint-minutes", "0", "--record", str(record)]) == 0
    assert json.loads(record.read_text())["config"]["arch"]["image_size"] == 48
    saved = CLIPModel.from_pretrained(out)
    assert saved.config.vision_config.image_size == 48
    assert saved.vision_model.embeddings.position_embedding.weight.shape[0] == 1 + 36


@pytest.mark.parametrize("size", ["50", "8"])
def test_image_size_must_fit_the_patch_grid(capsys, size) -> None:
    with pytest.raises(SystemExit):
        main(["--out", "x", "--steps", "1", "--image-size", size])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--image-size {size}: give a multiple of the model's patch size (8)" in err


def test_average_writes_the_mean_of_the_weights(tmp_path, tiny_arch) -> None:
    from safetensors.torch import load_file

    from streamdet.synth.average import average_models
    from streamdet.synth.average import main as average_main
    from streamdet.synth.model import save_model

    if not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip("no tokenizer in streamdet/models/scenes-clip")
    arch = tiny_arch  # 32 px: the threshold is calibrated on crops of the model's own size
    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path / f"m{seed}"
        save_model(build_model(arch), folder, tokenizer_source=MODEL_DIR, arch=arch, threshold=0.5)
        folders.append(folder)
    calib = average_models(folders, tmp_path / "avg")
    assert 0.0 < calib["threshold"] < 1.0
    a, b = (load_file(str(f / "model.safetensors")) for f in folders)
    mean = load_file(str(tmp_path / "avg" / "model.safetensors"))
    key = next(k for k in a if "q_proj.weight" in k)
    assert not torch.equal(a[key], b[key])
    expected = ((a[key].float() + b[key].float()) / 2).half()
    assert torch.equal(mean[key], expected)
    written = json.loads((tmp_path / "avg" / "streamdet.json").read_text())
    assert written["window_threshold"] == calib["threshold"]
    # one model, or models of different shapes, are refused in one line
    with pytest.raises(ValueError, match="at least two"):
        average_models(folders[:1], tmp_path / "x")
    with pytest.raises(SystemExit) as stop:
        average_main(["--out", str(tmp_path / "x"), str(folders[0]), str(tmp_path / "nothing")])
    assert stop.value.code == 2 and not (tmp_path / "x").exists()
