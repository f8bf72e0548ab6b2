"""Few-shot supernets: routing, extraction, restricted samplers, checkpoints, recipes, and a tiny end-to-end run."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_RECIPE

from supernets import FewShotSupernet, extract, get_config, restrict_space
from supernets.few_shot import check_split

from oneshot.recipe import Recipe, load_recipe
from oneshot.training.few_shot import FewShotSampler, oneshot_checkpoint_path
from oneshot.training.path_samplers import activation_counts, create_path_sampler

SPACES = ["mbv3_test", "nb201_test", "macro_test"]
SPLITS = {"mbv3_test": "s0.w", "nb201_test": "3<-2", "macro_test": "layer0"}


def _perturbed_few_shot(name: str, seed: int = 0) -> FewShotSupernet:
    """A few-shot supernet whose copies hold different weights and BN statistics (so routing is observable)."""
    torch.manual_seed(seed)
    cfg = get_config(name)
    few = FewShotSupernet(cfg, name, SPLITS[name])
    with torch.no_grad():
        for i, copy_ in enumerate(few.copies.values()):
            for p in copy_.parameters():
                p.add_(0.1 * (i + 1) * torch.randn_like(p))
            for bname, b in copy_.named_buffers():
                if "running_mean" in bname:
                    b.add_(0.1 * torch.randn_like(b))
                elif "running_var" in bname:
                    b.mul_(1.0 + 0.5 * torch.rand_like(b))
    return few.eval()


def _x(few: FewShotSupernet) -> torch.Tensor:
    cfg = few.config
    return torch.randn(3, getattr(cfg, "in_chans", 3), cfg.image_size, cfg.image_size)


@pytest.mark.parametrize("name", SPACES)
def test_forward_routes_every_subnet_to_the_copy_owning_its_split_choice(name: str) -> None:
    few = _perturbed_few_shot(name)
    x = _x(few)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(6):
            arch = few.space.sample(rng)
            owner = few.copies[str(arch[few.split]).replace(".", "_")]
            out = few(x, arch)
            assert torch.equal(out, owner(x, arch))
            others = [c for c in few.copies.values() if c is not owner]
            assert any(not torch.allclose(out, c(x, arch)) for c in others)  # the copies really differ


@pytest.mark.parametrize("name", SPACES)
def test_extract_equals_the_few_shot_path(name: str) -> None:
    few = _perturbed_few_shot(name, seed=1)
    x = _x(few)
    rng = np.random.default_rng(1)
    archs = [few.space.largest(), few.space.smallest()] + [few.space.sample(rng) for _ in range(4)]
    with torch.no_grad():
        for arch in archs:
            sub = extract(few, arch)
            assert (sub(x) - few(x, arch)).abs().max() < 1e-5, str(arch)


@pytest.mark.parametrize("name", SPACES)
def test_from_oneshot_starts_every_copy_as_the_trained_supernet(name: str) -> None:
    torch.manual_seed(0)
    oneshot = get_config(name).build_supernet(name).eval()
    few = FewShotSupernet.from_oneshot(oneshot, SPLITS[name]).eval()
    assert len(few.copies) == len(few.space[few.split].choices)
    x = _x(few)
    rng = np.random.default_rng(2)
    with torch.no_grad():
        for _ in range(4):
            arch = few.space.sample(rng)
            assert torch.equal(few(x, arch), oneshot(x, arch))
    with pytest.raises(ValueError, match="already split"):
        FewShotSupernet.from_oneshot(few, SPLITS[name])


def test_split_must_be_an_unconditional_decision_of_the_space() -> None:
    cfg = get_config("mbv3_test")
    with pytest.raises(ValueError, match="not a decision of space 'mbv3_test'"):
        FewShotSupernet(cfg, "mbv3_test", "layer0")
    with pytest.raises(ValueError, match="exists only when 's0.d'"):
        check_split(cfg.search_space("mbv3_test"), "s0.b1.k")


def test_restricted_space_holds_exactly_the_owned_subnets() -> None:
    space = get_config("mbv3_test").search_space("mbv3_test")
    # Splitting on depth: the second block's decisions exist only in the depth-2 copy.
    owned = {c: {space.make(a.as_dict()) for a in restrict_space(space, "s0.d", c)} for c in (1, 2)}
    assert owned[1] | owned[2] == set(space) and not owned[1] & owned[2]
    assert all(a["s0.d"] == c for c, archs in owned.items() for a in archs)
    assert restrict_space(space, "s0.d", 1).fingerprint != space.fingerprint


@pytest.mark.parametrize("name", ["macro_test", "nb201_test"])
def test_fair_sampler_on_a_restricted_space_is_fair_over_the_other_decisions(name: str) -> None:
    space = get_config(name).search_space(name)
    split = SPLITS[name]
    choice = space[split].choices[1]
    sub = restrict_space(space, split, choice)
    sampler = create_path_sampler("fair", sub, seed=3)
    m = max(len(d.choices) for d in space.decisions)  # the narrowed decision does not shrink a step
    for step in range(5):
        paths = sampler.paths(step)
        assert len(paths) == m
        counts = activation_counts(sub, paths)
        assert counts[split] == Counter({choice: m})
        for d in space.decisions:
            if d.name != split:  # every choice once per step (these spaces' decisions all have m choices)
                assert set(counts[d.name].values()) == {1}, d.name


@pytest.mark.parametrize("inner", ["fair", "uniform", "sandwich"])
def test_few_shot_sampler_round_robins_copies_with_the_copys_own_sampler(inner: str) -> None:
    space = get_config("macro_test").search_space("macro_test")
    sampler = FewShotSampler(space, "layer0", inner, seed=5)
    choices = space["layer0"].choices
    k = len(choices)
    for step in range(2 * k):
        c = choices[step % k]
        own = create_path_sampler(inner, restrict_space(space, "layer0", c), seed=5).paths(step // k)
        paths = sampler.paths(step)
        assert all(a.space.fingerprint == space.fingerprint and a["layer0"] == c for a in paths)
        assert [a.as_dict() for a in paths] == [a.as_dict() for a in own]
    assert sampler.state_dict()["args"] == {"split": "layer0", "sampler": inner, "sampler_args": {}}


@pytest.mark.parametrize("few_shot, match", [
    ({"split": "nope"}, "train.few_shot.split: few-shot split 'nope' is not a decision"),
    ({"split": "s0.b1.k"}, "exists only when"),
    ({"split": "s0.w", "epochs": 0}, "train.few_shot.epochs must be at least 1"),
    ({"epochs": 1}, "train.few_shot.split must be a decision"),
    ({"split": "s0.w", "lr_scale": 0}, "train.few_shot.lr_scale must be positive"),
    ({"split": "s0.w", "epoch": 1}, r"unknown key\(s\) \['epoch'\] in train.few_shot"),
    ("s0.w", "train.few_shot must be a mapping"),
])
def test_recipe_few_shot_errors_are_one_line(few_shot, match: str) -> None:
    data = copy.deepcopy(TINY_RECIPE)
    data["train"]["few_shot"] = few_shot
    with pytest.raises(ValueError, match=match) as info:
        Recipe.from_dict(data)
    assert "\n" not in str(info.value)


def test_recipe_file_few_shot_section(tmp_path: Path) -> None:
    data = copy.deepcopy(TINY_RECIPE)
    data["train"]["few_shot"] = {"split": "s0.w", "epochs": 2}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    recipe = load_recipe(tmp_path / "r.yaml")
    assert (recipe.train.few_shot.split, recipe.train.few_shot.epochs) == ("s0.w", 2)
    assert load_recipe(tmp_path / "r.yaml", {"train.few_shot": None}).train.few_shot is None
    assert Recipe.from_dict(recipe.to_dict()).train.few_shot == recipe.train.few_shot


def test_few_shot_train_checkpoint_evaluate_search_extract(tmp_path: Path) -> None:
    """Train one-shot then few-shot on digits; the checkpoint serves evaluation, search and extraction."""
    from oneshot.data import datamodule_from_info
    from oneshot.deploy.extract import extract_subnets, read_manifest
    from oneshot.score.bn import CalibrationSet, recalibrate_bn
    from oneshot.score.evaluate import evaluate
    from oneshot.study.search import search
    from oneshot.training.checkpoint import load_supernet
    from oneshot.training.trainer import train
    from supernets import load_subnet

    data = copy.deepcopy(TINY_RECIPE)
    data["output_dir"] = str(tmp_path)
    data["train"]["few_shot"] = {"split": "s0.w", "epochs": 1, "lr_scale": 0.25}
    recipe = Recipe.from_dict(data)
    ckpt = train(recipe, progress=False)
    assert ckpt.name == "supernet.ckpt" and oneshot_checkpoint_path(recipe).is_file()
    # The few-shot phase trains at a quarter of the one-shot phase's LR (the tiny recipe has no schedule).
    peak = [torch.load(c, weights_only=True)["optimizer_states"][0]["param_groups"][0]["lr"]
            for c in (oneshot_checkpoint_path(recipe), ckpt)]
    assert peak == [recipe.train.optimizer["lr"], pytest.approx(0.25 * recipe.train.optimizer["lr"])]
    assert torch.load(ckpt, weights_only=True)["oneshot"]["few_shot"] == {"split": "s0.w", "choices": [0.5, 1.0]}

    few, info = load_supernet(ckpt)
    oneshot, oinfo = load_supernet(oneshot_checkpoint_path(recipe))
    steps_per_epoch = oinfo["global_step"]  # one one-shot epoch
    assert isinstance(few, FewShotSupernet) and info["few_shot"]["split"] == "s0.w"
    assert info["global_step"] == 2 * steps_per_epoch  # k = 2 copies x 1 epoch each
    # Each copy was fine-tuned away from the one-shot weights it started from.
    base = dict(oneshot.named_parameters())
    for copy_ in few.copies.values():
        assert any(not torch.equal(p, base[n]) for n, p in copy_.named_parameters())

    before = ckpt.read_bytes()
    assert train(recipe, progress=False) == ckpt and ckpt.read_bytes() == before  # finished: untouched on resume

    archs = [few.space.largest(), few.space.smallest()]
    records = evaluate(ckpt, archs, calib_batches=1, calib_batch_size=16, progress=False)
    assert [r["arch"] for r in records] == [str(a) for a in archs]
    assert all(0.0 <= r["holdout_acc"] <= 1.0 for r in records)

    result = search(ckpt, "supernet", n_trials=3, n_startup=2, storage="memory",
                    evaluate_args={"calib_batches": 1, "calib_batch_size": 16})
    assert len(result) == 3

    arch = few.space.largest()
    manifest = extract_subnets(ckpt, [{"arch": str(arch), "name": "big"}], tmp_path / "subnets",
                               calib_batches=1, calib_batch_size=16)
    folder, entries = read_manifest(manifest)
    module, arch2, _ = load_subnet(folder / entries[0]["file"])
    assert arch2 == arch
    recalibrate_bn(few, CalibrationSet.from_datamodule(datamodule_from_info(info["data"]), 1, 16, 0), arch)
    x = torch.randn(4, few.config.in_chans, 8, 8)
    with torch.no_grad():
        assert (module(x) - few(x, arch)).abs().max() < 1e-5


def test_few_shot_resume_with_another_split_is_refused(tmp_path: Path) -> None:
    from oneshot.training.trainer import train

    data = copy.deepcopy(TINY_RECIPE)
    data["output_dir"] = str(tmp_path)
    data["train"]["few_shot"] = {"split": "s0.w", "epochs": 1}
    train(Recipe.from_dict(data), progress=False)
    data["train"]["few_shot"] = {"split": "s0.d", "epochs": 1}
    with pytest.raises(ValueError, match="cannot resume .* sampler 'few_shot'"):
        train(Recipe.from_dict(data), progress=False)
    with pytest.raises(ValueError, match="resumes from its own run folder"):
        train(Recipe.from_dict(data), resume=tmp_path / "x.ckpt", progress=False)


def test_few_shot_phase_resumes_from_its_saved_step_exactly(tmp_path: Path) -> None:
    """A few-shot phase stopped after 1 epoch per copy and resumed to 2 ends with the uninterrupted run's weights."""
    from oneshot.training.checkpoint import read_checkpoint
    from oneshot.training.trainer import train

    def recipe(where: str, epochs: int) -> Recipe:
        data = copy.deepcopy(TINY_RECIPE)
        data["output_dir"] = str(tmp_path / where)
        data["train"]["few_shot"] = {"split": "s0.w", "epochs": epochs}
        return Recipe.from_dict(data)

    straight = read_checkpoint(train(recipe("a", 2), progress=False))
    first = read_checkpoint(train(recipe("b", 1), progress=False))
    oneshot_bytes = oneshot_checkpoint_path(recipe("b", 2)).read_bytes()
    steps: list[int] = []
    rec = L.Callback()
    rec.on_train_batch_start = lambda trainer, *_: steps.append(trainer.global_step)
    resumed = read_checkpoint(train(recipe("b", 2), callbacks=[rec], progress=False))
    assert steps[0] == first["global_step"]  # continued from the saved step, not from the one-shot weights
    assert oneshot_checkpoint_path(recipe("b", 2)).read_bytes() == oneshot_bytes  # phase 1 is not redone
    assert resumed["global_step"] == straight["global_step"] == 2 * first["global_step"]
    for k, v in straight["state_dict"].items():
        assert torch.allclose(v.float(), resumed["state_dict"][k].float(), atol=1e-6), k
