"""Elastic building blocks: the space derived from a module tree, exact extraction, analytic cost, bad input."""

import pytest
import torch
from torch import nn

import supernets
from supernets import (
    Arch,
    BlockSupernet,
    Derived,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepth,
    ElasticLinear,
    LayerChoice,
    ModuleConfig,
    Value,
    Zero,
    count_cost,
    extract,
    load_subnet,
    save_subnet,
)


class Res(nn.Module):
    """The user's own residual block: plain forward, the add is safe because both sides use one Value."""

    def __init__(self, w):
        super().__init__()
        self.conv = ElasticConv2d(w, w, kernel_size=(3, 5))
        self.bn = ElasticBatchNorm2d(w)

    def forward(self, x):
        return x + self.bn(self.conv(x)).relu()


class TinyNet(nn.Module):
    """The design's example plus a LayerChoice with a depthwise candidate, a Derived width and a fixed stride."""

    def __init__(self, num_classes=10, widths=(4, 6, 8)):
        super().__init__()
        w = Value(widths, name="width")
        wide = Derived(lambda v: 2 * v, w)
        self.stem = nn.Sequential(ElasticConv2d(3, w, 3, stride=2), ElasticBatchNorm2d(w), nn.ReLU())
        self.blocks = ElasticDepth([Res(w) for _ in range(3)], depths=(1, 2, 3))
        self.pick = LayerChoice({
            "none": Zero(),
            "id": nn.Identity(),
            "dw": nn.Sequential(ElasticConv2d(w, w, (3, 5), groups="depthwise"), ElasticBatchNorm2d(w)),
        })
        self.expand = nn.Sequential(ElasticConv2d(w, wide, 1, bias=True), ElasticBatchNorm2d(wide), nn.ReLU())
        self.head = ElasticLinear(wide, num_classes)

    def forward(self, x):  # (B, 3, H, W) -> (B, classes)
        x = self.blocks(self.stem(x))
        return self.head(self.expand(x + self.pick(x)).mean((2, 3)))


def _randomize_bn(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    sn = BlockSupernet(TinyNet(), name="tiny_blocks", input_shape=(3, 8, 8))
    _randomize_bn(sn)
    return sn.eval()


def test_space_is_derived_from_the_tree(tiny):
    got = [(d.name, d.choices, d.when) for d in tiny.space.decisions]
    assert got == [
        ("width", (4, 6, 8), None),
        ("blocks.depth", (1, 2, 3), None),
        ("blocks.0.conv.kernel", (3, 5), None),  # block 0 always runs
        ("blocks.1.conv.kernel", (3, 5), ("blocks.depth", (2, 3))),
        ("blocks.2.conv.kernel", (3, 5), ("blocks.depth", (3,))),
        ("pick.op", ("none", "id", "dw"), None),
        ("pick.dw.0.kernel", (3, 5), ("pick.op", ("dw",))),
    ]
    assert tiny.space.family == "module" and tiny.space.size() == 3 * (2 + 4 + 8) * (2 + 2)
    # state-dict names are the net's own (no prefix); a LayerChoice is laid out like an nn.ModuleDict
    keys = set(tiny.state_dict())
    assert {"stem.0.weight", "blocks.2.conv.weight", "pick.dw.0.weight", "head.bias"} <= keys
    assert not any(k.startswith("net.") for k in keys)


def test_arch_strings_round_trip(tiny, rng):
    space = tiny.space
    for a in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(30)]:
        assert Arch.from_str(space, str(a)) == a
        assert "blocks.2.conv.kernel" not in a or a["blocks.depth"] == 3  # removed by depth: not in the string
    with pytest.raises(ValueError, match="is not a choice of decision 'width'"):
        Arch.from_str(space, str(space.smallest()).replace("width=4", "width=5"))


def test_extracted_subnet_is_plain_and_equals_the_supernet_path(tiny, rng):
    x = torch.randn(3, 3, 8, 8)
    space = tiny.space
    for a in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(12)]:
        sub = extract(tiny, a)
        with torch.no_grad():
            torch.testing.assert_close(sub(x), tiny(x, a), rtol=1e-5, atol=1e-6)
        kinds = {type(m) for m in sub.modules()}
        assert kinds <= {TinyNet, Res, nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.Identity, Zero}
        assert type(sub.blocks) is nn.Sequential and len(sub.blocks) == a["blocks.depth"]
        assert sub.stem[0].out_channels == a["width"] and sub.head.in_features == 2 * a["width"]
        # copies, not views: training the subnet leaves the supernet alone
        assert sub.stem[0].weight.data_ptr() != tiny.stem[0].weight.data_ptr()


