"""The macro space is NAS-Bench-Macro exactly: its params and MACs for every key, its equivalent keys."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import reference_macro
from supernets import (
    Arch,
    Cost,
    cost,
    count_cost,
    create_supernet,
    extract,
    get_config,
    get_space,
    load_subnet,
    save_subnet,
)
from supernets.macro import MacroNet

TABLE = Path(os.environ.get("NAS_BENCH_MACRO", "/work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json"))


@pytest.fixture(scope="module")
def table() -> dict:
    if not TABLE.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {TABLE} (set NAS_BENCH_MACRO)")
    return json.loads(TABLE.read_text())


def _by_hand_00000000() -> tuple[int, int]:
    """Params and MACs of the all-identity network, layer by layer at 32 px (no bias adds)."""
    stem = (3 * 32 * 9 + 2 * 32, 32 * 32 * 32 * 3 * 9)
    downsamples = [(cin * cout + 2 * cout, r * r * cin * cout) for cin, cout, r in ((32, 64, 16), (64, 128, 8),
                                                                                   (128, 256, 4))]
    head = (256 * 1280 + 2 * 1280, 4 * 4 * 256 * 1280)
    classifier = (1280 * 10 + 10, 1280 * 10)
    parts = [stem, *downsamples, head, classifier]
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def test_all_identity_network_counted_by_hand():
    params, macs = _by_hand_00000000()
    assert (params, macs) == (387_882, 7_713_280)  # the benchmark's figures for `00000000`
    assert cost(Arch.from_str(get_space("macro"), "00000000")) == Cost(macs=macs, params=params)


@pytest.mark.parametrize("key, params, flops", [
    ("00000000", 387_882, 7_713_280),
    ("22222222", 2_932_586, 105_660_928),
    ("02012100", 890_666, 47_327_744),
])
def test_costs_equal_the_benchmark_entries(key, params, flops):
    cfg = get_config("macro")
    arch = Arch.from_str(get_space("macro"), key)
    assert cost(arch) == Cost(macs=flops, params=params)
    net = cfg.build_subnet(arch)
    assert count_cost(net, (3, 32, 32), bias_adds=cfg.bias_adds_in_macs) == cost(arch)
    # In the NAS-Bench-201 convention the classifier's bias adds would count too: one per class.
    assert count_cost(net, (3, 32, 32)).macs == flops + cfg.num_classes


def test_every_table_entry_has_the_tables_params_and_flops(table):
    space = get_space("macro")
    assert len(table) == space.size() == 6561
    for key, rec in table.items():
        arch = Arch.from_str(space, key)
        assert str(arch) == key
        assert cost(arch) == Cost(macs=rec["flops"], params=rec["params"]), key
    # The flop counter on built networks, for a sample (one forward each at 32 px).
    cfg = get_config("macro")
    rng = np.random.default_rng(0)
    for key in rng.choice(sorted(table), size=12, replace=False):
        net = cfg.build_subnet(Arch.from_str(space, key))
        counted = count_cost(net, (3, 32, 32), bias_adds=cfg.bias_adds_in_macs)
        assert counted == Cost(macs=table[key]["flops"], params=table[key]["params"]), key


def test_equivalent_keys_share_one_record_in_the_table(table):
    """The benchmark trained each distinct network once: its records coincide exactly with our canonical classes."""
    space = get_space("macro")
    groups: dict[str, list[str]] = {}
    for key in table:
        groups.setdefault(str(space.canonical(Arch.from_str(space, key))), []).append(key)
    for members in groups.values():
        assert all(table[k] == table[members[0]] for k in members), members
    distinct_records = {json.dumps(rec, sort_keys=True) for rec in table.values()}
    assert len(distinct_records) == len(groups)  # and no two classes share a record: nothing left to merge
    assert groups["22212220"] == ["22212220", "22212202"]


def test_supernet_ops_have_separate_weights_and_strided_identity_is_a_conv():
    net = create_supernet("macro_test")
    assert set(net.layers[0]) == {"id", "ir_k3_e3", "ir_k5_e6"}  # stride 2: identity is 1x1 conv + BN
    assert isinstance(net.layers[0]["id"], torch.nn.Sequential)
    assert list(net.layers[1]) == ["id", "ir_k3_e3", "ir_k5_e6"]  # shape-keeping identity: no weights
    assert isinstance(net.layers[1]["id"], torch.nn.Identity)
    assert net.layers[1]["ir_k3_e3"].conv[0].weight.data_ptr() != net.layers[1]["ir_k5_e6"].conv[0].weight.data_ptr()
    sub = extract(net, Arch.from_str(net.space, "01000000"))
    assert isinstance(sub.layers[1], torch.nn.Module) and sub.layers[1].residual
    assert not hasattr(sub.layers[0], "residual")  # the downsampling identity
    assert isinstance(sub.layers[3], torch.nn.Identity)  # a shape-keeping identity


# ----------------------------------------------------------------------- the blocks reproduce the hand-written family
@pytest.mark.parametrize("name", ["macro_test", "macro"])
def test_block_macro_has_the_reference_space_strings_and_costs(name):
    """Every arch of the space: same decisions and fingerprint, strings, canonical forms and costs as before."""
    cfg = get_config(name)
    ref_cfg = reference_macro.MacroConfig(**cfg.to_dict())
    space, ref = get_space(name), ref_cfg.search_space(name)
    assert space.describe() == ref.describe() and space.fingerprint == ref.fingerprint
    archs = list(space)
    assert len(archs) == 3**8
    for a in archs:  # the config's own cost (not the memoized `supernets.cost`)
        b = Arch.from_str(ref, str(a))
        assert str(b) == str(a) and str(space.canonical(a)) == str(ref.canonical(b))
        assert cfg.cost(a) == ref_cfg.cost(b), str(a)


def test_block_macro_keeps_state_dict_names_and_extracted_outputs(rng, tmp_path):
    """A checkpoint of the hand-written supernet loads into the block one (same names and shapes); subnets
    extracted from both hold the same tensors under the same names and compute the same outputs."""
    torch.manual_seed(0)
    ref = reference_macro.MacroConfig(**get_config("macro_test").to_dict()).build_supernet("macro_test")
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    ref.eval()
    net = create_supernet("macro_test").eval()
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    net.load_state_dict(ref.state_dict())
    x = torch.randn(3, 3, 8, 8)
    for a in [net.space.smallest(), net.space.largest()] + [net.space.sample(rng) for _ in range(20)]:
        sub, ref_sub = extract(net, a), extract(ref, a)  # one arch serves both: the spaces share a fingerprint
        assert type(sub) is MacroNet
        assert [(k, v.shape) for k, v in sub.state_dict().items()] == [
            (k, v.shape) for k, v in ref_sub.state_dict().items()]
        assert all(torch.equal(v, ref_sub.state_dict()[k]) for k, v in sub.state_dict().items())
        with torch.no_grad():
            assert torch.equal(sub(x), ref_sub(x)), str(a)
            assert torch.equal(net(x, a), ref(x, a)), str(a)
    # a subnet file written by the hand-written family loads into the block-built one
    a = net.space.sample(rng)
    path = save_subnet(extract(ref, a), a, tmp_path / "old.safetensors")
    loaded, arch, _ = load_subnet(path)
    with torch.no_grad():
        assert arch == a and torch.equal(loaded(x), extract(ref, a)(x))


def test_standalone_subnet_is_a_fresh_plain_macro_net():
    cfg = get_config("macro_test")
    a = Arch.from_str(get_space("macro_test"), "21002120")
    sub = cfg.build_subnet(a)
    ref_sub = reference_macro.MacroConfig(**cfg.to_dict()).build_subnet(a)
    shapes = [(k, v.shape) for k, v in sub.state_dict().items()]
    assert shapes == [(k, v.shape) for k, v in ref_sub.state_dict().items()]
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in sub.parameters())
    assert torch.equal(sub.layers[0].conv[1].running_var, torch.ones(sub.layers[0].conv[1].num_features))
    assert sub.layers[0].conv[0].weight.std() > 0  # initialized, not left empty
