"""Lightning training of supernets with a real Trainer on real (tiny) data: paths, gradients, checkpoints, resume."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import TINY_RECIPE

from oneshot.training.checkpoint import load_supernet, read_checkpoint
from oneshot.cli import main
from oneshot.data import EpochShuffleSampler, create_datamodule
from oneshot.recipe import Recipe
from oneshot.training.path_samplers import create_path_sampler
from oneshot.training.module import SupernetModule
from oneshot.training.optim import build_optimizer, build_scheduler
from oneshot.training.trainer import train
from supernets import create_supernet, get_space

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec).*")

TINY: dict[str, Any] = copy.deepcopy(TINY_RECIPE)


def tiny_recipe(out: Path, **sections: dict[str, Any]) -> Recipe:
    data = copy.deepcopy(TINY)
    data["output_dir"] = str(out)
    for section, values in sections.items():
        data[section].update(values)
    return Recipe.from_dict(data)


class Record(L.Callback):
    """Records (global step, arch) of every supernet forward during training."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, Any]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.supernet.register_forward_pre_hook(
            lambda mod, args: self.calls.append((trainer.global_step, args[1])))


def _fit(module: SupernetModule, dm, max_steps: int) -> L.Trainer:
    trainer = L.Trainer(accelerator="cpu", max_steps=max_steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    return trainer


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_each_step_trains_the_samplers_paths(tmp_path: Path) -> None:
    rec = Record()
    recipe = tiny_recipe(tmp_path, train={"max_steps": 3, "epochs": 5})
    ckpt = train(recipe, callbacks=[rec], progress=False)
    space = get_space("mbv3_test", in_chans=1, image_size=8)
    sampler = create_path_sampler("fair", space, seed=0)
    assert rec.calls == [(s, a) for s in range(3) for a in sampler.paths(s)]  # m = 2 forwards per step, 3 steps
    assert read_checkpoint(ckpt)["global_step"] == 3  # one optimizer step per multi-path step


def _first_batch(dm) -> tuple[torch.Tensor, torch.Tensor]:
    order = list(EpochShuffleSampler(len(dm.train_set), dm.seed))
    return dm.train_set.take(order[: dm.batch_size])


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_one_step_is_the_mean_of_path_gradients(clip: float | None) -> None:
    dm = create_datamodule("digits", image_size=8, batch_size=32, max_train_samples=64, augment=False)
    dm.setup()
    torch.manual_seed(0)
    supernet = create_supernet("mbv3_test", in_chans=1, image_size=8)
    sampler = create_path_sampler("fair", supernet.space, seed=3)
    before = copy.deepcopy(supernet)
    x, y = _first_batch(dm)
    paths = sampler.paths(0)
    grads = [torch.zeros_like(p) for p in before.parameters()]
    for arch in paths:  # reference: the mean over paths of each path's gradient, computed by hand
        g = torch.autograd.grad(F.cross_entropy(before(x, arch), y), list(before.parameters()), allow_unused=True)
        grads = [a + (b if b is not None else 0) / len(paths) for a, b in zip(grads, g)]
    if clip is not None:
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        grads = [g * min(1.0, clip / (float(norm) + 1e-6)) for g in grads]
    module = SupernetModule(supernet, sampler, optimizer={"name": "SGD", "lr": 1.0}, grad_clip=clip,
                            channels_last=True)
    _fit(module, dm, max_steps=1)
    for (name, p0), g, p1 in zip(before.named_parameters(), grads, supernet.parameters()):
        assert torch.allclose(p1, p0 - g, atol=2e-6), name
    with torch.no_grad():
        moved = torch.sqrt(sum(((p1 - p0) ** 2).sum() for p0, p1 in zip(before.parameters(), supernet.parameters())))
    if clip is not None:
        assert abs(float(moved) - clip) < 1e-5  # the step's global norm was clipped to exactly `clip`


def test_sandwich_distillation_fits_students_to_a_detached_teacher() -> None:
    dm = create_datamodule("digits", image_size=8, batch_size=32, max_train_samples=64, augment=False)
    dm.setup()
    torch.manual_seed(0)
    supernet = create_supernet("mbv3_test", in_chans=1, image_size=8)
    sampler = create_path_sampler("sandwich", supernet.space, seed=0, num_random=1, distill=True)
    before = copy.deepcopy(supernet)
    x, y = _first_batch(dm)
    paths = sampler.paths(0)
    assert paths[0] == supernet.space.largest() and len(paths) == 3

    def reference(detach: bool) -> list[torch.Tensor]:
        """The step's gradient by hand: labels for the teacher (largest) path, its soft outputs for the others."""
        net = copy.deepcopy(before)
        teacher = net(x, paths[0])
        soft = (teacher.detach() if detach else teacher).softmax(-1)
        loss = F.cross_entropy(teacher, y)
        for arch in paths[1:]:
            loss = loss - (soft * net(x, arch).log_softmax(-1)).sum(-1).mean()
        grads = torch.autograd.grad(loss / len(paths), list(net.parameters()), allow_unused=True)
        return [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, net.parameters())]

    module = SupernetModule(supernet, sampler, optimizer={"name": "SGD", "lr": 1.0})
    rec = Record()
    L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False, callbacks=[rec],
              enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0).fit(module, dm)
    assert [a for _, a in rec.calls] == paths
    steps = [p0.detach() - p1.detach() for p0, p1 in zip(before.parameters(), supernet.parameters())]
    # SGD with lr 1: the step is the gradient, and it is the one where no student loss reaches the teacher's output
    for (name, _), step, g in zip(before.named_parameters(), steps, reference(detach=True)):
        assert torch.allclose(step, g, atol=2e-6), name
    # the check can tell: letting the students' losses flow into the teacher gives another step
    assert any(not torch.allclose(step, g, atol=2e-6) for step, g in zip(steps, reference(detach=False)))


