"""`check(supernet)`: the conformance checks our shipped families pass, run on any supernet (a user's too).

Random subnets (and the smallest and largest) extract exactly, the analytic cost equals torch's counter, arch
strings round-trip, the forward uses every decision, fair sampling covers every choice, ONNX matches onnxruntime
(when installed) and the space fingerprint is the same in a fresh process. The report is a readable table; each
failure is one line naming the subnet and, for block-built supernets, the block and decision at fault.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Collection

import numpy as np
import torch
from torch import nn

from .base import Cost, Supernet
from .blocks import BlockSupernet, LayerChoice
from .blocks.values import spec_parents
from .cost import count_cost, flop_counter_mode
from .extract import extract
from .registry import space_to_dict
from .space import Arch, SearchSpace

__all__ = ["check", "CheckReport", "CheckLine"]


@dataclass(frozen=True)
class CheckLine:
    """One check: `ok` True (passed), False (failed) or None (skipped, with the reason in `detail`)."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class CheckReport:
    """What `check` found: `ok` when nothing failed; `str(report)` is a table with one line per check."""

    supernet: str
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(line.ok is not False for line in self.lines)

    @property
    def failures(self) -> list[CheckLine]:
        """The failed checks."""
        return [line for line in self.lines if line.ok is False]

    def line(self, name: str) -> CheckLine:
        """The check called `name` (e.g. `"cost"`)."""
        return next(line for line in self.lines if line.name == name)

    def __str__(self) -> str:
        width = max((len(line.name) for line in self.lines), default=0)
        mark = {True: "ok  ", False: "FAIL", None: "skip"}
        rows = [f"  {mark[line.ok]}  {line.name:<{width}}  {line.detail}" for line in self.lines]
        verdict = "passes" if self.ok else f"fails {len(self.failures)} check(s)"
        return "\n".join([f"supernet {self.supernet} {verdict}:", *rows])


