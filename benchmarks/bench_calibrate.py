"""Calibration with a few standalone truths on NAS-Bench-Macro: each signal alone, the proxies stack, the fused
estimate (issue 23).

Phases:
    python benchmarks/bench_calibrate.py compute --n 1200 --proxies synflow,nwot   # proxy table (cached, resumes)
    python benchmarks/bench_calibrate.py report --seeds 20 --sizes 10,25,50

(filled in below as the measurement lands)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_proxies import CIFAR, MACRO, OUT, cifar_batch  # noqa: E402
from oneshot.score.fidelity import table_subnets  # noqa: E402
from oneshot.score.proxy_table import score_proxies  # noqa: E402
from oneshot.score.tabular import TabularBenchmark  # noqa: E402
from supernets import get_space  # noqa: E402

PROXY_TABLE = "macro_calibrate_proxies.jsonl"


def sample(n: int) -> list:
    """`n` distinct networks of the table, FLOPs-stratified (seed 0), smallest and largest included."""
    table = TabularBenchmark.load(MACRO, get_space("macro"))
    return table_subnets(table, n, seed=0)


def compute(n: int, proxies: list[str]) -> None:
    """Proxy values of the `n` sampled networks on one batch of 64 CIFAR-10 images (random init, seed 0)."""
    archs = sample(n)
    # scored in a seeded random order: an interrupted run leaves a FLOPs-representative part in the table
    archs = [archs[i] for i in np.random.default_rng(0).permutation(len(archs))]
    batch = cifar_batch()
    for proxy in proxies:  # one proxy over all networks before the next: the cheap ones are complete early
        start = time.perf_counter()
        records = score_proxies(get_space("macro"), archs, [proxy], batch, OUT / PROXY_TABLE, progress=False)
        print(f"{len(records)} macro networks, {proxy}: {time.perf_counter() - start:.0f} s this run", flush=True)
    for column in records[0]["seconds"]:
        secs = [r["seconds"][column] for r in records if column in r.get("seconds", {})]
        print(f"  {column:18s} {np.mean(secs):.3f} s per network (mean wall), {np.max(secs):.3f} s max")


def _load(n: int, proxies: list[str]) -> tuple[list, dict[str, dict[str, float]], TabularBenchmark]:
    """(the sampled networks, {signal: {arch string: raw value}}, the table); NaN where a proxy is missing."""
    import json

    space = get_space("macro")
    table = TabularBenchmark.load(MACRO, space)
    archs = sample(n)
    rows: dict[str, dict] = {}
    wanted = {f"{p}@init" for p in proxies}
    path = OUT / PROXY_TABLE
    if path.is_file():
        for line in path.read_text().splitlines()[1:]:  # the first line is the table's header
            r = json.loads(line)
            if "arch" in r:
                rows.setdefault(r["arch"], {}).update({k: v for k, v in r.items() if k in wanted})
    values: dict[str, dict[str, float]] = {"flops": {}, "params": {}}
    for a in archs:
        rec = table.record(a)
        values["flops"][str(a)] = float(rec["flops"])
        values["params"][str(a)] = float(rec["params"])
        for k, v in rows.get(str(a), {}).items():
            values.setdefault(k, {})[str(a)] = float("nan") if v is None else float(v)
    return archs, values, table


def _synthetic_supernet(archs: list, mean: np.ndarray, target: float, seed: int = 0) -> dict[str, float]:
    """SYNTHETIC supernet score: normal score of the table mean's rank plus Gaussian noise, the noise scale set so
    that Kendall tau with the mean over `archs` is `target` (0.46: the best CPU-scale macro supernet, fair_6)."""
    from scipy.stats import kendalltau, norm, rankdata

    z = norm.ppf((rankdata(mean) - 0.5) / len(mean))
    e = np.random.default_rng([seed, 0x5E]).normal(size=len(mean))
    lo, hi = 0.0, 10.0
    for _ in range(40):  # bisection on the noise scale: tau falls as it grows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if kendalltau(mean, z + mid * e)[0] > target else (lo, mid)
    return {str(a): float(v) for a, v in zip(archs, z + lo * e)}


def report(n: int, seeds: int, sizes: list[int], target: float, predictor: str, proxies: list[str]) -> None:
    """Kendall tau of each signal alone, the predictor without signals, the proxies stack and the fused estimate
    on held-out networks, calibrated on N single-run truths picked by the design."""
    from oneshot.deploy.calibrate import calibrate
    from predictors import Signals, create_predictor, kendall_tau

    archs, values, table = _load(n, proxies)
    complete = {k: v for k, v in values.items() if sum(np.isfinite(x) for x in v.values()) == len(archs)}
    partial = {k: sum(np.isfinite(x) for x in v.values()) for k, v in values.items() if k not in complete}
    if partial:
        # networks missing a proxy are left out, so every column is judged on the same networks
        keep = [a for a in archs if all(np.isfinite(values[k].get(str(a), np.nan)) for k in values)]
        print(f"proxies not yet computed for every sampled network: {partial} of {len(archs)}; using the "
              f"{len(keep)} networks that have all of them")
        archs = keep
    mean = np.array([table.value(a, "mean_acc") for a in archs])
    values["supernet_sim"] = _synthetic_supernet(archs, mean, target)
    proxies = [k for k in values if k != "supernet_sim"]
    print(f"NAS-Bench-Macro, {len(archs)} distinct networks (FLOPs-stratified sample), truth for calibration: ONE "
          f"training run per network (`noisy_objective('test_acc', seed)`), judged against mean_acc (3 runs) on "
          f"the networks not calibrated on; {seeds} seeds; predictor {predictor}.")
    print(f"signals present: {proxies} (real: flops and params from the table, proxies on 64 CIFAR-10 images at "
          f"random init, seed 0); supernet_sim is SYNTHETIC (no macro supernet this session): the mean's normal "
          f"score plus noise at Kendall tau {target} with the mean, as the best CPU-scale macro supernet measured.")
    col = {k: np.array([values[k][str(a)] for a in archs]) for k in values}
    alone = {k: kendall_tau(mean, v) for k, v in col.items()}
    print("each signal alone on all these networks (no truths needed): " +
          ", ".join(f"{k} {t:+.3f}" for k, t in alone.items()))
    rows: dict[int, dict[str, list[float]]] = {m: {} for m in sizes}
    t0 = time.perf_counter()
    for seed in range(seeds):
        truth = table.noisy_objective("test_acc", seed=seed)
        for m in sizes:
            fused_src = Signals({k: values[k] for k in values}, reference=archs)
            fused = calibrate(table.space, m, fused_src, truth, candidates=archs, spread_by="supernet_sim",
                              cost=lambda a: values["flops"][str(a)], predictor=predictor, seed=seed,
                              cross_validate_fit=False, resamples=1)
            chosen = set(fused.archs)
            held = [i for i, a in enumerate(archs) if a not in chosen]
            y_held = mean[held]
            test = [archs[i] for i in held]
            out = rows[m]
            out.setdefault("fused", []).append(kendall_tau(y_held, fused.predictor.predict(test)[0]))
            px = calibrate(table.space, m, Signals({k: values[k] for k in proxies}, reference=archs), truth,
                           archs=fused.archs, predictor=predictor, seed=seed, cross_validate_fit=False, resamples=1)
            out.setdefault("proxies stack", []).append(kendall_tau(y_held, px.predictor.predict(test)[0]))
            # the same N drawn at random instead of by the design (judged on its own held-out networks)
            rnd = [archs[i] for i in np.random.default_rng([seed, 0x7A]).permutation(len(archs))[:m]]
            fr = calibrate(table.space, m, fused_src, truth, archs=rnd, predictor=predictor, seed=seed,
                           cross_validate_fit=False, resamples=1)
            rnd_held = [i for i, a in enumerate(archs) if a not in set(rnd)]
            out.setdefault("fused, random N", []).append(
                kendall_tau(mean[rnd_held], fr.predictor.predict([archs[i] for i in rnd_held])[0]))
            plain = create_predictor(predictor, table.space, seed=seed).fit(fused.archs, fused.truths)
            out.setdefault("no signals", []).append(kendall_tau(y_held, plain.predict(test)[0]))
            for k in values:
                out.setdefault(k, []).append(kendall_tau(y_held, col[k][held]))
            out.setdefault("w:supernet", []).append(sum(w for name, w in fused.report["weights"].items()
                                                        if name.endswith("supernet_sim")))
        print(f"  seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    names = [*values, "no signals", "proxies stack", "fused", "fused, random N"]
    print(f"\nKendall tau with mean_acc on the held-out networks (mean +- std over {seeds} seeds):")
    print("    N  " + "".join(f"{k[:16]:>17s}" for k in names))
    for m in sizes:
        print(f"  {m:3d}  " + "".join(f"{np.mean(rows[m][k]):>9.3f} +- {np.std(rows[m][k]):.3f}" for k in names))
    print("\nfused minus proxies stack, paired over seeds (mean +- standard error, seeds where positive); "
          "weight of the supernet_sim members in the fused stack:")
    for m in sizes:
        d = np.array(rows[m]["fused"]) - np.array(rows[m]["proxies stack"])
        print(f"  N={m:3d}: {d.mean():+.3f} +- {d.std(ddof=1) / np.sqrt(len(d)):.3f} ({(d > 0).sum()}/{len(d)}); "
              f"supernet weight {np.mean(rows[m]['w:supernet']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["compute", "report"])
    parser.add_argument("--n", type=int, default=1100)
    parser.add_argument("--proxies", default="synflow,nwot")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sizes", default="10,25,50")
    parser.add_argument("--supernet-tau", type=float, default=0.46)
    parser.add_argument("--predictor", default="gp")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not MACRO.is_file() or not CIFAR.is_dir():
        sys.exit(f"needs {MACRO} and {CIFAR}")
    OUT.mkdir(exist_ok=True)
    if args.phase == "compute":
        compute(args.n, args.proxies.split(","))
    else:
        report(args.n, args.seeds, [int(x) for x in args.sizes.split(",")], args.supernet_tau, args.predictor,
               args.proxies.split(","))


if __name__ == "__main__":
    main()
