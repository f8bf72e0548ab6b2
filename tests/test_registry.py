"""The one `Registry` behind every registry of the project: register, create, list(pattern), duplicates refused."""

from __future__ import annotations

import pytest

from supernets import Registry


def test_register_create_list_and_errors():
    reg: Registry = Registry("widget")

    @reg.register
    def alpha(x: int = 1) -> tuple[str, int]:
        return ("alpha", x)

    reg.register(lambda x=2: ("beta", x), name="beta")
    assert reg.list() == ["alpha", "beta"] and reg.list("a*") == ["alpha"] and "beta" in reg and len(reg) == 2
    assert reg.create("alpha", x=3) == ("alpha", 3) and reg.create("beta") == ("beta", 2)
    with pytest.raises(ValueError, match="widget 'alpha' is already registered"):
        reg.register(alpha)
    with pytest.raises(ValueError, match=r"unknown widget 'gamma'; registered: \['alpha', 'beta'\]"):
        reg.get("gamma")


def test_registration_order_kept_when_asked():
    reg: Registry = Registry("thing", sort=False)
    for name in ("zeta", "alpha", "mu"):
        reg.register(object(), name=name)
    assert reg.list() == ["zeta", "alpha", "mu"]


def _registries():
    """(name, list function, register function, an entry already registered) for every registry of the project."""
    from oneshot.data import list_datamodules, register_datamodule
    from oneshot.data.datasets import DigitsDataModule
    from oneshot.study.search_samplers import list_search_samplers, register_search_sampler
    from oneshot.study.search_samplers.optuna_samplers import tpe
    from oneshot.training.path_samplers import FairSampler, list_path_samplers, register_path_sampler
    from predictors import GPPredictor, list_encodings, list_predictors, register_encoding, register_predictor
    from predictors.encodings import get_encoding
    from supernets import get_space, list_supernets, register_supernet
    from supernets.registry import nb201

    onehot = type(get_encoding("onehot", get_space("nb201_test")))
    return [
        ("spaces", list_supernets, register_supernet, nb201),
        ("datasets", list_datamodules, register_datamodule, DigitsDataModule),
        ("path samplers", list_path_samplers, register_path_sampler, FairSampler),
        ("search samplers", list_search_samplers, register_search_sampler, tpe),
        ("predictors", list_predictors, register_predictor, GPPredictor),
        ("encodings", list_encodings, register_encoding, onehot),
    ]


@pytest.mark.parametrize("index", range(6))
def test_every_registry_lists_and_refuses_duplicates(index):
    name, list_fn, register, entry = _registries()[index]
    names = list_fn()
    assert names and len(names) == len(set(names)), name
    with pytest.raises(ValueError, match="already registered"):
        register(entry)
    assert list_fn() == names  # a refused duplicate leaves the registry as it was


def test_search_sampler_names_for_help_match_the_registry():
    from oneshot.study.defaults import SAMPLER_NAMES
    from oneshot.study.search_samplers import list_search_samplers

    assert list(SAMPLER_NAMES) == list_search_samplers()