def check(supernet: Supernet | nn.Module, n_random: int = 8, seed: int = 0,
          input_shape: tuple[int, ...] | None = None, rtol: float = 1e-4, atol: float = 1e-5,
          skip: Collection[str] = ()) -> CheckReport:
    """Run the conformance checks on `supernet` (a `Supernet`, or an nn.Module of elastic blocks plus
    `input_shape`, wrapped in a `BlockSupernet`): `n_random` random subnets besides the smallest and largest,
    drawn with `seed`; extracted outputs must match within `rtol`/`atol` in eval mode. `skip` names checks
    not to run (e.g. `("onnx", "fingerprint")`, the slow ones: an export and a fresh Python process). The
    supernet is not modified (the checks run on a copy whose BN statistics are randomized, so misaligned
    slices show)."""
    if not isinstance(supernet, Supernet):
        if not isinstance(supernet, nn.Module) or input_shape is None:
            raise TypeError("check() needs a supernets.Supernet, or an nn.Module of elastic blocks with input_shape")
        name = type(supernet).__name__
        try:
            supernet = BlockSupernet(supernet, name, tuple(input_shape))
        except (ValueError, TypeError) as exc:
            return CheckReport(f"{name!r} (module)", [CheckLine("build", False, str(exc))])
    report = CheckReport(f"{supernet.space.name!r} ({supernet.space.family})")
    net = copy.deepcopy(supernet).eval()
    _randomize_bn(net, seed)
    shape = tuple(input_shape or _input_shape(net))
    space = net.space
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys([space.smallest(), space.largest(), *(space.sample(rng) for _ in range(n_random))]))
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(seed))
    unknown = sorted(set(skip) - set(_CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown} to skip; checks: {list(_CHECKS)}")
    for name, fn in _CHECKS.items():
        if name in skip:
            report.lines.append(CheckLine(name, None, "skipped as asked"))
            continue
        try:
            ok, detail = fn(net, archs, x, shape, rtol, atol, seed)
        except Exception as exc:  # a check that crashes is a failure of that check, reported on its line
            ok, detail = False, _one_line(exc)
        report.lines.append(CheckLine(name, ok, detail))
    return report


# ---------------------------------------------------------------------- helpers
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _input_shape(net: Supernet) -> tuple[int, ...]:
    if isinstance(net, BlockSupernet):
        return net.input_shape
    c = net.config
    return (c.in_chans, c.image_size, c.image_size)  # type: ignore[attr-defined]


def _bias_adds(net: Supernet) -> bool:
    return net.bias_adds if isinstance(net, BlockSupernet) else type(net.config).bias_adds_in_macs


def _analytic(net: Supernet, arch: Arch) -> Cost:
    return net.cost(arch) if isinstance(net, BlockSupernet) else net.config.cost(arch)


@torch.no_grad()
def _randomize_bn(net: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _decisions_of(net: Supernet, module: nn.Module) -> str:
    """`(decision 'a', 'b')` for a block, or '' for other modules."""
    if not hasattr(module, "block_specs"):
        return ""
    keys = [v.key for _, spec in module.block_specs() for v in spec_parents(spec)]  # type: ignore[operator]
    return f" (decision {', '.join(repr(k) for k in dict.fromkeys(keys))})" if keys else ""


def _subnet_paths(net: BlockSupernet) -> dict[str, nn.Module]:
    """Materialized-subnet path -> supernet module (a LayerChoice's key drops out of the path)."""
    out: dict[str, nn.Module] = {}

    def walk(m: nn.Module, path: str) -> None:
        out.setdefault(path, m)
        for key, child in m._modules.items():
            if child is None:
                continue
            walk(child, path if isinstance(m, LayerChoice) else (f"{path}.{key}" if path else key))

    walk(net._net, "")
    return out


# ---------------------------------------------------------------------- the checks

def _extremes(net: Supernet, archs: list[Arch], x: torch.Tensor, *_: Any) -> tuple[bool | None, str]:
    shapes = []
    for arch in (net.space.smallest(), net.space.largest()):
        with torch.no_grad():
            y = net(x, arch)
        if not torch.isfinite(y).all():
            return False, f"subnet {arch} gives non-finite outputs"
        shapes.append(tuple(y.shape[1:]))
    return True, f"both run, outputs {shapes[0]} and {shapes[1]} per sample; {net.space.size():,} subnets"


def _strings(net: Supernet, archs: list[Arch], *_: Any) -> tuple[bool | None, str]:
    for arch in archs:
        text = str(arch)
        if Arch.from_str(net.space, text) != arch:
            return False, f"{text!r} reads back as {Arch.from_str(net.space, text)}"
        if Arch.from_json(net.space, arch.to_json()) != arch:
            return False, f"{text!r} does not survive its JSON form"
    return True, f"{len(archs)} subnets read back from their strings and JSON"


def _uses_arch(net: Supernet, archs: list[Arch], x: torch.Tensor, *_: Any) -> tuple[bool | None, str]:
    space = net.space
    if isinstance(net, BlockSupernet):
        idle = net.never_run()
        if idle:
            decision, block = idle[0]
            return False, (f"decision {decision!r} (block {block!r}) never runs: the forward does not call that "
                           f"block, so the decision changes nothing")
    largest = space.largest()
    with torch.no_grad():
        base = net(x, largest)
        if space.size() > 1 and torch.equal(base, net(x, space.smallest())):
            return False, "smallest and largest subnets give identical outputs: the forward ignores the arch"
        for d in space.decisions:
            if d.name not in largest or len(d.choices) < 2:
                continue
            other = space.make({**largest.as_dict(), d.name: d.choices[0]})
            if torch.equal(net(x, other), base):
                owner = net.owner_of(d.name) if isinstance(net, BlockSupernet) else ""
                where = f" (block {owner!r})" if owner else ""
                return False, (f"decision {d.name!r}{where} changes nothing: the largest subnet with "
                               f"{d.name}={d.choices[0]} gives the same outputs")
    return True, f"every one of {len(space.decisions)} decisions changes the output"


def _extraction(net: Supernet, archs: list[Arch], x: torch.Tensor, shape: tuple, rtol: float, atol: float,
                *_: Any) -> tuple[bool | None, str]:
    worst = 0.0
    for arch in archs:
        sub = extract(net, arch)
        with torch.no_grad():
            want, got = net(x, arch), sub(x)
        if got.shape != want.shape or not torch.allclose(got, want, rtol=rtol, atol=atol):
            where = _first_divergence(net, sub, arch, x, rtol, atol) if isinstance(net, BlockSupernet) else ""
            diff = (got - want).abs().max().item() if got.shape == want.shape else f"shape {tuple(got.shape)}"
            return False, f"subnet {arch}: extracted output differs (max {diff}){where}"
        worst = max(worst, (got - want).abs().max().item())
    return True, f"{len(archs)} subnets extract exactly (max abs difference {worst:.1e})"


def _first_divergence(net: BlockSupernet, sub: nn.Module, arch: Arch, x: torch.Tensor, rtol: float,
                      atol: float) -> str:
    """`; first at block 'p' (decision ...)`: the first module, in run order, whose output differs."""
    paths = _subnet_paths(net)
    ours: dict[str, torch.Tensor] = {}
    theirs: list[tuple[str, torch.Tensor]] = []

    def keep(store: Callable[[str, Any], None], path: str) -> Callable[..., None]:
        return lambda m, args, out: store(path, out) if isinstance(out, torch.Tensor) else None

    hooks = [m.register_forward_hook(keep(ours.__setitem__, p)) for p, m in paths.items() if p]
    hooks += [m.register_forward_hook(keep(lambda p, o: theirs.append((p, o)), p))
              for p, m in sub.named_modules() if p]
    try:
        with torch.no_grad():
            net(x, arch)
            sub(x)
    finally:
        for h in hooks:
            h.remove()
    for path, out in theirs:
        want = ours.get(path)
        if want is not None and (want.shape != out.shape or not torch.allclose(out, want, rtol=rtol, atol=atol)):
            return f"; first at block {path!r}{_decisions_of(net, paths[path])}"
    return ""


def _cost(net: Supernet, archs: list[Arch], x: torch.Tensor, shape: tuple, *_: Any) -> tuple[bool | None, str]:
    bias_adds = _bias_adds(net)
    for arch in archs:
        sub = extract(net, arch)
        analytic, counted = _analytic(net, arch), count_cost(sub, shape, bias_adds)
        if analytic != counted:
            where = _cost_culprit(net, sub, arch, shape, bias_adds) if isinstance(net, BlockSupernet) else ""
            return False, (f"subnet {arch}: analytic {analytic.macs:,} MACs / {analytic.params:,} params, counted "
                           f"{counted.macs:,} / {counted.params:,}{where}")
    return True, f"analytic cost equals count_cost on {len(archs)} subnets (bias adds {'in' if bias_adds else 'out'})"


def _cost_culprit(net: BlockSupernet, sub: nn.Module, arch: Arch, shape: tuple, bias_adds: bool) -> str:
    """`; first at block 'p' (decision ...): analytic (m, p), counted (m, p)`, per module of the subnet."""
    counter: Any = flop_counter_mode()
    start: dict[str, int] = {}
    subtree: dict[str, int] = {}
    bias: dict[str, int] = {}
    named = dict(sub.named_modules())

    def pre(path: str) -> Callable[..., None]:
        return lambda m, args: start.__setitem__(path, counter.get_total_flops())

    def post(path: str) -> Callable[..., None]:
        def hook(m: nn.Module, args: Any, out: Any) -> None:
            subtree[path] = subtree.get(path, 0) + counter.get_total_flops() - start[path]
            if bias_adds and isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                bias[path] = bias.get(path, 0) + out.numel()
        return hook

    hooks = [h for p, m in named.items()
             for h in (m.register_forward_pre_hook(pre(p)), m.register_forward_hook(post(p)))]
    try:
        with counter, torch.no_grad():
            sub(torch.zeros((1, *shape)))
    finally:
        for h in hooks:
            h.remove()
    terms = net.cost_terms(arch)
    paths = _subnet_paths(net)
    for path, m in named.items():
        own = subtree.get(path, 0) - sum(subtree.get(f"{path}.{k}" if path else k, 0) for k in m._modules)
        counted = (own // 2 + bias.get(path, 0), sum(p.numel() for p in m._parameters.values() if p is not None))
        analytic = terms.get(path, (0, 0))
        if counted != analytic:
            block = paths.get(path)
            decisions = _decisions_of(net, block) if block is not None else ""
            return (f"; first at block {path or type(m).__name__!r}{decisions}: analytic {analytic[0]:,} MACs / "
                    f"{analytic[1]:,} params, counted {counted[0]:,} / {counted[1]:,}")
    return ""


def _fair(net: Supernet, archs: list[Arch], x: torch.Tensor, shape: tuple, rtol: float, atol: float,
          seed: int) -> tuple[bool | None, str]:
    """k = the most choices of any decision; k draws in which every unconditional decision walks a random
    permutation of its choices (cycled) and conditional ones take a least-seen choice: each must run."""
    space = net.space
    if not space.decisions:
        return None, "the space has no decisions"
    rng = np.random.default_rng(seed)
    k = max(len(d.choices) for d in space.decisions)
    orders = {d.name: [d.choices[i] for i in rng.permutation(len(d.choices))] for d in space.decisions}
    counts = {(d.name, c): 0 for d in space.decisions for c in d.choices}
    for j in range(k):
        chosen: dict[str, Any] = {}
        for d in space.decisions:
            if not space.is_active(d, chosen):
                continue
            if d.when is None:
                chosen[d.name] = orders[d.name][j % len(d.choices)]
            else:
                seen = [counts[(d.name, c)] for c in d.choices]
                least = [c for c, n in zip(d.choices, seen) if n == min(seen)]
                chosen[d.name] = least[int(rng.integers(len(least)))]
            counts[(d.name, chosen[d.name])] += 1
        arch = space.make(chosen)
        with torch.no_grad():
            net(x, arch)
    spread = {}
    for d in space.decisions:
        n = [counts[(d.name, c)] for c in d.choices]
        spread[d.name] = max(n) - min(n)
        if d.when is None and min(n) == 0:
            return False, f"decision {d.name!r}: choice {d.choices[n.index(0)]!r} never drawn in {k} fair draws"
    uncond = [d.name for d in space.decisions if d.when is None]
    worst = max((spread[n] for n in uncond), default=0)
    return True, (f"{k} fair draws run and cover every choice of {len(uncond)} unconditional decisions "
                  f"(count spread {worst})")


def _onnx(net: Supernet, archs: list[Arch], x: torch.Tensor, shape: tuple, *_: Any) -> tuple[bool | None, str]:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return None, f"{' and '.join(missing)} not installed"
    if len(shape) != 3:
        return None, f"ONNX export takes (channels, height, width) inputs, this supernet takes {shape}"
    import onnxruntime as ort

    from .onnx import onnx_bytes

    arch = net.space.largest()
    sub = extract(net, arch)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes(sub, shape), options, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        want = sub(x)
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        return False, f"subnet {arch}: onnxruntime differs from torch by {(got - want).abs().max().item():.2e}"
    return True, f"largest subnet in onnxruntime matches torch (max {(got - want).abs().max().item():.1e})"


_FINGERPRINT_SCRIPT = """
import json, sys
data = json.load(sys.stdin)
try:
    from supernets import space_from_dict
    print("rebuilt", space_from_dict(data["space"]).fingerprint)
except Exception as exc:
    from supernets.space import Decision, SearchSpace
    ds = tuple(Decision(d["name"], tuple(d["choices"]), None if d["when"] is None else
                        (d["when"][0], tuple(d["when"][1]))) for d in data["describe"])
    s = data["space"]
    fp = SearchSpace(s["name"], ds, s["family"], json.dumps(s["config"], sort_keys=True)).fingerprint
    print("described", fp, (str(exc).splitlines() or [type(exc).__name__])[0])
"""


def _fingerprint(net: Supernet, *_: Any) -> tuple[bool | None, str]:
    space: SearchSpace = net.space
    payload = json.dumps({"space": space_to_dict(space), "describe": space.describe()})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONHASHSEED": "random"}
    done = subprocess.run([sys.executable, "-c", _FINGERPRINT_SCRIPT], input=payload, capture_output=True, text=True,
                          timeout=300, env=env, cwd=os.getcwd())
    if done.returncode != 0:
        return False, f"fresh process failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"
    how, fp, *why = done.stdout.split(maxsplit=2)
    if fp != space.fingerprint:
        return False, f"fingerprint {space.fingerprint} here, {fp} in a fresh process ({how})"
    if how == "described":
        return True, f"{fp} in a fresh process, from the description (it cannot rebuild the space: {why[0].strip()})"
    return True, f"{fp} again when a fresh process rebuilds the space"


_CHECKS: dict[str, Callable[..., tuple[bool | None, str]]] = {
    "smallest/largest": _extremes, "arch strings": _strings, "uses the arch": _uses_arch, "extraction": _extraction,
    "cost": _cost, "fair sampling": _fair, "onnx": _onnx, "fingerprint": _fingerprint,
}
