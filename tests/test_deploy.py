"""Deployable subnets: ONNX export run by onnxruntime, safetensors files, and fast extraction that stays exact."""

import json

import numpy as np
import pytest
import torch

from supernets import create_supernet, extract, list_supernets, load_subnet, save_subnet
from supernets.base import crop_to
from supernets.onnx import export_onnx, time_onnx

# Every family's minimal variant: a family added to the registry (macro) is picked up here without an edit.
TEST_NETS = list_supernets("*_test")


def _trained_like(name: str, seed: int = 0) -> torch.nn.Module:
    """A supernet whose every tensor (BN statistics included) is random, so a wrong slice cannot go unnoticed."""
    torch.manual_seed(seed)
    net = create_supernet(name).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*net.parameters(), *net.buffers()]:
            if t.is_floating_point():
                if t.ndim == 1:  # positive: BN variances and norm gains
                    t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.3)
    return net


@pytest.mark.parametrize("name", TEST_NETS)
def test_onnx_export_runs_in_onnxruntime_with_any_batch(name, tmp_path, rng):
    import onnx
    import onnxruntime as ort

    net = _trained_like(name)
    size = net.config.image_size
    for arch in [net.space.largest(), net.space.sample(rng)]:
        sub = extract(net, arch)
        path = export_onnx(sub, tmp_path / f"{name}.onnx", (3, size, size), arch=arch, overwrite=True)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch in (1, 5):  # the batch axis is dynamic
            x = torch.randn(batch, 3, size, size)
            with torch.no_grad():
                want = sub(x).numpy()
            got = session.run(None, {"input": x.numpy()})[0]
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["oneshot.arch"] == str(arch) and json.loads(meta["oneshot.space"])["name"] == name


def test_onnx_export_refuses_to_overwrite_and_bad_shapes(tmp_path):
    net = create_supernet("nb201_test").eval()
    sub = extract(net, net.space.largest())
    path = export_onnx(sub, tmp_path / "a.onnx", (3, 8, 8))
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(sub, path, (3, 8, 8))
    with pytest.raises(ValueError, match="channels, height, width"):
        export_onnx(sub, tmp_path / "b.onnx", (8, 8))


def test_time_onnx_returns_positive_milliseconds():
    net = create_supernet("vit_test").eval()
    ms = time_onnx(extract(net, net.space.smallest()), (3, 8, 8), repeats=3, warmup=1)
    assert 0 < ms < 10_000
    with pytest.raises(ValueError, match="repeats"):
        time_onnx(extract(net, net.space.smallest()), (3, 8, 8), repeats=0)


@pytest.mark.parametrize("name", TEST_NETS)
def test_safetensors_subnet_round_trip(name, tmp_path, rng):
    net = _trained_like(name)
    arch = net.space.sample(rng)
    sub = extract(net, arch)
    path = save_subnet(sub, arch, tmp_path / "sub.safetensors", meta={"holdout_acc": 0.5, "budget": [1, 2]})
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle or zip archive
    loaded, arch2, meta = load_subnet(path)
    assert arch2 == arch and meta == {"holdout_acc": 0.5, "budget": [1, 2]}
    x = torch.randn(3, 3, net.config.image_size, net.config.image_size)
    with torch.no_grad():
        assert torch.equal(loaded(x), sub(x))
    assert not list(tmp_path.glob(".*"))


def test_safetensors_files_load_without_unpickling(tmp_path, monkeypatch):
    net = _trained_like("vit_test")
    arch = net.space.largest()
    path = save_subnet(extract(net, arch), arch, tmp_path / "sub.safetensors")

    def no_pickle(*args, **kwargs):
        raise AssertionError("a safetensors subnet must not go through torch.load / pickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr("pickle.loads", no_pickle)
    load_subnet(path)


def test_foreign_or_mismatched_safetensors_give_one_line_errors(tmp_path):
    """Torn and foreign files are in tests/test_supernets.py; here text, and weights of another subnet."""
    from safetensors.torch import save

    (tmp_path / "text.safetensors").write_text("hello")
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_subnet(tmp_path / "text.safetensors")
    assert "\n" not in str(info.value)
    net = create_supernet("nb201_test")
    data = save_subnet(extract(net, net.space.largest()), net.space.largest(), tmp_path / "a.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    other = extract(net, net.space.smallest()).state_dict()  # under the largest subnet's arch string: refused
    (tmp_path / "mixed.safetensors").write_bytes(save({k: v.contiguous() for k, v in other.items()}, header))
    with pytest.raises(ValueError, match="do not fit subnet"):
        load_subnet(tmp_path / "mixed.safetensors")


@pytest.mark.parametrize("name", TEST_NETS)
def test_extraction_equals_slicing_the_state_dict(name, rng):
    """The one-pass extraction gives the tensors the reference (state_dict, cut, load_state_dict) gives."""
    net = _trained_like(name)
    for arch in [net.space.smallest(), net.space.sample(rng)]:
        sub = extract(net, arch)
        source = net.state_dict()
        for key, tensor in sub.state_dict().items():
            src = net.weight_source(key, arch)
            assert torch.equal(tensor, net.cut(key, source[src], tensor.shape)), key
            if "qkv" not in key:  # every family's tensors are plain leading slices but the fused q/k/v
                assert torch.equal(tensor, crop_to(source[src], tensor.shape)), key
        assert not any(t.data_ptr() == s.data_ptr() for t in sub.state_dict().values() for s in source.values())
