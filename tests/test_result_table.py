"""Result tables never damage a file that is not theirs, refuse malformed records by line, and claim work per key."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from oneshot.cli import main
from oneshot.table import ResultTable, read_table
from supernets import get_space

SPACE = get_space("mbv3_test")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("content", [
    b'{"a": 1}',  # a small JSON file (was left 0 bytes)
    b"name: digits\ntrain:\n  epochs: 3",  # a recipe without its final newline (its last line was cut)
    b'{"format": "something-else"}\n{"key": "k", "arch": "x"}\n',
    b"\x00\x01\x02 binary",
])
def test_a_foreign_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(content)
    before, mtime = _digest(path), path.stat().st_mtime_ns
    with pytest.raises(ValueError, match="not a oneshot result table"):
        ResultTable(path, SPACE)
    with pytest.raises(ValueError, match="not a oneshot result table"):
        read_table(path)
    assert _digest(path) == before and path.stat().st_mtime_ns == mtime
    assert not (tmp_path / "file.json.claims").exists()


def test_latency_cli_refuses_a_recipe_as_its_table(tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(b"name: x\nseed: 0")  # no final newline: the torn-line repair used to cut `seed: 0`
    assert main(["latency", "mbv3_test", "--num-subnets", "3", "--repeats", "1", "--out", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "not a oneshot result table" in err and recipe.read_bytes() == b"name: x\nseed: 0"


@pytest.mark.parametrize("record, problem", [({"arch": "x"}, "line 3"), ({"key": "k"}, "line 3"), ([1, 2], "line 3")])
def test_a_record_without_key_or_arch_is_an_error_naming_its_line(tmp_path: Path, record, problem) -> None:
    path = tmp_path / "t.jsonl"
    table = ResultTable(path, SPACE)
    table.add({"key": "a", "arch": str(SPACE.smallest())})
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    before = _digest(path)
    with pytest.raises(ValueError, match=problem):
        ResultTable(path, SPACE)
    with pytest.raises(ValueError, match="'key' and 'arch'"):
        read_table(path)
    assert _digest(path) == before


def test_torn_tail_is_ignored_on_reading_and_cut_on_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    table = ResultTable(path, SPACE)
    table.add({"key": "a", "arch": str(SPACE.smallest())})
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"key": "b", "ar')  # a crash mid-write
    reopened = ResultTable(path, SPACE)
    assert path.read_bytes() == whole + b'{"key": "b", "ar'  # opening writes nothing
    assert "b" not in reopened and "a" in reopened
    reopened.add({"key": "c", "arch": str(SPACE.largest())})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["key"] == "c"


def test_a_folder_as_table_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        ResultTable(tmp_path, SPACE)


def test_claims_are_exclusive_and_a_dead_holder_is_replaced(tmp_path: Path) -> None:
    table = ResultTable(tmp_path / "t.jsonl", SPACE)
    other = ResultTable(tmp_path / "t.jsonl", SPACE)
    assert table.claim("k") and not table.held_elsewhere("k")
    # a live process on this host holds it: nobody else may take it
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    claim = table.claims_dir / "k.claim"
    claim.write_text(f"{socket.gethostname()} {child.pid}\n")
    assert not other.claim("k") and other.held_elsewhere("k")
    child.communicate(b"")  # the holder exits (as after kill -9): its claim is taken over
    assert other.claim("k") and claim.read_text().split() == [socket.gethostname(), str(os.getpid())]
    other.add({"key": "k", "arch": str(SPACE.smallest())})
    other.release("k")
    assert not table.claim("k")  # it has a record now: nothing to claim
    assert "k" in table and not table.claims_dir.exists()  # refreshed from the file; empty claims folder removed
