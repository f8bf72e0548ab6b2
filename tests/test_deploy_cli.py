"""`oneshot extract` in every documented form, adding to existing folders without clobbering; `oneshot retrain`
keyed outputs, de-duplication, `--fine-tune`, and a cache that retrains when the data settings change."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from oneshot.cli import main
from oneshot.deploy.extract import read_manifest
from oneshot.deploy.retrain import retrain_subnets
from oneshot.recipe import RetrainSection
from oneshot.study.budget import Budget
from oneshot.study.results import SearchRecord, SearchResult
from oneshot.training.checkpoint import load_supernet
from supernets import cost, load_subnet

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|log_every_n_steps|num_workers).*")
CAL = ["--calib-batches", "1"]


@pytest.fixture
def ckpt(tiny_checkpoint: Path) -> Path:
    return tiny_checkpoint


@pytest.fixture
def fresh(ckpt: Path, tmp_path: Path) -> Path:
    path = tmp_path / "supernet.ckpt"
    path.write_bytes(ckpt.read_bytes())
    return path


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _search_json(path: Path, space, archs_per_budget: dict[float, object]) -> Path:
    """A real `SearchResult` file whose best per flops budget is the given arch (scores make it so)."""
    records = [SearchRecord(a, 1.0 - i / 10, {"macs": cost(a).macs, "flops": cost(a).flops, "params": cost(a).params},
                            i, "s", 0, i) for i, a in enumerate(dict.fromkeys(archs_per_budget.values()))]
    budgets = [Budget.of(flops=limit) for limit in archs_per_budget]
    return SearchResult(space, records, budgets, {"sampler": "random"}).save(path)


def test_extract_forms_add_to_a_folder_and_never_clobber(fresh: Path, tmp_path: Path, capsys) -> None:
    space = load_supernet(fresh)[0].space
    small, large = space.smallest(), space.largest()
    assert main(["extract", str(fresh), "--arch", str(small), *CAL]) == 0
    out = fresh.parent / "subnets"  # the default: beside the checkpoint, said on the console
    assert f"writing to {out}" in capsys.readouterr().out
    first = _hashes(out)
    # --archs into the existing folder: the new subnet gets the next free name; the earlier file is untouched
    (tmp_path / "archs.txt").write_text(f"# more\n{large}\n{small}\n")
    assert main(["extract", str(fresh), "--archs", str(tmp_path / "archs.txt"), *CAL]) == 0
    assert "subnet00: already extracted" in capsys.readouterr().out
    # the same subnet with other calibration settings is another result: refused, then re-extracted on request
    before = _hashes(out)
    assert main(["extract", str(fresh), "--arch", str(small), "--calib-batches", "0"]) == 2  # not the default
    assert "num_batches >= 1" in capsys.readouterr().err and _hashes(out) == before
    assert main(["extract", str(fresh), "--arch", str(small), "--calib-batches", "2"]) == 2
    assert "calibrated with" in capsys.readouterr().err and _hashes(out)["subnet00.pt"] == first["subnet00.pt"]
    assert main(["extract", str(fresh), "--arch", str(small), "--calib-batches", "2", "--overwrite"]) == 0
    entry = next(e for e in read_manifest(out)[1] if e["name"] == "subnet00")
    assert entry["calibration"]["calib_batches"] == 2 and _hashes(out)["subnet00.pt"] != first["subnet00.pt"]
    assert load_subnet(out / entry["file"])[2]["calibration"]["calib_batches"] == 2
    first = _hashes(out)
    _, entries = read_manifest(out)
    assert [(e["name"], e["arch"]) for e in entries] == [("subnet00", str(small)), ("subnet01", str(large))]
    assert _hashes(out)["subnet00.pt"] == first["subnet00.pt"]
    # search.json (the README's form): best per budget; two budgets choosing one subnet share one file
    search = _search_json(tmp_path / "search.json", space, {1e9: large, 2e9: large, float(cost(small).flops): small})
    assert main(["extract", str(fresh), "--search", str(search), "--out", str(tmp_path / "s"), *CAL]) == 0
    _, entries = read_manifest(tmp_path / "s")
    assert sorted(e["budget"] for e in entries) == sorted([1e9, 2e9, float(cost(small).flops)])
    by_arch = {}
    for e in entries:
        by_arch.setdefault(e["arch"], set()).add(e["file"])
        module, arch, meta = load_subnet(tmp_path / "s" / e["file"])
        assert str(arch) == e["arch"] and meta["budget"] in (e["budget"], 1e9)
    assert {a: len(f) for a, f in by_arch.items()} == {str(large): 1, str(small): 1}
    assert len(list((tmp_path / "s").glob("*.pt"))) == 2
    # a run folder's chosen.json (was "give --search" although it was given)
    chosen = tmp_path / "chosen.json"
    chosen.write_text(json.dumps({"chosen": [{"name": "flops_1e+09", "arch": str(small), "budget": 1e9}]}))
    before = _hashes(tmp_path / "s")
    assert main(["extract", str(fresh), "--search", str(chosen), "--out", str(tmp_path / "s"), *CAL]) == 2
    err = capsys.readouterr().err
    assert "already has a subnet named 'flops_1e+09'" in err and "--overwrite" in err
    assert _hashes(tmp_path / "s") == before  # refused: nothing written
    assert main(["extract", str(fresh), "--search", str(chosen), "--out", str(tmp_path / "s"), "--overwrite",
                 *CAL]) == 0
    _, entries = read_manifest(tmp_path / "s")
    replaced = next(e for e in entries if e["name"] == "flops_1e+09")
    assert replaced["arch"] == str(small) and str(load_subnet(tmp_path / "s" / replaced["file"])[1]) == str(small)
    sharer = next(e for e in entries if e["name"] == "flops_2e+09")  # shared the replaced file: still its subnet
    assert str(load_subnet(tmp_path / "s" / sharer["file"])[1]) == sharer["arch"] == str(large)


def test_retrain_fine_tune_and_keyed_outputs(fresh: Path, tmp_path: Path, capsys) -> None:
    space = load_supernet(fresh)[0].space
    out = tmp_path / "subnets"
    assert main(["extract", str(fresh), "--arch", str(space.smallest()), "--out", str(out), *CAL]) == 0
    capsys.readouterr()
    assert main(["retrain", str(out / "subnet00.pt"), "--epochs", "1", "--fine-tune"]) == 0
    text = capsys.readouterr().out
    tuned = Path(text.split("writing to ")[1].split("\n")[0])
    assert tuned.parent == out and tuned.name.startswith("subnet00.retrain-")
    data = json.loads(tuned.read_text())
    (record,) = data["subnets"]
    assert record["from_scratch"] is False and record["start_weights"]  # started from the inherited weights
    assert "n/a: fewer than 3 distinct subnets" in text and data["rank"] is None
    kept = tuned.read_bytes()
    assert main(["retrain", str(out / "subnet00.pt"), "--epochs", "1"]) == 0  # from scratch: another file
    scratch = Path(capsys.readouterr().out.split("writing to ")[1].split("\n")[0])
    assert scratch != tuned and tuned.read_bytes() == kept
    assert json.loads(scratch.read_text())["subnets"][0]["from_scratch"] is True
    assert main(["retrain", str(out / "subnet00.pt"), "--epochs", "1", "--out", str(tuned)]) == 2
    assert "holds other results" in capsys.readouterr().err and tuned.read_bytes() == kept


def test_retrain_cache_follows_data_settings(fresh: Path, tmp_path: Path) -> None:
    supernet, info = load_supernet(fresh)
    items = [{"arch": supernet.space.smallest(), "name": "a", "supernet_acc": 0.5}]
    table = tmp_path / "retrain.jsonl"
    section = RetrainSection(epochs=1)
    first = retrain_subnets(items, info["data"], section, table_path=table, progress=False)
    lines = table.read_text().count("\n")
    again = retrain_subnets([{**items[0], "supernet_acc": 0.6}], info["data"], section, table_path=table,
                            progress=False)
    assert table.read_text().count("\n") == lines  # same settings: served from the cache ...
    assert again[0]["standalone_test_acc"] == first[0]["standalone_test_acc"]
    assert again[0]["supernet_acc"] == 0.6  # ... with today's estimate, not the cached one
    changed = retrain_subnets(items, info["data"], section, table_path=table, progress=False,
                              data_overrides={"max_train_samples": 48})
    assert table.read_text().count("\n") == lines + 1  # a data setting changed: retrained
    assert changed[0]["key"] != first[0]["key"] and changed[0]["data_digest"] != first[0]["data_digest"]
    with pytest.raises(ValueError, match="at least 1 epoch"):
        retrain_subnets(items, info["data"], RetrainSection(epochs=0), table_path=table, progress=False)