def test_analytic_cost_equals_the_counter(tiny, rng):
    space = tiny.space
    for a in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(20)]:
        sub = extract(tiny, a)
        assert tiny.cost(a) == count_cost(sub, (3, 8, 8)), str(a)
        assert tiny.cost(a) != count_cost(sub, (3, 8, 8), bias_adds=False)  # the expand conv has a bias
        assert sum(m for m, _ in tiny.cost_terms(a).values()) == tiny.cost(a).macs
    no_bias_adds = BlockSupernet(TinyNet(), "tiny_blocks", (3, 8, 8), bias_adds=False)
    a = space.largest()
    assert no_bias_adds.cost(Arch.from_str(no_bias_adds.space, str(a))) == count_cost(
        extract(tiny, a), (3, 8, 8), bias_adds=False)


def test_subnet_weights_are_the_slices_of_the_supernet(tiny):
    a = Arch.from_str(tiny.space, "width=6,blocks.depth=2,blocks.0.conv.kernel=3,blocks.1.conv.kernel=5,pick.op=dw,"
                                  "pick.dw.0.kernel=3")
    sub = extract(tiny, a)
    assert torch.equal(sub.blocks[0].conv.weight, tiny.blocks[0].conv.weight[:6, :6, 1:4, 1:4])
    assert torch.equal(sub.blocks[1].conv.weight, tiny.blocks[1].conv.weight[:6, :6])
    assert torch.equal(sub.pick[0].weight, tiny.pick["dw"][0].weight[:6, :, 1:4, 1:4])
    assert torch.equal(sub.expand[1].running_var, tiny.expand[1].running_var[:12])
    big = dict(tiny.named_parameters())
    for name, p in sub.named_parameters():  # the generic weight_source/cut path agrees with materialize
        assert torch.equal(tiny.cut(name, big[tiny.weight_source(name, a)], p.shape), p), name


def test_training_step_touches_only_the_used_slices():
    torch.manual_seed(0)
    sn = BlockSupernet(TinyNet(), name="t", input_shape=(3, 8, 8)).train()
    a = Arch.from_str(sn.space, "width=4,blocks.depth=1,blocks.0.conv.kernel=3,pick.op=id")
    before = sn.stem[1].running_mean.clone()
    sn(torch.randn(4, 3, 8, 8), a).sum().backward()
    g = sn.blocks[0].conv.weight.grad  # (8, 8, 5, 5); width 4, kernel 3
    assert g[:4, :4, 1:4, 1:4].abs().sum() > 0
    assert g[4:].abs().sum() == 0 and g[:, 4:].abs().sum() == 0 and g[:, :, 0].abs().sum() == 0
    assert sn.blocks[1].conv.weight.grad is None and sn.pick["dw"][0].weight.grad is None
    assert not torch.equal(sn.stem[1].running_mean[:4], before[:4])
    assert torch.equal(sn.stem[1].running_mean[4:], before[4:])  # BN stats beyond the width are untouched


def test_no_active_subnet_outside_a_call(tiny):
    x = torch.randn(2, 3, 8, 8)
    a, b = tiny.space.smallest(), tiny.space.largest()
    with torch.no_grad():
        ya = tiny(x, a)
        tiny(x, b)
        assert torch.equal(tiny(x, a), ya)
    assert supernets.blocks.active_values() is None
    with pytest.raises(RuntimeError, match="block 'stem.0' ran outside BlockSupernet.forward"):
        tiny.stem(x)


