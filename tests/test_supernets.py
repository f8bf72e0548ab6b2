"""Supernets, exact extraction, subnet files and the cost model."""

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from supernets import (
    Arch,
    cost,
    count_cost,
    create_supernet,
    extract,
    get_config,
    get_space,
    list_supernets,
    load_subnet,
    save_subnet,
)

TEST_NETS = ["mbv3_test", "nb201_test", "macro_test", "vit_test"]


def _randomize_bn(net: torch.nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics so extraction must copy the right slices of them too."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@pytest.mark.parametrize("name", TEST_NETS + ["mbv3_tiny", "nb201_small", "macro", "vit_tiny"])
def test_extracted_subnet_equals_supernet_path(name, rng):
    torch.manual_seed(0)
    net = create_supernet(name).eval()
    _randomize_bn(net)
    size = net.config.image_size
    x = torch.randn(4, 3, size, size)
    archs = [net.space.smallest(), net.space.largest()] + [net.space.sample(rng) for _ in range(8)]
    for arch in archs:
        sub = extract(net, arch)
        with torch.no_grad():
            diff = (sub(x) - net(x, arch)).abs().max().item()
        assert diff < 1e-5, (str(arch), diff)
        # No supernet machinery inside, and only the weights this subnet uses.
        assert not any(type(m).__name__.startswith(("_Dynamic", "_Super", "Dynamic")) for m in sub.modules())
        assert count_cost(sub, (3, size, size)).params <= count_cost(extract(net, net.space.largest()), (3, size, size)).params


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (2, 3), (3, 3), (4, 5)])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_kernel_cropped_to_the_map_is_exact(size, stride):
    """Cropping a kernel to the taps that reach a small map changes neither the output nor any gradient."""
    from supernets.mbv3 import _depthwise

    g = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 1, 7, 7, generator=g, requires_grad=True)  # the largest kernel; 4 channels used
    for kernel in (3, 5, 7):
        x = torch.randn(2, 4, *size, generator=g, requires_grad=True)
        lo = (7 - kernel) // 2
        # reference: the whole kernel, zero padding of kernel // 2 on every side
        ref = F.conv2d(x, weight[:4, :, lo:lo + kernel, lo:lo + kernel], None, stride, kernel // 2, 1, 4)
        out = _depthwise(x, weight, kernel, stride)
        assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-6)
        up = torch.randn(ref.shape, generator=g)
        grads_ref = torch.autograd.grad((ref * up).sum(), (x, weight))
        grads = torch.autograd.grad((out * up).sum(), (x, weight))
        for a, b in zip(grads, grads_ref):
            assert torch.allclose(a, b, atol=1e-6)


def test_supernet_path_on_small_maps_trains_like_the_extracted_net(rng):
    """At 32 px the last maps are 2x2 and 1x1: the supernet crops kernels there and computes squeeze-excite as
    matrix products, the extracted net runs plain convolutions; outputs and weight gradients must agree (to float
    rounding, which train-mode BN over tiny maps magnifies, hence the looser training tolerance)."""
    torch.manual_seed(0)
    net = create_supernet("mbv3", num_classes=10, image_size=32)
    _randomize_bn(net)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for arch in [net.space.largest(), net.space.sample(rng)]:
        sub = extract(net, arch)
        with torch.no_grad():
            assert torch.allclose(net.eval()(x, arch), sub.eval()(x), atol=1e-5)
        net.train().zero_grad(set_to_none=True)
        out_net, out_sub = net(x, arch), sub.train()(x)
        assert torch.allclose(out_net, out_sub, atol=1e-4)
        F.cross_entropy(out_net, y).backward()
        F.cross_entropy(out_sub, y).backward()
        big = dict(net.named_parameters())
        for name, p in sub.named_parameters():  # every subnet weight's gradient is its slice of the supernet's
            cut = net.cut(name, big[net.weight_source(name, arch)].grad, p.shape)
            assert torch.allclose(cut, p.grad, atol=1e-4, rtol=1e-3), name


def test_different_subnets_give_different_outputs(rng):
    torch.manual_seed(0)
    net = create_supernet("mbv3_test").eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        outs = {str(a): net(x, a) for a in [net.space.sample(rng) for _ in range(5)]}
    values = list(outs.values())
    assert any((values[0] - v).abs().max() > 1e-4 for v in values[1:])


def test_supernet_refuses_arch_of_another_space():
    net = create_supernet("nb201_test")
    other = get_space("nb201_small").smallest()
    with pytest.raises(ValueError, match="not to this supernet's space"):
        net(torch.zeros(1, 3, 8, 8), other)
    with pytest.raises(ValueError, match="belongs to space"):
        extract(net, other)


