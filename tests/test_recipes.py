"""Every shipped recipe parses into valid sections, names a registered supernet and dataset, and has budgets."""

from pathlib import Path

import pytest

from oneshot.data import list_datamodules
from oneshot.recipe import RECIPES_DIR, load_recipe
from supernets import list_supernets

RECIPES = sorted(p.stem for p in Path(RECIPES_DIR).glob("*.yaml"))


def test_shipped_recipes_exist():
    assert {"digits", "cifar10", "nb201", "nb201_digits"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_is_valid(name):
    r = load_recipe(name)
    assert r.supernet.name in list_supernets()
    assert r.data.name in list_datamodules()
    assert r.search.budgets and all(r.search.budgets.values())
    assert r.train.sampler in ("fair", "uniform", "sandwich")


def test_missing_cifar_data_names_the_path(tmp_path):
    from oneshot.data import datamodule_from_section

    r = load_recipe("cifar10", {"data.path": str(tmp_path / "nowhere")})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        datamodule_from_section(r.data).setup()


def test_duplicate_keys_in_a_recipe_are_an_error(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("train:\n  epochs: 1\ntrain:\n  epochs: 2\n")
    with pytest.raises(ValueError, match="appears twice"):
        load_recipe(f)


def test_search_sampler_defaults_to_the_measured_best_and_tpe_for_pareto():
    from oneshot.pipeline import Run
    from oneshot.study.search_samplers import list_search_samplers

    for name in RECIPES:  # shipped recipes name a real sampler
        assert load_recipe(name).search.sampler in list_search_samplers()
    assert Run(load_recipe("digits", {"search.sampler": None})).sampler == "predictor"
    # The predictor sampler is single-objective: a Pareto study falls back to TPE unless a sampler is named.
    assert Run(load_recipe("digits", {"search.sampler": None, "search.strategy": "pareto"})).sampler == "tpe"
