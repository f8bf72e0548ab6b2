"""The ResNet family on the elastic blocks: space and strings, exact extraction and cost, torchvision's ResNet-50 as
the largest subnet, strict fair sampling with conditional decisions of different choice counts, `supernets.check`."""

import numpy as np
import pytest
import torch
from torch import nn

import supernets
from oneshot.training.path_samplers import FairSampler, activation_counts, create_path_sampler, path_sampler_from_state
from supernets import (
    Arch,
    BlockSupernet,
    ResNetConfig,
    ResNetSupernet,
    check,
    count_cost,
    create_supernet,
    extract,
    get_config,
    get_space,
    load_subnet,
    save_subnet,
    space_from_dict,
    space_to_dict,
)
from supernets.blocks import meta_supernet
from supernets.resnet import Bottleneck, ResNet


def _randomize_bn(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    sn = create_supernet("resnet_test")
    _randomize_bn(sn)
    return sn.eval()


@pytest.mark.parametrize("name", ["resnet_test", "resnet50"])  # resnet_cifar has resnet50's decisions (tested below)
def test_listed_space_is_the_one_the_blocks_derive(name):
    config = get_config(name)
    with torch.device("meta"):  # shapes only: no memory, no init
        derived = BlockSupernet(ResNet(config), name, (3, config.image_size, config.image_size)).space
    assert derived.decisions == config.search_space(name).decisions
    assert isinstance(create_supernet("resnet_test"), ResNetSupernet)


def test_a_space_that_is_not_the_blocks_one_is_refused():
    config = get_config("resnet_test")  # what every ResNetSupernet build checks, here with a stage lacking depths
    with pytest.raises(ValueError, match="space 'resnet_test' does not match the blocks of ResNet: decision 's0.d'"):
        BlockSupernet(ResNet(config.replace(depth_cuts=(0,))), "resnet_test", (3, 8, 8),
                      space=config.search_space("resnet_test"))


def test_space_and_its_conditions():
    space = get_space("resnet_test")
    assert space.family == "resnet"
    assert [(d.name, d.choices, d.when) for d in space.decisions] == [
        ("stem.w", (0.5, 1.0), None),
        ("s0.d", (1, 2), None),
        ("s0.w", (0.5, 1.0), None),
        ("s0.b0.e", (0.25, 0.5, 0.75), None),  # the first block always runs
        ("s0.b1.e", (0.25, 0.5, 0.75), ("s0.d", (2,))),
        ("s1.d", (1, 2), None),
        ("s1.w", (0.5, 1.0), None),
        ("s1.b0.e", (0.25, 0.5, 0.75), None),
        ("s1.b1.e", (0.25, 0.5, 0.75), ("s1.d", (2,))),
    ]
    assert space.size() == 2 * (2 * (3 + 3 * 3)) ** 2
    big = get_space("resnet50")  # depth choices per stage: the largest (torchvision's) and up to 2 fewer
    assert [big[f"s{i}.d"].choices for i in range(4)] == [(1, 2, 3), (2, 3, 4), (4, 5, 6), (1, 2, 3)]
    assert get_space("resnet_cifar").decisions == big.decisions  # only the stem and the resolution differ
    assert big["s2.b4.e"].when == ("s2.d", (5, 6)) and big["s2.b3.e"].when is None
    # the space rebuilds from its file form, codec included
    again = space_from_dict(space_to_dict(space))
    assert again.fingerprint == space.fingerprint and str(again.largest()) == str(space.largest())


def test_arch_strings_round_trip_and_read_as_the_network():
    space = get_space("resnet_test")
    assert str(space.smallest()) == "w0.5/w0.5:e0.25/w0.5:e0.25"
    assert str(space.largest()) == "w1.0/w1.0:e0.75-e0.75/w1.0:e0.75-e0.75"
    a = Arch.from_str(space, "w1.0/w0.5:e0.5-e0.25/w1.0:e0.75")
    assert a.as_dict() == {"stem.w": 1.0, "s0.d": 2, "s0.w": 0.5, "s0.b0.e": 0.5, "s0.b1.e": 0.25, "s1.d": 1,
                           "s1.w": 1.0, "s1.b0.e": 0.75}
    rng = np.random.default_rng(0)
    for b in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(50)]:
        assert Arch.from_str(space, str(b)) == b
    assert str(get_space("resnet50").largest()) == ("w1.0/w1.0:e0.25-e0.25-e0.25/w1.0:e0.25-e0.25-e0.25-e0.25/"
                                                   "w1.0:e0.25-e0.25-e0.25-e0.25-e0.25-e0.25/w1.0:e0.25-e0.25-e0.25")


