"""Run configuration: a YAML recipe read into typed sections, one per phase, saved with every output.

Each section is a dataclass whose fields are the phase's knobs with units in comments; unknown keys are errors
that name the section, so a typo in a recipe never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

__all__ = [
    "Recipe", "SupernetSection", "DataSection", "TrainSection", "FewShotSection", "EvaluateSection", "PredictSection",
    "SearchSection", "RetrainSection", "CalibrateSection", "load_recipe", "resolve_recipe_path", "parse_overrides",
    "RECIPES_DIR",
]

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


@dataclass
class SupernetSection:
    """Which supernet: a registered one by `name` with config overrides (e.g. num_classes, image_size), or your own
    nn.Module built from the elastic blocks by `class_path` with its constructor's `init_args` (as Lightning's CLI
    names classes); the two ways exclude each other."""

    name: str = "mbv3_tiny"  # with class_path: the class's name (the space's name in reports)
    overrides: dict[str, Any] = field(default_factory=dict)
    class_path: str | None = None  # e.g. mypkg.models.MyNet; only this module is imported, when training starts
    init_args: dict[str, Any] = field(default_factory=dict)  # its keyword arguments (saved in checkpoints)


@dataclass
class DataSection:
    """Dataset and loading; splits are fractions of the labelled pool (digits) or of the train folder.

    `class_path` (with `init_args`) names your own map-style dataset or LightningDataModule instead of a registered
    `name` (oneshot.data.user); the class then decides `path` and `image_size`, which the section leaves out.
    """

    name: str = "digits"  # digits | cifar10 | imagefolder | a registered name; with class_path: the class's name
    class_path: str | None = None  # e.g. mypkg.data.MyDataModule
    init_args: dict[str, Any] = field(default_factory=dict)  # its keyword arguments (saved in checkpoints)
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
class FewShotSection:
    """Few-shot supernets after one-shot training (oneshot.training.few_shot): k copies split on one decision."""

    split: str = ""  # an unconditional decision of the space, e.g. layer0 (macro) or 3<-2 (nb201)
    epochs: int = 1  # fine-tuning epochs of each of the k copies (k = the split decision's number of choices)
    lr_scale: float = 1.0  # the few-shot phase's peak LR as a fraction of train.optimizer.lr (its schedule restarts)


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
    precision: str | int = "32-true"  # Lightning precision, e.g. 32-true, bf16-mixed, 16-mixed
    threads: int | None = None  # torch CPU threads; None picks a sane default
    label_smoothing: float = 0.0
    channels_last: bool = True  # NHWC activations: ~2x faster depthwise convs on CPU (oneDNN)
    checkpoint_every_n_steps: int | None = None  # also save mid-epoch; None: at every epoch end only
    log_every_n_steps: int = 10
    few_shot: FewShotSection | None = None  # set: split the trained supernet and fine-tune each copy


@dataclass
class EvaluateSection:
    """Subnet scoring on the holdout split after BN recalibration."""

    num_subnets: int = 100
    calib_batches: int = 3  # K batches re-estimating BN statistics per subnet (README: accuracy vs K)
    calib_batch_size: int = 128
    batch_size: int = 128  # holdout images per forward pass
    seed: int = 0  # fixes the calibration subset and the random subnets drawn


@dataclass
class PredictSection:
    """Accuracy predictors fitted on evaluated subnets."""

    models: list[str] = field(default_factory=lambda: ["xgb", "gp"])
    folds: int = 5
    target: str = "holdout_acc"
    # Zero-cost proxies as extra predictor features (`zc`), e.g. [synflow, params, flops]; scored once per subnet on
    # proxy_batch_size training images into <run>/proxies.jsonl. Empty: predictors see the encoding only.
    proxies: list[str] = field(default_factory=list)
    proxy_batch_size: int = 64


@dataclass
class SearchSection:
    """Budgeted Bayesian search; budgets map a cost ('flops', 'macs', 'params') to a list of limits."""

    budgets: dict[str, list[float] | float] = field(default_factory=dict)  # a scalar applies to every budget
    objective: str = "supernet"  # supernet (recalibrated holdout accuracy) | a name in predict.models (e.g. xgb)
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
class CalibrateSection:
    """Calibration on a few standalone truths (oneshot.deploy.calibrate): `subnets` evaluated subnets, spread over
    cost and supernet accuracy, are trained with the retrain settings; a predictor on the signals (supernet holdout
    accuracy and loss, MACs, params, predict.proxies) is fitted on their holdout accuracy; `search.objective:
    calibrated` then maximizes it. 0 subnets: off (today's behaviour)."""

    subnets: int = 0  # N standalone trainings (each retrain.epochs long); NAS-Bench-Macro: 25 (README)
    predictor: str = "gp"  # the stacked model fitted on the truths
    acquisition: str = "mean"  # mean | ucb (mean + kappa * std)
    kappa: float = 1.0
    # further truths after the design's `subnets`, one per search budget per round where the fused estimate is
    # highest at mean + active_kappa * std (0: the predicted best not yet trained); 0 further: the design alone.
    # NAS-Bench-Macro, 25 truths: 7 by the design + 18 so left 0.09-0.15 points of regret per budget (README)
    active: int = 0
    active_kappa: float = 0.0


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
    calibrate: CalibrateSection = field(default_factory=CalibrateSection)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Build from nested dicts; unknown keys, wrong types and out-of-range values raise naming the key."""
        recipe = _build(cls, _check_class_paths(data or {}), "recipe")
        for section in (recipe.supernet, recipe.data):
            if section.class_path is not None:  # reports name the space / data by the class
                section.name = section.class_path.rpartition(".")[2]
        _expand_paths(recipe)
        if recipe.train.few_shot is not None:
            _check_few_shot_split(recipe)
        objective = recipe.search.objective
        if objective not in ("supernet", "calibrated") and objective not in recipe.predict.models:
            raise ValueError(f"recipe value search.objective must be 'supernet' or one of predict.models "
                             f"{recipe.predict.models} (or 'calibrated'), got {objective!r}")
        if objective == "calibrated" and recipe.calibrate.subnets == 0:
            raise ValueError("recipe value search.objective 'calibrated' needs calibrate.subnets > 0 (the standalone "
                             "truths it is calibrated on)")
        return recipe

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, saved beside every output so a result always says how it was made."""
        out = dataclasses.asdict(self)
        for section, keys in _NAMED_KEYS.items():  # a class path replaces these: leave them out, as it was written
            if out[section]["class_path"] is not None:
                for key in keys:
                    out[section].pop(key)
        if out["search"]["storage"]:  # saved in recipe.json, reports and checkpoints: never with its password
            from oneshot.redact import redact

            out["search"]["storage"] = redact(out["search"]["storage"])
        return out

    @property
    def run_dir(self) -> Path:
        """Folder holding this recipe's outputs: `<output_dir>/<name>`."""
        return Path(self.output_dir) / self.name


# Keys of a section that name a shipped thing (or configure one), so they cannot go with the section's class_path.
_NAMED_KEYS = {"supernet": ("name", "overrides"), "data": ("name", "path", "image_size")}


def _check_class_paths(data: Any) -> Any:
    """A section names either a registered thing or a class path, never both; init_args only with a class path.

    Returns `data` (not changed in place) without the keys a class path leaves cleared (`name: null`).
    """
    if not isinstance(data, dict):
        return data  # _build reports it
    data = dict(data)
    for section, keys in _NAMED_KEYS.items():
        raw = data.get(section)
        if not isinstance(raw, dict):
            continue
        if raw.get("class_path") is not None:
            given = [k for k in keys if raw.get(k) not in (None, {})]  # `--set supernet.name=null` clears one
            if given:
                raise ValueError(f"recipe {section}.class_path and {section}.{given[0]} exclude each other: the class "
                                 f"path names your own code, {section}.{given[0]} configures a registered one; give "
                                 f"one of them")
            data[section] = {k: v for k, v in raw.items() if not (k in keys and v is None)}
        elif raw.get("init_args"):
            raise ValueError(f"recipe {section}.init_args needs {section}.class_path (the class they are passed to)")
    return data


def _expand_paths(recipe: Recipe) -> None:
    """`$VAR` / `${VAR}` in the path values (output_dir, data.path) become the environment's values, so
    `output_dir: ${SCRATCH}/runs` means what it says instead of making a folder named `${SCRATCH}`; an unset
    variable is an error naming the key, `$$` is a literal `$`. (search.storage is expanded only when the storage
    is opened, so a password given as `${VAR}` is never saved.)"""
    from oneshot.redact import expand_env

    if "$" in recipe.output_dir:
        recipe.output_dir = expand_env(recipe.output_dir, "recipe value output_dir")
    if recipe.data.path is not None and "$" in recipe.data.path:
        recipe.data.path = expand_env(recipe.data.path, "recipe value data.path")


def _check_few_shot_split(recipe: Recipe) -> None:
    """train.few_shot.split must be an unconditional decision of the recipe's space (one-line error otherwise)."""
    from supernets import get_space
    from supernets.few_shot import check_split

    if recipe.supernet.class_path is not None:
        return  # the space is known once the class is imported, where training starts (few_shot.py checks it)
    try:
        space = get_space(recipe.supernet.name, **recipe.supernet.overrides)
    except (KeyError, TypeError, ValueError):
        return  # an unknown supernet or bad override is reported, with its own message, where the supernet is built
    try:
        check_split(space, recipe.train.few_shot.split)
    except ValueError as exc:
        raise ValueError(f"recipe value train.few_shot.split: {exc}") from None


def _section_of(hint: Any) -> type | None:
    """The section class a field holds (`FewShotSection | None` included), or None for a plain value."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return _SECTIONS.get(getattr(options[0], "__name__", "")) if len(options) == 1 else None


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        sub = _section_of(hints[name])
        key = f"{where}.{name}".removeprefix("recipe.")
        if sub is not None and value is None and type(None) in typing.get_args(hints[name]):
            kwargs[name] = None  # an optional section left out (`few_shot: null`)
        else:
            kwargs[name] = _build(sub, value or {}, key) if sub else _check_value(key, value, hints[name])
    built = cls(**kwargs)
    for name, (ok, expected) in _RANGES.get(cls.__name__, {}).items():
        value = getattr(built, name)
        if value is not None and not ok(value):
            key = f"{where}.{name}".removeprefix("recipe.")
            raise ValueError(f"recipe value {key} must be {expected}, got {value!r}")
    return built


# --------------------------------------------------------------------------- value checks
# YAML 1.1 (PyYAML) reads `1e-3` as a string; a float field takes numeric strings, so `lr: 1e-3` means 0.001.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _check_value(key: str, value: Any, hint: Any) -> Any:
    """`value` as the annotated type wants it (numeric strings become floats); a one-line error naming `key`."""
    out = _coerce(value, hint)
    if out is _BAD:
        raise ValueError(f"recipe value {key} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")
    return out


class _Bad:
    pass


_BAD = _Bad()


def _coerce(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return _numbers_in(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):  # the first option that takes the value wins
            out = _coerce(value, option)
            if out is not _BAD:
                return out
        return _BAD
    if hint is bool:
        return value if isinstance(value, bool) else _BAD
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return float(value) if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) else _BAD
    if hint is str:
        return value if isinstance(value, str) else _BAD
    if origin is list:
        if not isinstance(value, list):
            return _BAD
        items = [_coerce(v, args[0]) if args else v for v in value]
        return _BAD if any(v is _BAD for v in items) else items
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return _BAD
        items = {k: _coerce(v, args[1]) if args else v for k, v in value.items()}
        return _BAD if any(v is _BAD for v in items.values()) else items
    return value


def _numbers_in(value: Any) -> Any:
    """Free-form specs (optimizer, scheduler, sampler args): numeric strings such as '1e-3' become floats."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_in(v) for v in value]
    return value


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), f"at least {low}"


_ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
_FRACTION = ((lambda v: 0.0 <= v < 1.0), "in [0, 1)")
_POSITIVE = ((lambda v: v > 0), "positive")
_CLASS_PATH = ((lambda v: bool(re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", v))),
               "a dotted path such as mypkg.models.MyNet")
# Ranges per section (None always passes: it means "off" or "default" where the type allows it).
_RANGES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "DataSection": {"class_path": _CLASS_PATH, "image_size": _at_least(4), "batch_size": _at_least(1),
                    "holdout_fraction": _FRACTION, "test_fraction": _FRACTION, "num_workers": _at_least(0),
                    "max_train_samples": _at_least(1), "max_eval_samples": _at_least(1), "crop_padding": _at_least(0),
                    "split_seed": _at_least(0)},
    "TrainSection": {"epochs": _at_least(1), "max_steps": ((lambda v: v == -1 or v >= 1), "-1 (no limit) or >= 1"),
                     "grad_clip": _POSITIVE, "threads": _at_least(1), "label_smoothing": _FRACTION,
                     "checkpoint_every_n_steps": _at_least(1), "log_every_n_steps": _at_least(1),
                     "accelerator": ((lambda v: v in _ACCELERATORS), f"one of {list(_ACCELERATORS)}")},
    "EvaluateSection": {"num_subnets": _at_least(0), "calib_batches": _at_least(1), "calib_batch_size": _at_least(1),
                        "batch_size": _at_least(1)},
    "PredictSection": {"folds": _at_least(2), "proxy_batch_size": _at_least(2)},
    "SearchSection": {"n_trials": _at_least(1)},
    "RetrainSection": {"epochs": _at_least(1), "extra_subnets": _at_least(0)},
    "CalibrateSection": {"subnets": ((lambda v: v == 0 or v >= 3), "0 (off) or at least 3"), "kappa": _at_least(0),
                         "active": _at_least(0), "active_kappa": _at_least(0),
                         "acquisition": ((lambda v: v in ("mean", "ucb")), "mean or ucb")},
    "FewShotSection": {"epochs": _at_least(1), "lr_scale": _POSITIVE, "split": ((lambda v: bool(v)), "a decision of the space")},
    "SupernetSection": {"class_path": _CLASS_PATH},
    "Recipe": {"seed": _at_least(0), "name": ((lambda v: bool(v) and "/" not in v and v not in (".", "..")),
                                                "a folder name (not empty, no '/')")},
}
_SECTIONS = {c.__name__: c for c in (SupernetSection, DataSection, TrainSection, FewShotSection, EvaluateSection,
                                     PredictSection, SearchSection, RetrainSection, CalibrateSection)}


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice is an error (the second would silently win)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    # YAML merge keys (`<<: *base`, standard YAML copied from other configs) merge first; keys written in this
    # mapping override merged ones, as the merge-key spec says: only keys written here twice are an error.
    written = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
    loader.flatten_mapping(node)
    seen = set()
    for key_node in written:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
# YAML 1.2 floats without a dot (`1e-3`, `5E+6`): YAML 1.1 reads them as strings, a trap in every optimizer spec.
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                                    list("-+0123456789"))


