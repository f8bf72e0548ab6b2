"""The structured latency model (predictors.latency) and the covering design of subnets to time (supernets.design)."""

import json

import numpy as np
import pytest

from oneshot.score.latency import LatencyModel
from predictors import create_predictor
from predictors.latency import LatencyRegressor, LiveOpsEncoding, OpCountEncoding
from supernets import Arch, cost, get_space
from supernets.design import choice_counts, covering_design


def _terms(space, seed):
    """A random positive cost (ms) per (decision, choice), the cheapest choice of each decision costing least."""
    rng = np.random.default_rng(seed)
    return {(d.name, c): float(x) for d in space.decisions
            for c, x in zip(d.choices, np.sort(rng.uniform(0.05, 1.0, len(d.choices))))}


def _additive(terms, arch):
    return 0.7 + sum(terms[(k, v)] for k, v in arch.values)  # absent blocks have no values, so cost nothing


def test_additive_latency_recovers_the_per_op_terms():
    """Noise-free additive latency over a space with conditional blocks: every (decision, choice) term comes back."""
    space = get_space("mbv3_test")
    terms = _terms(space, 0)
    train = covering_design(space, 62, seed=0)
    model = create_predictor("latency", space).fit(train, [_additive(terms, a) for a in train])
    assert model.regressor_.chosen_ in ("additive", "additive+cost")
    # A term is the change in latency when one decision of a subnet switches choice, all else fixed (a change of
    # depth also drops or adds the terms of the blocks it removes or adds).
    for base in (space.largest(), space.smallest()):
        for d in space.decisions:
            for c in d.choices:
                if d.name not in base or base[d.name] == c:
                    continue
                values = {**base.as_dict(), d.name: c}
                for extra in space.decisions:  # blocks that a deeper choice adds take the cheapest choice
                    values.setdefault(extra.name, extra.choices[0])
                other = space.make(values)
                want = _additive(terms, other) - _additive(terms, base)
                got = np.diff(model.predict([base, other])[0])[0]
                assert got == pytest.approx(want, abs=0.02), (d.name, c)


def test_residual_gp_helps_on_non_additive_latency():
    """Additive per-op cost plus a cache cliff (1.5 ms more once the weights outgrow a cache): not additive in the
    ops, so the residual GP (over the linear prediction, MACs and params) must beat additive-only held out."""
    space = get_space("nb201_test")
    terms = _terms(space, 1)
    cache = float(np.median([cost(a).params for a in space]))

    def ms(a):
        return _additive(terms, a) + 1.5 * (cost(a).params > cache)

    rng = np.random.default_rng(0)
    train = covering_design(space, 62, seed=0)
    test = [a for a in dict.fromkeys(space.sample(rng) for _ in range(400)) if a not in set(train)]
    y_test = np.array([ms(a) for a in test])
    errors = {}
    for name, cands in {"additive": ["additive"], "with residual": ["additive", "+gp"]}.items():
        model = create_predictor("latency", space, candidates=cands).fit(train, [ms(a) for a in train])
        errors[name] = float(np.median(np.abs(model.predict(test)[0] / y_test - 1)))
    assert model.regressor_.name == "+gp(additive)"  # chosen by cross-validation on the 62, not told
    assert errors["with residual"] < 0.7 * errors["additive"], errors


def test_regressor_on_numpy_features_and_bad_input():
    X = np.eye(4)[np.arange(40) % 4]  # one block of four one-hot columns
    y = 1.0 + X @ np.array([0.0, 0.5, 1.0, 2.0])
    reg = LatencyRegressor({"onehot": range(4)}, candidates=["additive", "additive_log"]).fit(X, y)
    assert set(reg.cv_) == {"additive", "additive_log"} and reg.chosen_ == "additive"
    mean, std = reg.predict(np.eye(4))
    assert mean == pytest.approx([1.0, 1.5, 2.0, 3.0], abs=1e-2) and np.all(std > 0)
    with pytest.raises(ValueError, match="positive"):
        LatencyRegressor({"onehot": range(4)}).fit(X, y - 2.0)
    with pytest.raises(ValueError, match="unknown latency candidate"):
        LatencyRegressor({"onehot": range(4)}, candidates=["flopz"])