@pytest.mark.parametrize("text, message", [
    ("w1.0/w0.5:e0.5", "has 2 part\\(s\\) separated by '/'; a resnet_test arch has 3 \\(the stem width, then one"),
    ("x1.0/w0.5:e0.5/w1.0:e0.75", "cannot read the stem part 'x1.0'"),
    ("w1.0/e0.5/w1.0:e0.75", "stage 0 of .* lacks its width 'w<mult>:'"),
    ("w1.0/w0.5:e0.5-k3/w1.0:e0.75", "cannot read block 'k3' in stage 0 .*: expected e<expand>"),
    ("w1.0/w0.5:e0.5e0.5/w1.0:e0.75", "cannot read block 'e0.5e0.5'"),
    ("w1.0/w0.5:e0.5-e0.5-e0.5/w1.0:e0.75", "stage 0 of .* has 3 block\\(s\\); allowed: \\[1, 2\\]"),
    ("w1.0/w0.5:/w1.0:e0.75", "stage 0 of .* has 0 block\\(s\\)"),
    ("w1.0/w0.6:e0.5/w1.0:e0.75", "'0.6' is not a choice of decision 's0.w'; allowed: \\[0.5, 1.0\\]"),
    ("w1.0/w0.5:e0.3/w1.0:e0.75", "'0.3' is not a choice of decision 's0.b0.e'"),
])
def test_bad_arch_strings_are_one_line_errors(text, message):
    with pytest.raises(ValueError, match=message) as info:
        Arch.from_str(get_space("resnet_test"), text)
    assert "\n" not in str(info.value)


def test_fixed_choices_are_no_decisions_and_strings_still_round_trip():
    config = get_config("resnet_test").replace(width_mults=(1.0,), expands=(0.5,))
    space = config.search_space("fixed")
    assert [d.name for d in space.decisions] == ["s0.d", "s1.d"]
    assert str(space.largest()) == "d2/d2" and Arch.from_str(space, "d1/d2") != space.largest()
    with pytest.raises(ValueError, match="names a width, but space 'fixed' has no width choice"):
        Arch.from_str(space, "w1.0:d1/d2")
    with pytest.raises(ValueError, match="expected d<depth>"):
        Arch.from_str(space, "e0.5/d2")


def test_smallest_and_largest_are_the_cheapest_and_most_expensive():
    for name in ("resnet_test", "resnet50"):
        space = get_space(name)
        lo, hi = supernets.cost(space.smallest()), supernets.cost(space.largest())
        rng = np.random.default_rng(1)
        for a in [space.sample(rng) for _ in range(40)]:
            c = supernets.cost(a)
            assert lo.macs <= c.macs <= hi.macs and lo.params <= c.params <= hi.params, (name, str(a))
        assert lo.macs < hi.macs and lo.params < hi.params


def test_extraction_is_exact_and_cost_equals_the_counter(tiny):
    space = tiny.space
    x = torch.randn(2, 3, 8, 8)
    rng = np.random.default_rng(2)
    for a in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(10)]:
        sub = extract(tiny, a)
        with torch.no_grad():
            torch.testing.assert_close(sub(x), tiny(x, a), rtol=1e-5, atol=1e-6)
        assert type(sub) is ResNet and all(type(b) is Bottleneck for b in sub.layer1)
        assert len(sub.layer1) == a["s0.d"] and len(sub.layer2) == a["s1.d"]
        config = get_config("resnet_test")
        width = config.width(16, a["s0.w"])
        assert sub.layer1[0].conv3.out_channels == width and sub.layer1[0].conv1.out_channels == config.mid(
            width, a["s0.b0.e"])
        assert supernets.cost(a) == tiny.cost(a) == count_cost(sub, (3, 8, 8)), str(a)


def test_standalone_subnet_and_subnet_files(tiny, tmp_path):
    a = Arch.from_str(tiny.space, "w0.5/w1.0:e0.5-e0.25/w0.5:e0.75")
    fresh = get_config("resnet_test").build_subnet(a)
    cut = extract(tiny, a)
    assert [(k, v.shape) for k, v in fresh.state_dict().items()] == [(k, v.shape) for k, v in cut.state_dict().items()]
    assert not torch.equal(fresh.conv1.weight, cut.conv1.weight)  # freshly initialized, not the supernet's
    path = save_subnet(cut, a, tmp_path / "sub.safetensors")
    loaded, arch, _ = load_subnet(path)
    x = torch.randn(2, 3, 8, 8)
    assert arch == a
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), cut(x))


@pytest.fixture(scope="module")
def torchvision_resnet50():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