def test_no_active_subnet_state_survives_a_call():
    net = create_supernet("mbv3_test").eval()
    x = torch.randn(2, 3, 8, 8)
    a, b = net.space.smallest(), net.space.largest()
    with torch.no_grad():
        ya = net(x, a)
        net(x, b)
        assert torch.equal(net(x, a), ya)


def test_training_step_updates_only_used_slices():
    torch.manual_seed(0)
    net = create_supernet("mbv3_test").train()
    arch = net.space.smallest()  # width 0.5, depth 1, kernel 3, expand 2
    net(torch.randn(4, 3, 8, 8), arch).sum().backward()
    block = net.stages[0][0]
    g = block.conv_dw.weight.grad  # (hid_max, 1, 5, 5); kernel 3 is the centre crop
    assert g[:, :, 1:4, 1:4].abs().sum() > 0
    assert g[:, :, 0].abs().sum() == 0 and g[:, :, :, 4].abs().sum() == 0
    assert net.stages[0][1].conv_pw.weight.grad is None  # block removed by depth gets nothing


@pytest.mark.parametrize("name", TEST_NETS)
def test_subnet_file_round_trip_without_supernet(name, tmp_path, rng):
    net = create_supernet(name).eval()
    _randomize_bn(net)
    arch = net.space.sample(rng)
    sub = extract(net, arch)
    path = save_subnet(sub, arch, tmp_path / "sub.pt", meta={"holdout_acc": 0.5})
    del net
    loaded, arch2, meta = load_subnet(path)
    assert arch2 == arch and meta == {"holdout_acc": 0.5}
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), sub(x))
    assert not list(tmp_path.glob(".*"))  # atomic write left no temp file


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_corrupt_or_foreign_subnet_file_gives_clear_error(tmp_path, suffix):
    from safetensors.torch import save_file

    net = create_supernet("nb201_test")
    arch = net.space.largest()
    path = save_subnet(extract(net, arch), arch, tmp_path / f"sub{suffix}")
    data = path.read_bytes()
    (tmp_path / f"torn{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_subnet(tmp_path / f"torn{suffix}")
    assert "\n" not in str(info.value)
    foreign = tmp_path / f"foreign{suffix}"
    torch.save({"hello": 1}, foreign) if suffix == ".pt" else save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="not a oneshot subnet file"):
        load_subnet(foreign)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_subnet(tmp_path / f"missing{suffix}")


@pytest.mark.parametrize("name", TEST_NETS + ["mbv3_tiny", "nb201_small", "vit_tiny"])
def test_fast_cost_equals_flop_counter(name, rng):
    cfg = get_config(name)
    space = get_space(name)
    for arch in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(15)]:
        shape = (cfg.in_chans, cfg.image_size, cfg.image_size)
        counted = count_cost(cfg.build_subnet(arch), shape, bias_adds=cfg.bias_adds_in_macs)
        assert cost(arch) == counted, str(arch)


def test_nb201_matches_the_benchmark_counts():
    space = get_space("nb201")
    largest = cost(space.largest())
    assert round(largest.params / 1e6, 6) == 1.531546
    assert round(largest.macs / 1e6, 5) == 220.11969
    smallest = cost(space.smallest())
    assert round(smallest.params / 1e6, 6) == 0.073306
    assert round(smallest.macs / 1e6, 5) == 7.78305
    # And the counted module agrees, so the fast path is not the only witness.
    counted = count_cost(get_config("nb201").build_subnet(space.largest()), (3, 32, 32))
    assert counted == largest


def test_cost_grows_with_choices():
    space = get_space("mbv3_tiny")
    assert cost(space.smallest()).macs < cost(space.largest()).macs
    assert cost(space.smallest()).params < cost(space.largest()).params


def test_registry():
    assert {"mbv3", "mbv3_tiny", "nb201"} <= set(list_supernets())
    assert list_supernets("nb201*") == ["nb201", "nb201_small", "nb201_test"]
    net = create_supernet("mbv3", num_classes=10, image_size=32)
    assert net.classifier.out_features == 10 and net.config.image_size == 32
    with pytest.raises(ValueError, match="unknown supernet 'resnet'"):
        create_supernet("resnet")
    with pytest.raises(ValueError, match="unknown mbv3 config key"):
        create_supernet("mbv3", num_class=10)
    with pytest.raises(ValueError, match="same network"):
        create_supernet("mbv3_test", width_mults=(0.9, 1.0))