def test_cli_checkpoint_describes_itself(tmp_path: Path) -> None:
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp_path / "out")}))
    assert main(["train", str(recipe_file), "--no-progress", "--set", "train.epochs=1"]) == 0
    ckpt = tmp_path / "out" / "tiny" / "supernet.ckpt"
    assert ckpt.is_file() and not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]  # no temp files
    supernet, info = load_supernet(ckpt)
    raw = read_checkpoint(ckpt)
    assert info["space"]["name"] == "mbv3_test"
    assert supernet.space == get_space("mbv3_test", in_chans=1, image_size=8, num_classes=10)
    assert all(torch.equal(v, raw["state_dict"][f"supernet.{k}"]) for k, v in supernet.state_dict().items())
    assert info["data"]["name"] == "digits" and len(info["data"]["mean"]) == 1 and info["data"]["image_size"] == 8
    assert info["sampler"] == {"name": "fair", "seed": 0, "args": {}, "fingerprint": supernet.space.fingerprint}
    assert info["recipe"]["train"]["epochs"] == 1 and info["code_version"].startswith("0.1.0")
    assert info["global_step"] == 2 and len(info["checkpoint_id"]) == 16
    assert "train/loss" in (ckpt.parent / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]


def test_resume_continues_from_saved_step_exactly(tmp_path: Path) -> None:
    common = {"optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
              "scheduler": {"name": "StepLR", "step_size": 1, "gamma": 0.7}}
    straight = train(tiny_recipe(tmp_path / "a", train={**common, "epochs": 2}), progress=False)
    recipe = tiny_recipe(tmp_path / "b", train={**common, "epochs": 1})
    first = train(recipe, progress=False)
    assert read_checkpoint(first)["global_step"] == 2
    rec = Record()
    resumed = train(tiny_recipe(tmp_path / "b", train={**common, "epochs": 2}), resume=True, callbacks=[rec],
                    progress=False)
    assert rec.calls[0][0] == 2 and {s for s, _ in rec.calls} == {2, 3}  # continues at the saved step
    a, b = read_checkpoint(straight)["state_dict"], read_checkpoint(resumed)["state_dict"]
    assert read_checkpoint(resumed)["global_step"] == 4
    for k in a:  # same weights as the uninterrupted run: data order, augmentation, paths, momentum, LR all resumed
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    with pytest.raises(ValueError, match="trained with sampler 'fair'"):
        train(tiny_recipe(tmp_path / "b", train={"sampler": "uniform", "epochs": 3}), resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(recipe, resume=tmp_path / "missing.ckpt", progress=False)


def test_recipe_contradicting_the_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in_chans=3 contradicts the data"):
        train(tiny_recipe(tmp_path, supernet={"overrides": {"in_chans": 3}}), progress=False)


def test_corrupt_and_foreign_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_supernet(tmp_path / "none.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="garbage.ckpt.*corrupt or truncated"):
        load_supernet(garbage)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(ValueError, match="foreign.ckpt.*not a oneshot supernet checkpoint"):
        load_supernet(foreign)


def test_optimizer_and_schedule_specs() -> None:
    net = create_supernet("mbv3_test")
    opt = build_optimizer(net, {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.1})
    assert isinstance(opt, torch.optim.AdamW)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    assert id(net.stem.conv.weight) in decayed and id(net.stem.bn.weight) not in decayed
    with pytest.raises(ValueError, match="unknown optimizer 'Adamm'"):
        build_optimizer(net, {"name": "Adamm"})
    with pytest.raises(ValueError, match="bad train.optimizer arguments"):
        build_optimizer(net, {"name": "SGD", "lr": 0.1, "betas": (0.9, 0.99)})
    opt = build_optimizer(net, {"name": "SGD", "lr": 1.0})
    sched = build_scheduler(opt, {"name": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1}, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:3] == [0.5, 1.0, 1.0] and np.all(np.diff(lrs[2:]) < 0) and lrs[-1] > 0.1
    assert abs(opt.param_groups[0]["lr"] - 0.1) < 1e-9  # reaches min_lr_ratio at total_steps
    assert build_scheduler(opt, None, 10) is None and build_scheduler(opt, {"name": "constant"}, 10) is None
    assert isinstance(build_scheduler(opt, {"name": "StepLR", "step_size": 3}, 10), torch.optim.lr_scheduler.StepLR)
    with pytest.raises(ValueError, match="unknown LR schedule"):
        build_scheduler(opt, {"name": "cosinus"}, 10)