def test_largest_resnet50_is_torchvision_resnet50(torchvision_resnet50):
    tv = torchvision_resnet50
    space = get_space("resnet50")
    largest = space.largest()
    # cost: our analytic count equals torchvision's model counted the same way, at 224 px
    assert supernets.cost(largest) == count_cost(tv, (3, 224, 224))
    assert supernets.cost(largest).params == 25_557_032  # ResNet-50's well-known parameter count
    # layout: the extracted subnet (built on the meta device) has torchvision's names, shapes and conv settings
    sub = meta_supernet(get_config("resnet50"), "resnet50").materialize(largest)
    assert [(k, v.shape) for k, v in sub.state_dict().items()] == [(k, v.shape) for k, v in tv.state_dict().items()]

    def convs(net):
        return [(n, m.kernel_size, m.stride, m.padding, m.groups) for n, m in net.named_modules()
                if isinstance(m, nn.Conv2d)]

    assert convs(sub) == convs(tv)
    assert isinstance(sub.maxpool, nn.MaxPool2d) and (sub.maxpool.kernel_size, sub.maxpool.stride) == (3, 2)
    # function: torchvision's weights load straight into the supernet, whose largest path then computes torchvision's
    # network (at 64 px to keep the test quick; the layers do not depend on the resolution)
    sn = create_supernet("resnet50")
    sn.load_state_dict(tv.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(sn.eval()(x, largest), tv(x), rtol=1e-5, atol=1e-5)


def _spreads(space, paths):
    counts = activation_counts(space, paths)
    out = {}
    for d in space.decisions:
        n = list(counts[d.name].values())
        out[d.name] = max(n) - min(n)
    return out, counts


def test_fair_sampling_trains_every_choice_once_per_step():
    space = get_space("resnet_test")  # 2 widths, 2 depths, 3 expansions; second blocks conditional on depth
    sampler = create_path_sampler("fair", space, seed=0, exact=True)
    assert sampler.paths_per_step == 6  # lcm(2, 3): every choice of every decision a whole number of times
    for step in range(30):
        paths = sampler.paths(step)
        spreads, counts = _spreads(space, paths)
        for d in space.decisions:
            if d.when is None:
                assert spreads[d.name] == 0 and sum(counts[d.name].values()) == 6, (step, d.name, counts[d.name])
            else:
                assert spreads[d.name] <= 1, (step, d.name, counts[d.name])
                assert sum(counts[d.name].values()) == 3  # the paths of depth 2
    # the default keeps m = the most choices (3 paths): the 2-choice decisions then split 2/1
    spreads, _ = _spreads(space, FairSampler(space, seed=0).paths(0))
    assert spreads["stem.w"] == 1 and spreads["s0.b0.e"] == 0
    # the setting survives a checkpoint; the default's saved state is what it was before `exact` existed
    rebuilt = path_sampler_from_state(space, sampler.state_dict())
    assert rebuilt.paths(3) == sampler.paths(3) and sampler.args() == {"exact": True}
    assert FairSampler(space).args() == {}


@pytest.mark.parametrize("name", ["resnet50", "resnet_cifar"])
def test_fair_sampling_on_the_full_spaces_is_exact_by_default(name):
    space = get_space(name)  # 3 choices everywhere: exact without extra paths, the same paths either way
    sampler = FairSampler(space, seed=1)
    assert sampler.paths(4) == FairSampler(space, seed=1, exact=True).paths(4)
    for step in range(10):
        spreads, _ = _spreads(space, sampler.paths(step))
        assert all(spreads[d.name] == 0 for d in space.decisions if d.when is None)
        assert all(spreads[d.name] <= 1 for d in space.decisions if d.when is not None)


def test_check_passes_on_resnet_test():
    report = check(create_supernet("resnet_test"), n_random=4)
    assert report.ok, str(report)
    assert report.line("fingerprint").ok and "rebuilds the space" in report.line("fingerprint").detail


@pytest.mark.parametrize("changes, message", [
    ({"depth_cuts": (1, 2)}, "depth_cuts must include 0"),
    ({"depth_cuts": (0, 2)}, "depth_cuts \\[0, 2\\] would leave a stage of 2 block\\(s\\) empty"),
    ({"expands": (0.25, 0.26)}, "stage 0 at width 8: expands \\[0.25, 0.26\\] give middle widths \\[2, 2\\]"),
    ({"width_mults": (0.9, 1.0)}, "stem: width_mults \\[0.9, 1.0\\] give channel counts \\[8, 8\\]"),
    ({"stage_blocks": (2,)}, "need one entry per stage, got 2, 1, 2"),
    ({"expands": (0.5, 0.25)}, "expands must be non-empty, non-negative, strictly increasing"),
    ({"stem_kernel": 4}, "stem_kernel must be odd"),
])
def test_bad_configs_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as info:
        get_config("resnet_test").replace(**changes)
    assert "\n" not in str(info.value)


def test_config_round_trips_and_is_registered():
    config = get_config("resnet_cifar")
    assert isinstance(config, ResNetConfig) and ResNetConfig.from_dict(config.to_dict()) == config
    assert supernets.config_from_dict("resnet", config.to_dict()) == config
    assert {"resnet50", "resnet_cifar", "resnet_test"} <= set(supernets.list_supernets("resnet*"))
    assert (config.stem_kernel, config.stem_stride, config.max_pool, config.image_size) == (3, 1, False, 32)
