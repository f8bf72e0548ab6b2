"""BN recalibration: exact cumulative averages, per-subnet statistics, equality with the extracted subnet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from oneshot.score.bn import CalibrationSet, has_bn, recalibrate_bn
from oneshot.data import create_datamodule
from supernets import create_supernet, extract

torch.set_num_threads(1)
EXACT = "donot_use_mm_for_euclid_dist"


@pytest.fixture(scope="module")
def digits8():
    dm = create_datamodule("digits", image_size=8, max_train_samples=200, max_eval_samples=50)
    dm.setup()
    return dm


def _perturbed(name: str) -> nn.Module:
    """A supernet whose BN statistics and affine parameters are not at their initial values."""
    torch.manual_seed(0)
    net = create_supernet(name, in_chans=1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net


def _manual_stats(model: nn.Module, batches: list[torch.Tensor], run) -> dict[nn.Module, tuple]:
    """Per BN layer: the average over batches of the batch mean and of the unbiased batch variance of its input."""
    seen: dict[nn.Module, list] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, inp: seen.setdefault(mod, []).append(inp[0].detach()))
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.train()
    with torch.no_grad():
        for x in batches:
            run(x)
    for h in hooks:
        h.remove()
    out = {}
    for mod, xs in seen.items():
        means = torch.stack([x.mean((0, 2, 3)) for x in xs])
        vars_ = torch.stack([x.transpose(0, 1).flatten(1).var(1, unbiased=True) for x in xs])
        out[mod] = (means.mean(0), vars_.mean(0), len(xs))
    return out


@pytest.mark.parametrize("name", ["mbv3_test", "nb201_test", "macro_test"])
def test_supernet_stats_are_exact_cumulative_average(name: str, digits8) -> None:
    net = _perturbed(name)
    arch = net.space.sample(np.random.default_rng(3))
    cset = CalibrationSet.from_datamodule(digits8, num_batches=3, batch_size=16, seed=1)
    expected = _manual_stats(net, cset.batches, lambda x: net(x, arch))
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [0.05 + 0.01 * i for i in range(len(bns))]  # distinct, so a swap or a single reset would show
    for m, value in zip(bns, momenta):
        m.momentum = value
    recalibrate_bn(net, cset, arch)
    assert not net.training
    assert bns and [m.momentum for m in bns] == momenta  # every BN has its own training momentum back in place
    for mod in bns:
        if mod in expected:
            mean, var, k = expected[mod]
            c = len(mean)  # a dynamic BN is used (and re-estimated) on its first c channels
            assert torch.allclose(mod.running_mean[:c], mean, atol=1e-5)
            assert torch.allclose(mod.running_var[:c], var, rtol=1e-4, atol=1e-6)
            assert int(mod.num_batches_tracked) == k == 3
            assert torch.all(mod.running_mean[c:] == 0) and torch.all(mod.running_var[c:] == 1)
        else:  # not on this path: reset, not left with stale statistics of other subnets
            assert int(mod.num_batches_tracked) == 0
            assert torch.all(mod.running_mean == 0) and torch.all(mod.running_var == 1)


def test_plain_module_stats_are_exact_cumulative_average(digits8) -> None:
    net = _perturbed("mbv3_test")
    sub = extract(net, net.space.largest())
    cset = CalibrationSet.from_datamodule(digits8, num_batches=2, batch_size=32, seed=0)
    expected = _manual_stats(sub, cset.batches, sub)
    recalibrate_bn(sub, cset)
    for mod, (mean, var, _) in expected.items():
        assert torch.allclose(mod.running_mean, mean, atol=1e-5)
        assert torch.allclose(mod.running_var, var, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["mbv3_test", "nb201_test", "macro_test"])
def test_extracted_subnet_matches_supernet_after_recalibration(name: str, digits8) -> None:
    net = _perturbed(name)
    cset = CalibrationSet.from_datamodule(digits8, num_batches=2, batch_size=32, seed=0)
    x = digits8.holdout_set.take(range(20))[0]
    for arch in (net.space.smallest(), net.space.sample(np.random.default_rng(1)), net.space.largest()):
        stale = extract(net, arch)  # extracted before recalibration: carries the supernet's blended statistics
        recalibrate_bn(net, cset, arch)
        with torch.no_grad():
            ref = net(x, arch)
            assert torch.allclose(extract(net, arch)(x), ref, atol=1e-5)
            assert not torch.allclose(stale(x), ref, atol=1e-3)  # recalibration did change the subnet
            recalibrate_bn(stale, cset)  # recalibrating the extracted subnet itself gives the same network
            assert torch.allclose(stale(x), ref, atol=1e-5)


def test_arguments_are_checked(digits8) -> None:
    net = create_supernet("mbv3_test", in_chans=1)
    cset = CalibrationSet.from_datamodule(digits8, 1, 8)
    with pytest.raises(ValueError, match="needs the subnet"):
        recalibrate_bn(net, cset)
    foreign = create_supernet("nb201_test").space.smallest()
    with pytest.raises(ValueError, match="belongs to space 'nb201_test'"):
        recalibrate_bn(net, cset, foreign)
    with pytest.raises(ValueError, match="plain module"):
        recalibrate_bn(extract(net, net.space.smallest()), cset, net.space.smallest())
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_bn(net, [], net.space.smallest())


def test_calibration_set_fixed_seeded_subset_of_train_split(digits8) -> None:
    a = CalibrationSet.from_datamodule(digits8, num_batches=3, batch_size=16, seed=4)
    b = CalibrationSet.from_datamodule(digits8, num_batches=3, batch_size=16, seed=4)
    c = CalibrationSet.from_datamodule(digits8, num_batches=3, batch_size=16, seed=5)
    assert len(a) == 3 and all(x.shape == (16, 1, 8, 8) for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a.batches[0], c.batches[0])
    train = digits8.train_set.take(range(len(digits8.train_set)))[0].flatten(1)
    holdout = digits8.holdout_set.take(range(len(digits8.holdout_set)))[0].flatten(1)
    imgs = torch.cat(a.batches).flatten(1)
    assert torch.cdist(imgs, train, compute_mode=EXACT).min(1).values.max() < 1e-4  # every calibration image is a training image
    assert torch.cdist(imgs, holdout, compute_mode=EXACT).min(1).values.min() > 1e-3  # and none is a holdout image
    big = CalibrationSet(digits8.train_set, num_batches=20, batch_size=16)  # 320 > 200 images: data repeats
    assert len(big) == 20 and len(np.unique(big.indices[:200])) == 200


def test_balanced_calibration_holds_each_class_in_proportion_in_every_batch(digits8) -> None:
    labels = digits8.train_set.labels.numpy()
    share = np.bincount(labels, minlength=10) / len(labels)  # digits: 10 classes, near-equal shares
    cset = CalibrationSet(digits8.train_set, num_batches=4, batch_size=30, seed=1, balanced=True)
    for k in range(4):  # each batch: every class within one image of its expected count
        counts = np.bincount(labels[cset.indices[30 * k: 30 * (k + 1)]], minlength=10)
        assert np.abs(counts - 30 * share).max() <= 1.0 + 1e-9, counts
    assert len(np.unique(cset.indices)) == 120  # no image twice before the split is used up
    plain = CalibrationSet(digits8.train_set, num_batches=4, batch_size=30, seed=1, balanced=False)
    assert plain.settings() == {"calib_batches": 4, "calib_batch_size": 30, "calib_seed": 1}  # keys as before
    assert cset.settings() == {**plain.settings(), "calib_balanced": True}  # a balanced draw is another result
    default = CalibrationSet(digits8.train_set, num_batches=4, batch_size=30, seed=1)  # labelled: balanced
    assert np.array_equal(default.indices, cset.indices) and default.balanced
    unlabelled = torch.utils.data.TensorDataset(torch.zeros(8, 1, 4, 4), torch.zeros(8))
    assert not CalibrationSet(unlabelled, 1, 4).balanced  # no labels: a plain random draw, as before
    with pytest.raises(ValueError, match="needs the dataset's labels"):
        CalibrationSet(unlabelled, 1, 4, balanced=True)


def test_recalibration_is_a_no_op_without_batch_norm():
    """A ViT has LayerNorm only: nothing is reset, no batch is run, the weights are untouched."""
    net = create_supernet("vit_test").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}

    class Exploding:
        def __iter__(self):
            raise AssertionError("no batch should be drawn for a network without batch norm")

    arch = net.space.largest()
    assert recalibrate_bn(net, Exploding(), arch) is net and not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not has_bn(net) and has_bn(create_supernet("mbv3_test"))
    recalibrate_bn(extract(net, arch), Exploding())  # the extracted subnet too