def test_shared_value_makes_layer_choices_one_decision():
    op = Value(("skip", "conv"), name="edge")

    class Cells(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = LayerChoice({"skip": nn.Identity(), "conv": nn.Conv2d(3, 3, 3, padding=1)}, name=op)
            self.b = LayerChoice({"skip": nn.Identity(), "conv": nn.Conv2d(3, 3, 3, padding=1)}, name=op)

        def forward(self, x):
            return self.b(self.a(x)).mean((1, 2, 3))

    sn = BlockSupernet(Cells(), "cells", (3, 4, 4))
    assert [d.name for d in sn.space.decisions] == ["edge"]
    a = Arch.from_str(sn.space, "edge=conv")
    assert sn.cost(a) == count_cost(extract(sn, a), (3, 4, 4)) and sn.cost(a).params == 2 * (81 + 3)
    with pytest.raises(ValueError, match="differ from the choices"):
        LayerChoice({"conv": nn.Identity(), "skip": nn.Identity()}, name=op)


def test_net_level_tensors_follow_the_supernet():
    class WithScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.full((1,), 2.0))
            self.register_buffer("shift", torch.ones(1))
            self.conv = ElasticConv2d(3, (2, 4), 1)

        def forward(self, x):
            return self.conv(x) * self.scale + self.shift

    sn = BlockSupernet(WithScale(), "scale", (3, 2, 2))
    assert set(sn.state_dict()) == {"scale", "shift", "conv.weight"}
    sn.to(torch.float64)
    a = sn.space.largest()
    x = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    assert sn(x, a).dtype == torch.float64 and extract(sn, a).shift.dtype == torch.float64
    sn.eval()
    assert not sn._net.training


# --------------------------------------------------------------------------- bad input: one line naming the block
class _Bad(nn.Module):
    def __init__(self, conv, bn=None):
        super().__init__()
        self.body = nn.Sequential(conv, *([bn] if bn is not None else []))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("make, match", [
    (lambda: _Bad(ElasticConv2d(3, 4, (3, 4))),
     r"block 'body.0': kernel choice 4 of Value 'body.0.kernel' is even"),
    (lambda: _Bad(ElasticConv2d(3, 4, Value((7, 3, 5), name="k"))),
     r"block 'body.0': kernel choice 7 of Value 'k' is above its largest \(last\) choice 5"),
    (lambda: _Bad(ElasticConv2d(3, (8, 4), 3)),
     r"block 'body.0': width choice 8 of Value 'body.0.width' is above its largest \(last\) choice 4"),
    (lambda: _Bad(ElasticConv2d(3, Value((4, 8), name="w"), 3), ElasticBatchNorm2d(4)),
     r"block 'body.1' expects 4 input channels \(fixed\) but got 8: widths that meet here must be one Value"),
    (lambda: _Bad(ElasticDepth([nn.Identity(), nn.Identity()], depths=(1, 3))),
     r"block 'body.0': depth choice 3 is outside 1..2"),
])
def test_bad_blocks_are_one_line_errors(make, match):
    with pytest.raises(ValueError, match=match) as info:
        BlockSupernet(make(), "bad", (3, 4, 4))
    assert "\n" not in str(info.value)


def test_two_widths_that_should_be_one_value_fail_where_they_meet():
    class TwoWidths(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ElasticConv2d(3, (4, 8), 3)
            self.b = ElasticConv2d(3, (4, 8), 3)  # its own private width: meets `a` in an add

        def forward(self, x):
            return self.a(x) + self.b(x)

    match = r"block 'TwoWidths' \(TwoWidths\) fails for subnet .*RuntimeError: .*broadcast"
    with pytest.raises(ValueError, match=match) as info:
        BlockSupernet(TwoWidths(), "bad", (3, 4, 4))
    assert "\n" not in str(info.value)


def test_spatial_size_depending_on_the_subnet_is_refused():
    class Strides(nn.Module):
        def __init__(self):
            super().__init__()
            self.pick = LayerChoice({"s1": nn.Conv2d(3, 3, 1), "s2": nn.Conv2d(3, 3, 1, stride=2)})
            self.out = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return self.out(self.pick(x))

    with pytest.raises(ValueError, match="block 'out' has .* spatial sizes must not depend on the subnet"):
        BlockSupernet(Strides(), "bad", (3, 4, 4))


def test_duplicate_names_and_bad_arguments():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ElasticConv2d(3, Value((2, 4), name="w"), 1)
            self.b = ElasticConv2d(3, Value((2, 4), name="w"), 1)

        def forward(self, x):
            return self.a(x) + self.b(x)

    with pytest.raises(ValueError, match="two Values are named 'w': one used by block 'a', the other by block 'b'"):
        BlockSupernet(Twice(), "bad", (3, 4, 4))
    with pytest.raises(TypeError, match="in_channels cannot be a list of choices"):
        ElasticConv2d((3, 4), 4, 3)
    with pytest.raises(ValueError, match="depthwise ElasticConv2d needs in_channels and out_channels"):
        ElasticConv2d(Value((2, 4)), Value((2, 4)), 3, groups="depthwise")
    with pytest.raises(ValueError, match="has no choices"):
        Value(())
    with pytest.raises(ValueError, match="repeats a choice"):
        Value((2, 2))


# --------------------------------------------------------------------------- ModuleConfig: the "module" family
def _config(**init_args):
    return ModuleConfig(class_path=f"{TinyNet.__module__}.TinyNet", init_args=init_args, input_shape=(3, 8, 8))


def test_module_config_builds_space_supernet_cost_and_subnets(tmp_path, rng):
    cfg = _config(num_classes=5)
    space = cfg.search_space("mine")
    assert supernets.config_from_dict("module", cfg.to_dict()) == cfg
    assert supernets.space_from_dict(supernets.space_to_dict(space)) == space
    torch.manual_seed(0)
    sn = cfg.build_supernet("mine").eval()
    assert sn.space.fingerprint == space.fingerprint and sn.head.out_features == 5
    _randomize_bn(sn)
    for a in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(5)]:
        fresh = cfg.build_subnet(a)
        assert all(t.device.type == "cpu" for t in fresh.state_dict().values())
        assert set(fresh.state_dict()) == set(extract(sn, a).state_dict())
        assert supernets.cost(a) == cfg.cost(a) == count_cost(fresh, (3, 8, 8)) == sn.cost(a)
    a = space.largest()
    path = save_subnet(extract(sn, a), a, tmp_path / "sub.safetensors")
    loaded, arch, _ = load_subnet(path)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert arch == a and torch.equal(loaded(x), sn(x, a))


