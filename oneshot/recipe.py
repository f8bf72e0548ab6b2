"""Run configuration: a YAML recipe read into typed sections, one per phase, saved with every output.

Each section is a dataclass whose fields are the phase's knobs with units in comments; unknown keys are errors
that name the section, so a typo in a recipe never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

__all__ = [
    "Recipe", "SupernetSection", "DataSection", "TrainSection", "EvaluateSection", "PredictSection",
    "SearchSection", "RetrainSection", "load_recipe", "resolve_recipe_path", "parse_overrides", "RECIPES_DIR",
]

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


@dataclass
class SupernetSection:
    """Which registered supernet, with config overrides (e.g. num_classes, image_size)."""

    name: str = "mbv3_tiny"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSection:
    """Dataset and loading; splits are fractions of the labelled pool (digits) or of the train folder."""

    name: str = "digits"  # digits | cifar10 | imagefolder
    path: str | None = None  # local folder for cifar10 / imagefolder; nothing is downloaded
    image_size: int = 16  # pixels, square
    batch_size: int = 64
    holdout_fraction: float = 0.2  # of the training pool, held out to score subnets during search
    test_fraction: float = 0.2  # digits only: final-report split (cifar10/imagefolder use their test folder)
    augment: bool = True
    num_workers: int = 0
    max_train_samples: int | None = None  # class-balanced subset, for quick runs on big datasets
    max_eval_samples: int | None = None
    crop_padding: int | None = None  # largest random shift in pixels when augmenting; None: image_size // 8
    hflip: bool | None = None  # random horizontal flips; None: the dataset's default (off for digits)
    mean: list[float] | None = None  # per-channel normalization; None: the dataset's default
    std: list[float] | None = None
    split_seed: int = 0  # seeds the train/holdout/test split, independent of the training seed


@dataclass
class TrainSection:
    """Supernet training: path sampler, optimizer and schedule, hardware."""

    sampler: str = "fair"  # fair | uniform | sandwich
    sampler_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    max_steps: int = -1  # -1: no limit beyond epochs
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "SGD", "lr": 0.05, "momentum": 0.9,
                                                               "weight_decay": 4e-5, "nesterov": True})
    scheduler: dict[str, Any] | None = field(default_factory=lambda: {"name": "cosine"})
    grad_clip: float | None = 5.0  # max global grad norm; None disables
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    threads: int | None = None  # torch CPU threads; None picks a sane default
    label_smoothing: float = 0.0
    channels_last: bool = True  # NHWC activations: ~2x faster depthwise convs on CPU (oneDNN)
    checkpoint_every_n_steps: int | None = None  # also save mid-epoch; None: at every epoch end only
    log_every_n_steps: int = 10


@dataclass
class EvaluateSection:
    """Subnet scoring on the holdout split after BN recalibration."""

    num_subnets: int = 100
    calib_batches: int = 4  # K batches re-estimating BN statistics per subnet (README: accuracy vs K)
    calib_batch_size: int = 128
    batch_size: int = 128  # holdout images per forward pass
    seed: int = 0  # fixes the calibration subset and the random subnets drawn


@dataclass
class PredictSection:
    """Accuracy predictors fitted on evaluated subnets."""

    models: list[str] = field(default_factory=lambda: ["xgb", "gp"])
    folds: int = 5
    target: str = "holdout_acc"


@dataclass
class SearchSection:
    """Budgeted Bayesian search; budgets map a cost ('flops', 'macs', 'params') to a list of limits."""

    budgets: dict[str, list[float] | float] = field(default_factory=dict)  # a scalar applies to every budget
    objective: str = "supernet"  # supernet | predictor
    sampler: str | None = None  # predictor | tpe | gp | nsga2 | random | rea; None: predictor (tpe for pareto)
    sampler_args: dict[str, Any] = field(default_factory=dict)  # e.g. {"population_size": 10} for rea
    n_trials: int = 100  # distinct subnets evaluated in total (re-runs and workers share this target)
    strategy: str = "constrained"  # several budgets: one study per budget | "pareto": one multi-objective study
    storage: str | None = None  # Optuna storage URL; None: SQLite file in the run folder
    study_name: str | None = None
    # When a budget names `latency` (ms): how to time subnets for the latency model (oneshot.score.latency), e.g.
    # {"num_subnets": 60, "device": "cpu", "batch_size": 1, "repeats": 20}.
    latency: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetrainSection:
    """Standalone retraining of chosen subnets."""

    epochs: int = 10
    from_scratch: bool = True  # False: fine-tune from inherited weights
    extra_subnets: int = 5  # also retrain this many evaluated subnets spread over the accuracy range, so the
    #                         supernet-vs-standalone rank correlation rests on more than the chosen few
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "SGD", "lr": 0.05, "momentum": 0.9,
                                                               "weight_decay": 4e-5, "nesterov": True})
    scheduler: dict[str, Any] | None = field(default_factory=lambda: {"name": "cosine"})


@dataclass
class Recipe:
    """A whole run: every phase's section plus the seed and where outputs go."""

    name: str = "run"
    seed: int = 0
    output_dir: str = "checkpoints"
    supernet: SupernetSection = field(default_factory=SupernetSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    predict: PredictSection = field(default_factory=PredictSection)
    search: SearchSection = field(default_factory=SearchSection)
    retrain: RetrainSection = field(default_factory=RetrainSection)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Build from nested dicts; unknown keys raise naming the section and the known keys."""
        return _build(cls, data or {}, "recipe")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, saved beside every output so a result always says how it was made."""
        return dataclasses.asdict(self)

    @property
    def run_dir(self) -> Path:
        """Folder holding this recipe's outputs: `<output_dir>/<name>`."""
        return Path(self.output_dir) / self.name


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        ftype = fields[name].type
        sub = _SECTIONS.get(ftype if isinstance(ftype, str) else getattr(ftype, "__name__", ""))
        kwargs[name] = _build(sub, value or {}, f"{where}.{name}") if sub else value
    return cls(**kwargs)


_SECTIONS = {c.__name__: c for c in (SupernetSection, DataSection, TrainSection, EvaluateSection, PredictSection,
                                     SearchSection, RetrainSection)}


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice is an error (the second would silently win)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def resolve_recipe_path(path: str | Path) -> Path:
    """A recipe path as given, or the name of a shipped recipe (`digits` -> recipes/digits.yaml)."""
    p = Path(path)
    for candidate in (p, RECIPES_DIR / p, RECIPES_DIR / f"{p}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = sorted(q.stem for q in RECIPES_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"recipe {str(path)!r} not found (shipped recipes: {shipped})")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a YAML recipe, apply dotted overrides (`{"train.epochs": 1}`), and validate it."""
    p = resolve_recipe_path(path)
    try:
        data = yaml.load(p.read_text(), Loader=_StrictLoader) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"recipe {str(p)!r} is not valid YAML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    data.setdefault("name", p.stem)
    return Recipe.from_dict(data)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["train.epochs=2", "data.path=/x"]` -> `{"train.epochs": 2, "data.path": "/x"}` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.epochs=2), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out
