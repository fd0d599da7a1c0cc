"""The detector's settings as frozen dataclasses, one per concern, and the one table of their names.

A ``DetectorConfig`` is made of seven groups:

* ``GridConfig``: where the windows go (cell size, window sizes, stride, windows over the edges);
* ``ScoringConfig``: how windows are scored against the prompts (method, scoring, dense heatmaps,
  prompt templates, background prompts, size words);
* ``BoxConfig``: how heatmaps become boxes (thresholds, peak ratio, sub-cell edges, NMS);
* ``VerifyConfig``: the second look at every box (on/off, the lowest view probability kept);
* ``ReuseConfig``: temporal reuse of window embeddings between frames (tolerance, refresh, motion);
* ``RuntimeConfig``: what runs the model and where (device, backend, precision, threads, ...);
* ``TrackConfig``: identities across the frames of a video (``streamdet.track``), applied by the
  streaming pipeline after the detector (the detector itself stays per-frame).

The field defaults below are THE built-in defaults (the original write-up's settings where it has
one); nothing else in streamdet holds a default for these settings. Every setting also has a flat
name (``SETTINGS``), the one used by ``Detector(**overrides)``, by a model's ``meta.json``
suggestions, by presets and by the command line, so that each layer speaks the same language.
Resolving the layers and checking their combination is ``streamdet.config.resolve``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from streamdet.config.presets import DEFAULT_PRESET
from streamdet.errors import ConfigError

#: The model used when none is named: the built-in one, shipped inside the package.
DEFAULT_MODEL = "streamdet/scenes-clip"
METHODS = ("windows", "occlusion", "dense")
#: The one-pass dense last layers (``streamdet.clip.frame_tower``); the first is the default.
DENSE_HEADS = ("naclip", "clearclip", "sclip", "maskclip")
SCORINGS = ("calibrated", "reference")
DEVICES = ("cpu", "cuda", "tensorrt")
BACKENDS = ("auto", "onnxruntime", "torch")
#: How a verified box's views become its probability (``VerifyConfig.combine``).
VIEW_COMBINES = ("best", "mean")
PRECISIONS = ("fp32", "int8", "fp16")
#: The reuse tolerance ``reuse=True`` stands for, and the built-in default: the largest change of
#: any block's mean colour (a block is a quarter cell on a side), as a fraction of 255, that still
#: lets a window keep its embedding (docs/configuration.md and benchmarks/bench_reuse.py).
REUSE_TOLERANCE = 0.02
#: Widest window in pixels (a typo such as --patch 4096 would otherwise ask for gigabytes).
MAX_WINDOW_PX = 16384


@dataclass(frozen=True)
class GridConfig:
    """Window geometry: ``patch``-pixel cells, windows of ``window`` cells (plus ``scales``),
    stepping ``stride`` cells; ``overhang`` lets windows hang over the frame edges.
    ``token_scale``: in the one-pass ``dense`` method, frame pixels per patch token as a multiple
    of what a token covers in a main window (``patch * window / tokens per window side``): 2
    makes tokens twice as wide, four times fewer, about four times faster.
    ``zoom_scale``: the ``dense`` method's second pass (``streamdet.detect.zoom``), with tokens
    of this scale, over the crops where the first pass's best prompt reaches ``zoom_level``,
    each grown by ``zoom_margin`` of its tokens of context; it runs only when finer than
    ``token_scale`` (0: never).
    ``max_side``: the ``dense`` method sees a frame whose longer side is over this many pixels
    as if it were resized to it: its tokens (both passes') cover proportionally more pixels,
    so its one pass costs what a frame of that size costs, and objects span the tokens they
    would there (0: every frame at its own size). Boxes, heatmaps and verification crops stay
    in the frame's own pixels (``onepass.token_px``)."""

    patch: int = 64
    window: int = 4
    stride: int = 1
    scales: tuple[int, ...] = ()
    overhang: bool = False
    token_scale: float = 1.0
    zoom_scale: float = 0.0
    zoom_level: float = 0.3
    zoom_margin: int = 6
    max_side: int = 0

    def __post_init__(self) -> None:
        # The geometry is checked here, whoever builds it; the resolver checks the same earlier,
        # naming the layer each value came from.
        for name in ("patch", "window", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, but got {value!r}")
        for s in self.scales:
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise ConfigError(
                    f"extra window scales must be positive whole numbers of cells, but got {s!r}"
                )
        if self.stride > min(self.sizes):
            raise ConfigError(
                f"stride ({self.stride} cells) is larger than the smallest window "
                f"({min(self.sizes)} cells), which would leave cells no window sees; "
                "use a stride no larger than the window"
            )
        if self.patch * max(self.sizes) > MAX_WINDOW_PX:
            raise ConfigError(
                f"a window of {max(self.sizes)} cells of {self.patch} px is "
                f"{self.patch * max(self.sizes)} px wide; use a smaller patch or window"
            )

    @property
    def sizes(self) -> tuple[int, ...]:
        """Window sizes in cells, main window first, without duplicates."""
        return tuple(dict.fromkeys((self.window, *self.scales)))

    @property
    def zooms(self) -> bool:
        """Whether the ``dense`` method makes a second, finer pass."""
        return 0 < self.zoom_scale < self.token_scale


@dataclass(frozen=True)
class ScoringConfig:
    """How windows are scored: ``method`` windows, occlusion or dense (the whole frame through the
    image tower once, ``dense_head`` turning its patch tokens into embeddings); ``scoring``
    calibrated (prompt against ``background_prompts``) or reference (the write-up's
    normalisation); ``dense`` fine heatmaps from each window's patch tokens; ``templates``
    averaged per prompt; ``frame_sizes`` reads a leading size word as a size in the frame."""

    method: str = "windows"
    scoring: str = "calibrated"
    dense: bool = False
    dense_head: str = DENSE_HEADS[0]
    templates: tuple[str, ...] = ("{}",)
    background_prompts: tuple[str, ...] = ()
    frame_sizes: bool = True


@dataclass(frozen=True)
class BoxConfig:
    """Heatmap to boxes: ``threshold`` for every prompt unless ``prompt_thresholds`` names it;
    ``peak_ratio`` tightens a box to its region's core; ``refine`` puts edges inside cells;
    ``split`` > 0 cuts a region where erosion, a cell at a time, breaks it into cores of at
    least that many cells (touching objects, one box each; 0: 8-connected regions, never cut:
    ``streamdet.detect.boxes.split_regions``); ``nms_iou`` drops boxes overlapping a better one
    of the same prompt."""

    threshold: float = 0.5
    prompt_thresholds: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    peak_ratio: float = 0.0
    refine: bool = False
    split: int = 2
    nms_iou: float = 0.5

    def for_prompt(self, prompt: str) -> float:
        """The threshold that applies to ``prompt``."""
        return float(self.prompt_thresholds.get(prompt, self.threshold))


@dataclass(frozen=True)
class VerifyConfig:
    """Score crops around every box again (``enabled``); boxes whose best view is below ``floor``
    are dropped. ``margins``: each box is seen in one square crop per margin, ``margin`` x its
    longer side (``streamdet.detect.verify``); every margin is one more crop per box. At most
    ``max_boxes`` boxes per frame are verified (prompts in turns, each its strongest first; the
    others are dropped), so a frame full of weak candidates (real footage before an unfamiliar
    model) costs a bounded number of crops (docs/benchmarks.md has the measurements).
    ``refine`` > 0 moves each box towards the box its first view's patch tokens show, by that
    weight (0: off; models whose export has no patch tokens are never refined); with
    ``refine_second`` > 0, a box also seen at the second margin moves towards the blend of its
    two views' boxes, the second's with that share.
    ``recheck`` > 0 makes the other margins a second opinion (``streamdet.detect.verifier``):
    only boxes whose first view gives their prompt at least ``recheck`` are seen in them, and a
    box the first view puts below ``floor`` is kept if another view reaches ``recheck_floor``.
    0: every box is seen in every margin and kept if its best view reaches ``floor``
    (``recheck_floor`` unused). ``combine`` says what the views make together: ``best`` (the
    best view decides, as above) or ``mean`` (the mean of the views a box was seen in is its
    probability, kept from ``floor``; ``recheck_floor`` unused): a box both views believe in
    outranks one only the wider or the tighter view likes. ``budget``: at most this many views a
    frame (None: every verified box at every margin): every box gets its first view, the
    strongest the others while the crops last, so two margins cost a crowded frame no more than
    one (``verify.fully_viewed``). ``trust`` > 0 lowers the floors for boxes the frame's
    heatmap is sure of: a box is kept when ``trust`` x the log-odds of its heatmap peak plus
    those of its views' probability reach the floor's log-odds (``verify.trusted_floor``)."""

    enabled: bool = False
    floor: float = 0.1
    margins: tuple[float, ...] = (1.5, 2.0)
    max_boxes: int = 16
    refine: float = 0.0
    refine_second: float = 0.0
    recheck: float = 0.0
    recheck_floor: float = 0.4
    combine: str = "best"
    budget: int | None = None
    trust: float = 0.0


@dataclass(frozen=True)
class ReuseConfig:
    """Temporal reuse (``streamdet.detect.reuse``): a window whose pixels changed by at most
    ``threshold`` since its embedding was computed keeps that embedding (``False``: off; ``0``:
    exact, any changed pixel recomputes); no embedding is kept more than ``refresh`` frames; a
    frame whose change since the previous frame touches more than the fraction ``motion`` of its
    cells (a moving camera) is computed whole."""

    threshold: float | bool = REUSE_TOLERANCE
    refresh: int = 30
    motion: float = 0.25

    @property
    def enabled(self) -> bool:
        return self.threshold is not False


@dataclass(frozen=True)
class RuntimeConfig:
    """What runs the towers: ``device`` (cpu, cuda, tensorrt), ``backend`` (auto, onnxruntime,
    torch), ``precision`` (None: the export's own), ``allow_fallback`` to the CPU when a GPU cannot
    start, ``max_batch`` windows per tower run (None: the backend's), ``threads`` (None: one per
    physical core), ``cache_dir`` for exports and derived graphs (None: ~/.cache/streamdet),
    ``crop_on_device`` (None: on where the tower runs on a GPU)."""

    device: str = "cpu"
    backend: str = "auto"
    precision: str | None = None
    allow_fallback: bool = False
    max_batch: int | None = None
    threads: int | None = None
    cache_dir: str | None = None
    crop_on_device: bool | None = None


@dataclass(frozen=True)
class TrackConfig:
    """Tracking (``streamdet.track``): ``enabled`` for video runs; a track is shown from its
    ``min_hits``-th matched frame on; a missed track keeps its id for ``max_missed`` frames and
    stays shown, at its predicted box, for the first ``hold`` of them; boxes match tracks when
    their IoU with the predicted box is at least ``iou``; boxes scoring at least ``high`` are
    matched first, weaker ones then to the tracks just seen (ByteTrack's two stages);
    ``smoothing`` is the weight of the track's motion-predicted box against the new box (0: the
    detector's boxes as they are). The defaults are measured (docs/configuration.md)."""

    enabled: bool = True
    min_hits: int = 2
    max_missed: int = 30
    hold: int = 2
    iou: float = 0.2
    high: float = 0.5
    smoothing: float = 0.5


#: Group name in DetectorConfig -> its dataclass.
GROUPS: dict[str, type] = {
    "grid": GridConfig,
    "scoring": ScoringConfig,
    "boxes": BoxConfig,
    "verify": VerifyConfig,
    "reuse": ReuseConfig,
    "runtime": RuntimeConfig,
    "track": TrackConfig,
}

#: Flat setting name -> (group, field). The flat names are the keyword arguments of ``Detector``,
#: the keys of a model's ``meta.json`` "defaults", of presets and of the command line's flags.
SETTINGS: dict[str, tuple[str, str]] = {
    **{f.name: ("grid", f.name) for f in fields(GridConfig)},
    **{f.name: ("scoring", f.name) for f in fields(ScoringConfig)},
    **{f.name: ("boxes", f.name) for f in fields(BoxConfig)},
    "verify": ("verify", "enabled"),
    "verify_floor": ("verify", "floor"),
    "verify_margins": ("verify", "margins"),
    "verify_max": ("verify", "max_boxes"),
    "verify_refine": ("verify", "refine"),
    "verify_refine_second": ("verify", "refine_second"),
    "verify_recheck": ("verify", "recheck"),
    "verify_recheck_floor": ("verify", "recheck_floor"),
    "verify_combine": ("verify", "combine"),
    "verify_budget": ("verify", "budget"),
    "verify_trust": ("verify", "trust"),
    "reuse": ("reuse", "threshold"),
    "reuse_refresh": ("reuse", "refresh"),
    "reuse_motion": ("reuse", "motion"),
    **{f.name: ("runtime", f.name) for f in fields(RuntimeConfig)},
    "track": ("track", "enabled"),
    **{f"track_{f.name}": ("track", f.name) for f in fields(TrackConfig) if f.name != "enabled"},
}


def builtin_defaults() -> dict[str, Any]:
    """Every setting's built-in default, by flat name (read from the dataclasses above)."""
    instances = {name: cls() for name, cls in GROUPS.items()}
    return {key: getattr(instances[group], attr) for key, (group, attr) in SETTINGS.items()}


@dataclass(frozen=True)
class DetectorConfig:
    """Every setting of a ``Detector``, resolved: no "None means the model's" left except in
    ``runtime`` (where None means "the backend decides").

    ``preset`` names the preset that was applied and ``sources`` says, per flat setting
    name, which layer its value came from: "built-in", "model", "preset <name>" or "caller".
    """

    grid: GridConfig = field(default_factory=GridConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    boxes: BoxConfig = field(default_factory=BoxConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    reuse: ReuseConfig = field(default_factory=ReuseConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    preset: str = DEFAULT_PRESET
    sources: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, hash=False, compare=False
    )

    def flat(self) -> dict[str, Any]:
        """Every setting by flat name: ``Detector(model, prompts, **config.flat())`` rebuilds it."""
        return {key: getattr(getattr(self, group), attr) for key, (group, attr) in SETTINGS.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the groups as nested objects, the preset, and where each value came from."""
        out: dict[str, Any] = {}
        for name in GROUPS:
            group = getattr(self, name)
            out[name] = {f.name: _jsonable(getattr(group, f.name)) for f in fields(group)}
        out["preset"] = self.preset
        out["sources"] = dict(self.sources)
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


#: How a search scores an index row against a prompt: "calibrated" (the prompt against the
#: model's background prompts, as detection scores windows) or "cosine" (the raw similarity).
SEARCH_SCORINGS = ("calibrated", "cosine")


@dataclass(frozen=True)
class IndexConfig:
    """How ``streamdet index`` samples and embeds videos, and how ``streamdet search`` ranks.

    Not detector settings (``Detector`` does not take them), but their one source of defaults.
    ``every``: seconds between sampled frames. The index's window grid is coarse and follows the
    frame: its shorter side is ``cells`` cells, windows are ``window`` cells square and step one
    cell (so neighbours overlap by ``window - 1`` cells); with the defaults a 640x360 frame has
    21 windows of 180 px plus the whole frame (docs/benchmarks.md has the recall of other grids).
    ``collapse``: hits of one file closer than this many seconds are one moment (the best kept);
    at 1 s the top 10 fill with neighbouring samples of one appearance (recall@10 0.78 against
    0.95 at 5 s, benchmarks/bench_search.py). ``scoring``: one of ``SEARCH_SCORINGS``;
    calibrated ranks better than the cosine in 8 of the 9 measured grid and collapse settings.
    ``probe``: the share of an index's rows a query scores when the index has inverted lists
    (``streamdet.search.lists``, from 250,000 rows): the rows of the lists whose centres score
    best; 1 scores every row (exact, 106-212 ms over 2.2 million rows on two cores).
    """

    every: float = 1.0
    cells: int = 4
    window: int = 2
    collapse: float = 5.0
    scoring: str = "calibrated"
    probe: float = 0.2

    def __post_init__(self) -> None:
        for name in ("every", "collapse"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0 < value < 1e6)
            ):
                raise ConfigError(f"{name} must be a number of seconds above 0, but got {value!r}")
        for name in ("cells", "window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
                raise ConfigError(f"{name} must be a whole number from 1 to 64, but got {value!r}")
        if self.window > self.cells:
            raise ConfigError(
                f"window ({self.window} cells) is larger than the frame's shorter side "
                f"({self.cells} cells); use a window of at most {self.cells}"
            )
        if (
            isinstance(self.probe, bool)
            or not isinstance(self.probe, int | float)
            or not 0 < self.probe <= 1
        ):
            raise ConfigError(
                f"probe must be a share of the rows above 0 and at most 1, but got {self.probe!r}"
            )
        if self.scoring not in SEARCH_SCORINGS:
            raise ConfigError(
                f"scoring must be one of {', '.join(SEARCH_SCORINGS)}, but got {self.scoring!r}"
            )