@pytest.mark.parametrize("class_path, match", [
    ("no_such_package.models.Net", r"class path 'no_such_package.models.Net' does not import: ModuleNotFoundError"),
    ("torch.nn.NoSuchLayer", r"class path 'torch.nn.NoSuchLayer' does not import: AttributeError"),
    ("numpy.ndarray", r"class path 'numpy.ndarray' is .* not an nn.Module class"),
])
def test_module_config_names_a_class_path_that_does_not_import(class_path, match):
    with pytest.raises(ValueError, match=match) as info:
        ModuleConfig(class_path=class_path, init_args={}, input_shape=(3, 8, 8)).build_supernet("x")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="must be JSON-able"):
        ModuleConfig(class_path=class_path, init_args={"f": object()})


def test_space_recorded_from_a_module_object_cannot_be_rebuilt(tiny):
    with pytest.raises(ValueError, match="recorded from a module object"):
        supernets.space_from_dict(supernets.space_to_dict(tiny.space))


def test_a_child_replaced_on_the_supernet_is_replaced_in_the_net(tiny):
    tiny.pick = LayerChoice({"none": Zero(), "id": nn.Identity(), "dw": nn.Identity()})  # e.g. a module swap
    assert tiny._net.pick is tiny.pick


def test_a_given_space_must_have_the_derived_decisions():
    other = supernets.get_space("macro_test")
    with pytest.raises(ValueError, match=r"space 'macro_test' does not match the blocks of TinyNet: decision 'layer0' "
                                         r"is Decision\(name='layer0'.* in the space, None in the blocks"):
        BlockSupernet(TinyNet(), "tiny_blocks", (3, 8, 8), space=other)


def test_a_decision_whose_blocks_do_not_run_is_canonically_its_first_choice():
    k = Value((3, 5), name="k")  # one kernel decision for a conv in each of two edges

    class Edges(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = LayerChoice({"skip": nn.Identity(), "conv": ElasticConv2d(3, 3, k)})
            self.b = LayerChoice({"skip": nn.Identity(), "conv": ElasticConv2d(3, 3, k)})

        def forward(self, x):
            return self.b(self.a(x)).mean((2, 3))

    sn = BlockSupernet(Edges(), "edges", (3, 4, 4))
    assert [(d.name, d.when) for d in sn.space.decisions] == [("a.op", None), ("k", None), ("b.op", None)]
    space = sn.space
    dead = Arch.from_str(space, "a.op=skip,k=5,b.op=skip")
    assert str(space.canonical(dead)) == "a.op=skip,k=3,b.op=skip"
    for text in ("a.op=conv,k=5,b.op=skip", "a.op=skip,k=5,b.op=conv"):  # k runs: kept
        assert space.canonical(Arch.from_str(space, text)) == Arch.from_str(space, text)
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        assert torch.equal(sn(x, dead), sn(x, space.canonical(dead)))
    assert BlockSupernet(TinyNet(), "t", (3, 8, 8)).space.canonicalizer is None  # every decision exact
