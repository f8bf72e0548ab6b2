"""`oneshot retrain TARGET`: retrain extracted subnets standalone and report the proxy-to-real gap."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

MIN_RANK_SUBNETS = 3  # a rank correlation over fewer distinct subnets says nothing


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a folder of extracted subnets (with manifest.json) or one subnet file")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the retrain section default)")
    p.add_argument("--fine-tune", action="store_true", help="start from the inherited weights instead of scratch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-path", help="where the dataset lives now, if it moved since the supernet was trained")
    p.add_argument("--out", help="results JSON (default: retrain-<settings digest>.json beside the subnets, so "
                                 "other inputs or settings never replace it)")
    p.add_argument("--overwrite", action="store_true", help="let --out replace a file with other results")


def run(args: argparse.Namespace) -> int:
    from oneshot.deploy.manifest import read_manifest

    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1 (0 would report untrained accuracy), got {args.epochs}")
    target = Path(args.target)
    if target.is_dir() or target.name.endswith(".json"):
        folder, entries = read_manifest(target)
        files = [(folder / e["file"], e) for e in entries]
        prefix = ""
    else:
        if not target.is_file():
            raise FileNotFoundError(f"subnet file {str(target)!r} does not exist")
        folder, files, prefix = target.parent, [(target, {})], f"{target.stem}."
    # The engine (torch, Lightning: seconds) is imported once the target has passed the checks that need none, so
    # a missing folder or a manifest naming files outside it is refused at once.
    from supernets import load_subnet
    from supernets.files import atomic_write_bytes

    from oneshot.deploy.retrain import rank_agreement, retrain_subnets
    from oneshot.recipe import RetrainSection
    from oneshot.threads import configure_threads

    configure_threads()
    # Entries sharing a file (several budgets chose one subnet) are one network: trained once, listed with all names.
    items: dict[str, dict[str, Any]] = {}
    data_info = None
    for file, entry in files:
        name = entry.get("name") or file.stem
        if str(file) in items:
            items[str(file)]["name"] += f"+{name}"
            items[str(file)]["budgets"].append(entry.get("limits") or entry.get("budget"))
            continue
        module, arch, meta = load_subnet(file)
        data_info = data_info or meta.get("data")
        items[str(file)] = {"arch": arch, "module": module, "name": name, "supernet_acc": meta.get("supernet_acc"),
                            "flops": meta.get("flops"), "params": meta.get("params"),
                            "budgets": [entry.get("limits") or entry.get("budget")]}
    if data_info is None:
        raise ValueError(f"{str(target)!r} does not say which data it was trained on; extract it with `oneshot extract`")
    section = RetrainSection(from_scratch=not args.fine_tune)
    if args.epochs is not None:
        section.epochs = args.epochs
    overrides = {"path": args.data_path} if args.data_path else None
    inputs = {"subnets": sorted(f"{i['name']}={i['arch']}" for i in items.values()), "epochs": section.epochs,
              "from_scratch": section.from_scratch, "seed": args.seed, "data": overrides}
    digest = hashlib.sha1(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:8]
    out = Path(args.out) if args.out else folder / f"{prefix}retrain-{digest}.json"
    if out.is_dir():
        raise IsADirectoryError(21, "is a folder, not a results file", str(out))
    if out.exists() and not args.overwrite and _inputs_of(out) != inputs:
        raise ValueError(f"{str(out)!r} holds other results; give another --out or --overwrite")
    print(f"writing to {out}")
    records = retrain_subnets(list(items.values()), data_info, section, seed=args.seed,
                              table_path=folder / "retrain.jsonl", data_overrides=overrides)
    summary: dict[str, Any] = {"inputs": inputs, "subnets": records, "rank": None}
    print(f"{'name':>14s}  {'supernet acc':>12s}  {'standalone test acc':>19s}  arch")
    for r in records:
        est = r.get("supernet_acc")
        print(f"{str(r.get('name')):>14s}  {'–' if est is None else f'{est:.4f}':>12s}  "
              f"{r['standalone_test_acc']:>19.4f}  {r['arch']}")
    pairs = {r["arch"]: (r["supernet_acc"], r["standalone_test_acc"]) for r in records
             if r.get("supernet_acc") is not None}
    if len(pairs) >= MIN_RANK_SUBNETS:
        summary["rank"] = rank_agreement(*zip(*pairs.values()))
        lo, hi = summary["rank"]["kendall_tau_ci"]
        print(f"supernet vs standalone over {len(pairs)} distinct subnets: Kendall tau = "
              f"{summary['rank']['kendall_tau']:.3f} (95% bootstrap interval [{lo:.3f}, {hi:.3f}]), "
              f"Spearman = {summary['rank']['spearman']:.3f}")
    else:
        print(f"supernet vs standalone rank correlation: n/a: fewer than {MIN_RANK_SUBNETS} distinct subnets "
              f"with a supernet estimate ({len(pairs)})")
    atomic_write_bytes(out, json.dumps(summary, indent=2, default=float).encode())
    print(f"results: {out}")
    return 0


def _inputs_of(path: Path) -> Any:
    """The `inputs` a results file was written for (None when it is not one of ours)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("inputs") if isinstance(data, dict) else None
