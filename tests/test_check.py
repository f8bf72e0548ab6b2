"""`supernets.check`: passes on our families and on block supernets, names the block and decision at fault."""

import pytest
import torch
from torch import nn

import supernets
from supernets import (
    BlockSupernet,
    Cost,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepth,
    ElasticLinear,
    LayerChoice,
    ModuleConfig,
    Value,
    Zero,
    check,
    create_supernet,
)
from supernets.check import CheckReport


class Block(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.conv = ElasticConv2d(w, w, (3, 5))
        self.bn = ElasticBatchNorm2d(w)

    def forward(self, x):
        return x + self.bn(self.conv(x)).relu()


class SmallNet(nn.Module):
    """A residual CNN of blocks: width, depth, kernels and a LayerChoice edge."""

    def __init__(self, num_classes=3):
        super().__init__()
        w = Value((4, 8), name="width")
        self.stem = nn.Sequential(ElasticConv2d(3, w, 3), ElasticBatchNorm2d(w), nn.ReLU())
        self.blocks = ElasticDepth([Block(w) for _ in range(2)], depths=(1, 2))
        self.edge = LayerChoice({"none": Zero(), "pool": nn.AvgPool2d(3, 1, 1), "conv": Block(w)})
        self.head = ElasticLinear(w, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head((x + self.edge(x)).mean((2, 3)))


FAST = ("onnx", "fingerprint")  # the broken supernets fail elsewhere: spare the export and the fresh process


def _names(report: CheckReport) -> list[str]:
    return [line.name for line in report.lines]


@pytest.mark.parametrize("name", ["mbv3_test", "nb201_test", "macro_test", "vit_test"])
def test_every_shipped_family_passes(name):
    report = check(create_supernet(name), n_random=4)
    assert report.ok, str(report)
    assert _names(report) == ["smallest/largest", "arch strings", "uses the arch", "extraction", "cost",
                              "fair sampling", "onnx", "fingerprint"]
    assert "rebuilds the space" in report.line("fingerprint").detail


def test_block_supernet_passes_and_reads_as_a_table():
    torch.manual_seed(0)
    config = ModuleConfig(class_path=f"{SmallNet.__module__}.SmallNet", init_args={}, input_shape=(3, 6, 6))
    sn = config.build_supernet("small")
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    report = check(sn, n_random=6)
    assert report.ok, str(report)
    text = str(report)
    assert text.splitlines()[0] == "supernet 'small' (module) passes:"
    assert "ok    extraction" in text and "rebuilds the space" in report.line("fingerprint").detail
    assert all(torch.equal(before[k], v) for k, v in sn.state_dict().items())  # check works on a copy
    # built from an object, the space cannot be rebuilt elsewhere: the fresh process recomputes it from its text
    loose = check(SmallNet(), n_random=2, input_shape=(3, 6, 6))
    assert loose.ok and "from the description" in loose.line("fingerprint").detail


# --------------------------------------------------------------------------- broken supernets
class IgnoresArch(nn.Module):
    """Declares an elastic conv but its forward runs a plain one instead."""

    def __init__(self):
        super().__init__()
        self.conv = ElasticConv2d(3, (4, 8), 3)
        self.plain = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return self.plain(x).mean((2, 3))


def test_a_forward_that_ignores_the_arch_is_named():
    report = check(IgnoresArch(), n_random=2, input_shape=(3, 4, 4), skip=FAST)
    assert not report.ok
    assert report.line("uses the arch").detail == ("decision 'conv.width' (block 'conv') never runs: the forward does "
                                                   "not call that block, so the decision changes nothing")


def test_a_family_whose_forward_ignores_the_arch_is_named():
    class Fixed(supernets.NB201Supernet):
        def forward(self, x, arch):
            return super().forward(x, self.space.largest())

    net = Fixed(supernets.get_config("nb201_test"), "nb201_test")
    report = check(net, n_random=2, skip=FAST)
    assert report.line("uses the arch").detail == ("smallest and largest subnets give identical outputs: the forward "
                                                   "ignores the arch")
    assert report.line("extraction").detail.startswith("subnet |none~0|+|none~0|none~1|+|none~0|none~1|none~2|: "
                                                       "extracted output differs")


def test_two_widths_that_should_be_one_value_meeting_in_an_add():
    class TwoWidths(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ElasticConv2d(3, (4, 8), 3)
            self.b = ElasticConv2d(3, (4, 8), 3)

        def forward(self, x):
            return (self.a(x) + self.b(x)).mean((2, 3))

    report = check(TwoWidths(), input_shape=(3, 4, 4))
    assert not report.ok and _names(report) == ["build"]
    assert report.line("build").detail.startswith("block 'TwoWidths' (TwoWidths) fails for subnet a.width=4,b.width=8"
                                                  ": RuntimeError")
    assert "\n" not in report.line("build").detail


class OffByOne(ElasticConv2d):
    """A conv whose cost formula forgets nothing but adds one MAC."""

    def block_cost(self, values, sizes, bias_adds):
        macs, params = super().block_cost(values, sizes, bias_adds)
        return macs + 1, params


class WrongSlice(ElasticConv2d):
    """A conv whose materialize takes the LAST output channels instead of the first."""

    def materialize(self, values):
        conv = super().materialize(values)
        with torch.no_grad():
            conv.weight.copy_(self.weight[-conv.out_channels:, :conv.in_channels])
        return conv


def _wrapped(conv_cls):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            w = Value((4, 8), name="w")
            self.body = nn.Sequential(nn.Conv2d(3, 3, 1), conv_cls(3, w, 3), ElasticBatchNorm2d(w))

        def forward(self, x):
            return self.body(x).mean((2, 3))

    return Net()


def test_a_wrong_cost_formula_names_the_block():
    report = check(_wrapped(OffByOne), n_random=2, input_shape=(3, 4, 4), skip=FAST)
    assert [line.name for line in report.failures] == ["cost"]
    assert report.line("cost").detail.endswith(
        "; first at block 'body.1' (decision 'w'): analytic 1,729 MACs / 108 params, counted 1,728 / 108")


def test_a_family_with_a_wrong_cost_names_the_subnet():
    net = create_supernet("nb201_test")
    object.__setattr__(net.config, "cost", lambda arch: Cost(macs=1, params=1))
    report = check(net, n_random=1, skip=FAST)
    assert [line.name for line in report.failures] == ["cost"]
    assert report.line("cost").detail.startswith("subnet |none~0|+|none~0|none~1|+|none~0|none~1|none~2|: analytic "
                                                 "1 MACs / 1 params, counted")


def test_a_wrong_slice_names_the_block_where_outputs_part():
    report = check(_wrapped(WrongSlice), n_random=2, input_shape=(3, 4, 4), skip=FAST)
    assert "extraction" in [line.name for line in report.failures]
    assert report.line("extraction").detail.endswith("; first at block 'body.1' (decision 'w')")


@pytest.mark.parametrize("conv, detail", [
    (lambda: ElasticConv2d(3, 4, (3, 4)),
     "block 'body.0': kernel choice 4 of Value 'body.0.kernel' is even: kernels are centre crops of the largest, "
     "so every choice must be odd, got [3, 4]"),
    (lambda: ElasticConv2d(3, 4, (7, 3, 5)),
     "block 'body.0': kernel choice 7 of Value 'body.0.kernel' is above its largest (last) choice 5: list choices "
     "cheapest first, got [7, 3, 5]"),
    (lambda: ElasticConv2d(3, (16, 8), 3),
     "block 'body.0': width choice 16 of Value 'body.0.width' is above its largest (last) choice 8: list choices "
     "cheapest first, got [16, 8]"),
])
def test_impossible_kernel_or_width_choices(conv, detail):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(conv())

        def forward(self, x):
            return self.body(x).mean((2, 3))

    report = check(Net(), input_shape=(3, 4, 4))
    assert report.failures == [supernets.CheckLine("build", False, detail)]


def test_check_refuses_what_it_cannot_run():
    with pytest.raises(TypeError, match="needs a supernets.Supernet"):
        check(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match=r"unknown check\(s\) \['onxx'\] to skip"):
        check(create_supernet("nb201_test"), skip=("onxx",))
    report = check(create_supernet("nb201_test"), n_random=1, skip=("onnx", "fingerprint", "uses the arch"))
    assert report.ok and [line.name for line in report.lines if line.ok is None] == ["uses the arch", "onnx",
                                                                                     "fingerprint"]
