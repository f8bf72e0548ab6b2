"""Bad input to `evaluate`, `extract`, `retrain` and `predict`, as a table: each case exits 2 with one line
`oneshot CMD: error: ...` that names the problem, and leaves every existing file as it was (hashed before/after)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from oneshot.cli import main
from oneshot.table import ResultTable
from supernets import get_space
from supernets.sampling import sample_distinct

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|log_every_n_steps).*")

NB201 = str(get_space("nb201_test").smallest())

# (id, argv with {w} = the workspace folder, text the error must contain)
CASES = [
    ("evaluate-missing-checkpoint", ["evaluate", "{w}/nope.ckpt"], "nope.ckpt"),
    ("evaluate-truncated-checkpoint", ["evaluate", "{w}/truncated.ckpt"], "corrupt or truncated"),
    ("evaluate-json-as-checkpoint", ["evaluate", "{w}/small.json"], "small.json"),
    ("evaluate-foreign-json-table", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/small.json"],
     "not a oneshot result table"),
    ("evaluate-recipe-as-table", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/recipe.yaml"],
     "not a oneshot result table"),
    ("evaluate-folder-as-table", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/folder"], "is a folder"),
    ("evaluate-table-under-a-file", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/small.json/t.jsonl"],
     "small.json"),
    ("evaluate-record-without-key", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/keyless.jsonl"], "line 2"),
    ("evaluate-table-of-another-space", ["evaluate", "{w}/supernet.ckpt", "--table", "{w}/nb201.jsonl"],
     "belongs to space 'nb201_test'"),
    ("evaluate-empty-archs", ["evaluate", "{w}/supernet.ckpt", "--archs", "{w}/empty.txt"], "lists no subnets"),
    ("evaluate-missing-archs", ["evaluate", "{w}/supernet.ckpt", "--archs", "{w}/nope.txt"], "does not exist"),
    ("evaluate-bad-arch-string", ["evaluate", "{w}/supernet.ckpt", "--archs", "{w}/bad_arch.txt"], "line 2"),
    ("evaluate-arch-of-another-space", ["evaluate", "{w}/supernet.ckpt", "--archs", "{w}/nb201_arch.txt"], "line 1"),
    ("evaluate-zero-subnets", ["evaluate", "{w}/supernet.ckpt", "--num-subnets", "0"], "at least 1"),
    ("extract-search-missing", ["extract", "{w}/supernet.ckpt", "--search", "{w}/nope.json"], "does not exist"),
    ("extract-search-not-json", ["extract", "{w}/supernet.ckpt", "--search", "{w}/recipe.yaml"], "is not JSON"),
    ("extract-search-a-list", ["extract", "{w}/supernet.ckpt", "--search", "{w}/list.json"],
     "neither a search result"),
    ("extract-out-is-a-file", ["extract", "{w}/supernet.ckpt", "--arch", "SMALLEST", "--out", "{w}/small.json"],
     "small.json"),
    ("extract-bad-arch", ["extract", "{w}/supernet.ckpt", "--arch", "k3e2/k9e2"], "k9e2"),
    ("extract-nothing", ["extract", "{w}/supernet.ckpt", "--archs", "{w}/empty.txt"], "nothing to extract"),
    ("retrain-zero-epochs", ["retrain", "{w}/folder", "--epochs", "0"], "--epochs must be at least 1"),
    ("retrain-negative-epochs", ["retrain", "{w}/folder", "--epochs", "-1"], "--epochs must be at least 1"),
    ("retrain-missing-file", ["retrain", "{w}/nope.pt"], "nope.pt"),
    ("retrain-folder-without-manifest", ["retrain", "{w}/folder"], "no subnet manifest"),
    ("predict-two-rows", ["predict", "fit", "{w}/two_rows.jsonl"], "too few"),
    ("predict-folder-as-table", ["predict", "fit", "{w}/folder"], "is a folder"),
    ("predict-foreign-table", ["predict", "fit", "{w}/small.json"], "not a oneshot result table"),
    ("predict-curve-sizes-too-big", ["predict", "curve", "{w}/twelve_rows.jsonl", "--sizes", "5,500"],
     "leave fewer than 2"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint: Path) -> Path:
    w = tmp_path_factory.mktemp("bad")
    ckpt = tiny_checkpoint
    (w / "supernet.ckpt").write_bytes(ckpt.read_bytes())
    (w / "truncated.ckpt").write_bytes(ckpt.read_bytes()[:4000])
    (w / "small.json").write_text('{"a": 1}')
    (w / "list.json").write_text("[1, 2]")
    (w / "recipe.yaml").write_text("name: tiny\nseed: 0")  # no final newline
    (w / "folder").mkdir()
    (w / "empty.txt").write_text("# nothing here\n\n")
    space = get_space("mbv3_test")
    (w / "bad_arch.txt").write_text(f"{space.smallest()}\nk3e2/k9e2\n")
    (w / "nb201_arch.txt").write_text(NB201 + "\n")
    table = ResultTable(w / "keyless.jsonl", space)
    with open(table.path, "a") as f:
        f.write(json.dumps({"arch": str(space.smallest()), "holdout_acc": 0.5}) + "\n")
    ResultTable(w / "nb201.jsonl", get_space("nb201_test"))
    for name, n in (("two_rows", 2), ("twelve_rows", 12)):
        t = ResultTable(w / f"{name}.jsonl", space)
        for i, a in enumerate(sample_distinct(space, n, np.random.default_rng(0))):
            t.add({"key": f"k{i}", "arch": str(a), "holdout_acc": 0.1 * (i % 7)})
    return w


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("argv, problem", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(workspace: Path, argv, problem, capsys) -> None:
    smallest = str(get_space("mbv3_test").smallest())
    args = [a.format(w=workspace).replace("SMALLEST", smallest) for a in argv]
    before = _snapshot(workspace)
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith(f"oneshot {argv[0]}: error: "), err
    assert problem in lines[0]
    assert _snapshot(workspace) == before  # no existing file changed, none added
