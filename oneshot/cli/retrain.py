"""`oneshot retrain TARGET`: retrain extracted subnets standalone and report the proxy-to-real gap."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a folder of extracted subnets (with manifest.json) or one subnet file")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the retrain section default)")
    p.add_argument("--fine-tune", action="store_true", help="start from the inherited weights instead of scratch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-path", help="where the dataset lives now, if it moved since the supernet was trained")
    p.add_argument("--out", help="results JSON (default: <folder>/retrain.json)")


def run(args: argparse.Namespace) -> int:
    from supernets import load_subnet
    from supernets.files import atomic_write_bytes

    from oneshot.deploy.extract import read_manifest
    from oneshot.deploy.retrain import rank_agreement, retrain_subnets
    from oneshot.recipe import RetrainSection
    from oneshot.threads import configure_threads

    configure_threads()
    target = Path(args.target)
    if target.is_dir() or target.name.endswith(".json"):
        folder, entries = read_manifest(target)
        files = [(folder / e["file"], e) for e in entries]
    else:
        folder, files = target.parent, [(target, {})]
    items, data_info = [], None
    for file, entry in files:
        module, arch, meta = load_subnet(file)
        data_info = data_info or meta.get("data")
        items.append({"arch": arch, "module": module, "name": entry.get("name") or file.stem,
                      "supernet_acc": meta.get("supernet_acc"), "flops": meta.get("flops"),
                      "params": meta.get("params")})
    if data_info is None:
        raise ValueError(f"{str(target)!r} does not say which data it was trained on; extract it with `oneshot extract`")
    section = RetrainSection(from_scratch=not args.fine_tune)
    if args.epochs is not None:
        section.epochs = args.epochs
    overrides = {"path": args.data_path} if args.data_path else None
    records = retrain_subnets(items, data_info, section, seed=args.seed, table_path=folder / "retrain.jsonl",
                              data_overrides=overrides)
    summary: dict[str, Any] = {"subnets": records}
    pairs = [(r["supernet_acc"], r["standalone_test_acc"]) for r in records if r.get("supernet_acc") is not None]
    print(f"{'name':>14s}  {'supernet acc':>12s}  {'standalone test acc':>19s}  arch")
    for r in records:
        est = r.get("supernet_acc")
        print(f"{str(r.get('name')):>14s}  {'–' if est is None else f'{est:.4f}':>12s}  "
              f"{r['standalone_test_acc']:>19.4f}  {r['arch']}")
    if len(pairs) >= 3:
        summary["rank"] = rank_agreement(*zip(*pairs))
        lo, hi = summary["rank"]["kendall_tau_ci"]
        print(f"supernet vs standalone over {len(pairs)} subnets: Kendall tau = {summary['rank']['kendall_tau']:.3f} "
              f"(95% bootstrap interval [{lo:.3f}, {hi:.3f}]), Spearman = {summary['rank']['spearman']:.3f}")
    out = Path(args.out) if args.out else folder / "retrain.json"
    atomic_write_bytes(out, json.dumps(summary, indent=2, default=float).encode())
    print(f"results: {out}")
    return 0