def _read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)


def resolve_recipe_path(path: str | Path) -> Path:
    """A recipe path as given, or a recipe's name: `digits` -> ./recipes/digits.yaml when the working folder has
    one (a project's own recipes win), else the shipped recipes/digits.yaml."""
    p = Path(path)
    for candidate in (p, Path("recipes") / f"{p}.yaml", RECIPES_DIR / p, RECIPES_DIR / f"{p}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = sorted(q.stem for q in RECIPES_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"recipe {str(path)!r} not found (shipped recipes: {shipped})")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a YAML recipe, apply dotted overrides (`{"train.epochs": 1}`), and validate it."""
    p = resolve_recipe_path(path)
    try:
        data = _read_yaml(p.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"recipe {str(p)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:  # an empty file would silently train the whole default for minutes
        raise ValueError(f"recipe {str(p)!r} is empty: give at least one section (e.g. `train: {{epochs: 1}}`), or "
                         "run the shipped default with `oneshot run` (recipes/digits.yaml)")
    if not isinstance(data, dict):
        raise ValueError(f"recipe {str(p)!r} must be a mapping of sections (supernet:, data:, train:, ...) at the "
                         f"top level, got a {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, key in enumerate(parents):
            if node.get(key) is None:  # absent, or an empty section in the file (`train:`)
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ValueError(f"cannot set {dotted}: {'.'.join(parents[:depth + 1])} is a value "
                                 f"({node!r}), not a section")
        node[leaf] = value
    data.setdefault("name", p.stem)
    return Recipe.from_dict(data)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["train.epochs=2", "data.path=/x"]` -> `{"train.epochs": 2, "data.path": "/x"}` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or "" in key.split("."):
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.epochs=2), got {item!r}")
        if key in out:
            raise ValueError(f"--set {key} is given twice ({out[key]!r} and {value!r}); give it once")
        try:
            out[key] = _read_yaml(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {key}: {value!r} is not a YAML value ({' '.join(str(exc).split())})") from None
    return out