def test_op_count_and_live_op_encodings_on_a_cell():
    space = get_space("nb201_test")
    # Node 1 gets a conv but feeds nothing (2<-1 and 3<-1 are none): dead. 3<-0 skip and 2<-0/3<-2 pool are live.
    arch = Arch.from_str(space, "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    counts = dict(zip(OpCountEncoding(space).feature_names, OpCountEncoding(space).encode([arch])[0]))
    assert sum(counts.values()) == 6 and max(counts.values()) == 2  # two none, two pools
    live = LiveOpsEncoding(space)
    got = dict(zip(live.feature_names, live.encode([arch])[0]))
    # Adds: node 2 sums pool~0 (node 1 has its conv, so 2<-1 none leaves one input) -> 0 adds; node 3 sums
    # skip~0 and pool~2 -> 1 add; all of them on live edges.
    assert got == {"live:skip_connect": 1, "live:avg_pool_3x3": 2, "live:nor_conv_1x1": 0, "live:nor_conv_3x3": 0,
                   "adds": 1, "live:adds": 1}


@pytest.mark.parametrize("name", ["mbv3_tiny", "nb201", "mbv3_test"])
def test_covering_design_covers_every_choice_of_every_decision(name):
    space = get_space(name)
    archs = covering_design(space, 62, seed=3)
    assert len(archs) == len(set(archs)) == 62
    assert archs[0] == space.smallest() and archs[1] == space.largest()
    counts = {}
    for a in archs:  # counted here by hand, not with choice_counts
        for k, v in a.as_dict().items():
            counts[(k, v)] = counts.get((k, v), 0) + 1
    assert all(counts.get((d.name, c), 0) >= 1 for d in space.decisions for c in d.choices)
    assert choice_counts(space, archs) == {(d.name, c): counts.get((d.name, c), 0)
                                          for d in space.decisions for c in d.choices}
    # The balanced part is fair: an unconditional decision's choices appear about equally often.
    fair = archs[: 2 + 31]
    for d in space.decisions:
        if d.when is None:
            seen = [sum(a[d.name] == c for a in fair) for c in d.choices]
            assert max(seen) - min(seen) <= 2, (d.name, seen)


def test_covering_design_of_a_tiny_space_and_bad_size():
    space = get_space("mbv3_test")
    assert len(covering_design(space, 10**6, seed=0)) == space.size()
    with pytest.raises(ValueError, match="at least 1"):
        covering_design(space, 0)


def test_latency_model_serves_measured_subnets_exactly_and_names_its_target():
    space = get_space("mbv3_test")
    terms = _terms(space, 2)
    train = covering_design(space, 30, seed=0)
    measured = {str(a): _additive(terms, a) * (1.1 if i % 2 else 0.9) for i, a in enumerate(train)}  # off-model
    model = LatencyModel(space, measured, target={"device": "cpu", "batch_size": 4, "threads": 1})
    assert all(model(a) == measured[str(a)] for a in train)
    assert "cpu" in model.summary() and "batch 4" in model.summary()
    assert model.quality["model"] in ("cost", "additive", "additive_log", "additive+cost", "additive+cost_log") or \
        model.quality["model"].startswith("+gp(")


def test_report_names_the_device_and_batch_of_a_latency_budget(tmp_path):
    from oneshot.pipeline.report import write_report

    rows = [{"budget_key": "latency", "budget": 2.0, "limits": {"latency": 2.0}, "arch": "a", "flops": 1e6,
             "params": 10}]
    text = write_report(tmp_path, {"title": "t", "budgets": rows, "latency_target": "cpu, batch 8, 1 thread"})
    assert "latency ≤ 2 ms (cpu, batch 8, 1 thread)" in text.read_text()


def test_thread_clock_times_one_thread_and_is_kept_apart(tmp_path):
    from oneshot.score.latency import measure_latency

    space = get_space("mbv3_test")
    small, large = space.smallest(), space.largest()
    table = tmp_path / "lat.jsonl"
    cpu = measure_latency(space, [small, large], repeats=5, threads=1, clock="thread", table=table)
    assert all(v > 0 for v in cpu.values())
    assert '"clock": "thread"' in table.read_text()  # a table of thread-clock timings says so in its records
    with pytest.raises(ValueError, match="threads=1"):
        measure_latency(space, [small], threads=2, clock="thread")
    with pytest.raises(ValueError, match="clock must be"):
        measure_latency(space, [small], clock="cpu")


def test_onnxruntime_is_a_latency_device(tmp_path):
    """`device="onnxruntime"` times the ONNX export under onnxruntime's CPU provider; its table is its own."""
    from oneshot.score.latency import measure_latency

    space = get_space("mbv3_test")
    archs = [space.smallest(), space.largest()]
    table = tmp_path / "ort.jsonl"
    ms = measure_latency(space, archs, device="onnxruntime", repeats=2, warmup=1, table=table, threads=1)
    assert set(ms) == {str(a) for a in archs} and all(v > 0 for v in ms.values())
    rows = [json.loads(line) for line in table.read_text().splitlines()[1:]]
    assert {r["device"] for r in rows} == {"onnxruntime"}
    again = measure_latency(space, archs, device="onnxruntime", repeats=2, warmup=1, table=table, threads=1)
    assert again == ms  # served from the table, not timed twice
    with pytest.raises(ValueError, match="unknown device 'tpu9'"):
        measure_latency(space, archs, device="tpu9")
