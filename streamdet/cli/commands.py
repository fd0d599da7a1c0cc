"""The one-shot commands: ``demo``, ``detect`` (one image), ``classify`` and ``export``.

Each ``add_*_parser`` registers a sub-command; its handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from streamdet.cli.flags import add_detector_flags, add_model_flags, settings_from_args
from streamdet.config import DENSE_HEADS
from streamdet.errors import ImageReadError, StreamdetError


def read_image(path: str | Path) -> np.ndarray:
    """Read a still image as HxWx3 uint8 BGR, with a one-line error when it cannot be read."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image '{p}' does not exist or is not a file")
    data = np.fromfile(p, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageReadError(
            f"'{p}' could not be decoded as an image (PNG, JPEG, BMP, TIFF, WebP are supported)"
        )
    return image


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cmd_export(args: argparse.Namespace) -> int:
    from streamdet.clip.export import export_model
    from streamdet.clip.hub import BUILTIN_MODELS, hf_source_folder

    source = hf_source_folder(args.model, cache_dir=args.cache_dir)
    if args.model in BUILTIN_MODELS:
        name = args.model
    elif Path(args.model).expanduser().exists():
        name = None  # the path itself
    else:
        name = f"hf://{args.model}"
    report = export_model(
        source,
        args.output,
        source_name=name,
        fp16=args.fp16,
        opset=args.opset,
        tolerance=args.tolerance,
        overwrite=args.overwrite,
        dense_heads=tuple(args.dense_head) if args.dense_head else None,
    )
    print(
        f"exported {args.model} -> {report.out_dir} ({report.precision}, {report.seconds:.1f} s); "
        f"parity vs PyTorch: image {report.image_max_abs_diff:.2e}, "
        f"text {report.text_max_abs_diff:.2e} (tolerance {report.tolerance:.0e})"
    )
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    from streamdet.detect.classify import Classifier

    if bool(args.labels) == bool(args.imagenet):
        raise StreamdetError("give either --labels 'a cat,a dog' or --imagenet (one of the two)")
    image = read_image(args.image)
    clf = Classifier(args.model, **settings_from_args(args).overrides)
    if args.imagenet:
        preds = clf.classify_imagenet(
            image, top_k=args.top_k, ensemble=args.ensemble, crop=args.crop
        )
    else:
        preds = clf.classify(image, _comma_list(args.labels), top_k=args.top_k, crop=args.crop)
    if args.json:
        print(
            json.dumps([{"label": p.label, "probability": round(p.probability, 6)} for p in preds])
        )
    else:
        width = max(len(p.label) for p in preds)
        for p in preds:
            print(f"{p.label:<{width}}  {p.probability:7.2%}")
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from streamdet.detect.detector import Detector
    from streamdet.render import draw_boxes, draw_heatmap

    if not args.prompt:
        raise StreamdetError("give at least one prompt with -p, e.g. -p 'a red car'")
    image = read_image(args.image)
    out_path = Path(args.output) if args.output else None
    if out_path is not None:
        if out_path.resolve() == Path(args.image).resolve():
            raise StreamdetError("the output image equals the input; choose another -o path")
        if out_path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
            raise StreamdetError(f"-o '{out_path}' must end in .png, .jpg, .bmp or .webp")
    settings = settings_from_args(args)
    det = Detector(args.model, args.prompt, preset=settings.preset, **settings.overrides)
    result = det.detect(image)
    records = result.to_records()
    if args.json:
        print(
            json.dumps(
                {
                    "image": str(args.image),
                    "detections": records,
                    "timings_ms": round(result.timings.total_ms, 1),
                }
            )
        )
    else:
        for r in records:
            print(f"{r['label']}: {r['score']:.3f} at {r['box']}")
        print(
            f"{len(records)} detections in {result.timings.total_ms:.0f} ms "
            f"({len(det.grid(*image.shape[:2]))} windows, {det.provider})"
        )
    if out_path is not None:
        drawn = draw_heatmap(image, result, 0) if args.heatmap else image
        drawn = draw_boxes(drawn, result)
        ok, buf = cv2.imencode(out_path.suffix, drawn)
        if not ok:
            raise StreamdetError(f"could not encode '{out_path}'")
        try:
            out_path.write_bytes(buf.tobytes())
        except OSError as exc:
            raise StreamdetError(f"cannot write '{out_path}': {exc.strerror}") from None
        print(f"wrote {out_path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from streamdet.demo import DEMO_PROMPTS, run_demo

    settings = settings_from_args(args)
    report = run_demo(
        args.output,
        model=args.model,
        prompts=args.prompt or DEMO_PROMPTS,
        n_frames=args.frames,
        seed=args.seed,
        overwrite=args.overwrite,
        preset=settings.preset,
        **settings.overrides,
    )
    found = ", ".join(f"{p!r}: {n}" for p, n in report.detections.items())
    print(
        f"{report.frames} frames in {report.seconds:.1f} s ({report.fps:.1f} FPS, "
        f"{report.provider}); boxes per prompt: {found}"
    )
    print(f"wrote {report.video} and {report.jsonl}")
    return 0


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="detect prompts in a generated street clip (no download)")
    p.add_argument("-o", "--output", default="streamdet-demo", help="folder for demo.mp4/.jsonl")
    p.add_argument("-p", "--prompt", action="append", default=[], help="override the prompts")
    p.add_argument("--frames", type=int, default=48, help="clip length in frames (default 48)")
    p.add_argument("--seed", type=int, default=0, help="which generated clip (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's files")
    add_detector_flags(p)
    p.set_defaults(func=_cmd_demo)


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a Hugging Face CLIP to ONNX (needs torch)")
    p.add_argument("model", help="Hugging Face hub id or local Hugging Face CLIP folder")
    p.add_argument("-o", "--output", required=True, help="folder to write (must not exist)")
    p.add_argument("--fp16", action="store_true", help="fp16 weights (for GPUs)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--tolerance", type=float, help="max |ONNX - PyTorch| allowed")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier streamdet export")
    p.add_argument("--cache-dir", help="hub downloads and exports (~/.cache/streamdet)")
    p.add_argument(
        "--dense-head",
        action="append",
        choices=DENSE_HEADS,
        help="one-pass frame graph to include (repeatable; default: the model's dense head)",
    )
    p.set_defaults(func=_cmd_export)


def add_classify_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="zero-shot classify an image against labels")
    p.add_argument("image", help="image file")
    p.add_argument("--labels", help="comma-separated labels, e.g. 'a cat,a dog'")
    p.add_argument("--imagenet", action="store_true", help="the 1000 ImageNet classes")
    p.add_argument("--ensemble", action="store_true", help="average 7 templates (ImageNet)")
    p.add_argument("-k", "--top-k", type=int, default=5, help="how many labels to show")
    p.add_argument(
        "--crop",
        choices=("center", "pad"),
        default="center",
        help="centre crop (CLIP's way) or pad to a square (keeps the edges)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_model_flags(p)
    p.set_defaults(func=_cmd_classify)


def add_detect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="detect prompts in one image")
    p.add_argument("image", help="image file")
    p.add_argument("-p", "--prompt", action="append", default=[], help="what to find (repeat)")
    p.add_argument("-o", "--output", help="write the annotated image here (.png/.jpg)")
    p.add_argument("--heatmap", action="store_true", help="overlay the first prompt's heatmap")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_detector_flags(p)
    p.set_defaults(func=_cmd_detect)
