"""Zero-cost proxies: scores of an untrained (or weight-inheriting) network from one mini-batch, no training.

Each proxy is a small function of (network, images (B, C, H, W), labels (B,)) returning a float, registered by
name: `get_proxy("synflow")(net, images, labels, seed=0)`, `list_proxies()`. Calling a `Proxy` never changes the
network it is given: the function runs on a deep copy (gradients, BN statistics, re-initialization and sign
flips all stay on the copy), with torch's CPU generator forked and seeded by `seed`, so equal inputs and seeds
give equal values. Higher is meant to be better for every proxy (as the papers rank with them); a value that is
undefined for a network (e.g. the Jacobian of a cell whose output ignores its input) comes back as NaN.

Conventions shared by the data-driven proxies, as in the reference implementations (Abdelfattah et al. 2021,
SamsungLabs/zero-cost-nas; NAS-Bench-Suite-Zero, automl/NASLib): the network is in training mode, so BN layers
normalize with the statistics of the batch (dropout is switched off so results are deterministic); per-weight
scores are summed over the weights of every Conv2d and Linear layer; the loss is cross-entropy.

Definitions followed (cited per proxy below): synflow, snip, grad_norm, fisher, grasp and jacov as in
Abdelfattah et al. 2021 (which re-state Tanaka et al. 2020, Lee et al. 2019, Theis et al. 2018 / Turner et al.
2020, Wang et al. 2020 and Mellor et al. 2020 v1); nwot as in Mellor et al. 2021 (ICML); zen as in Lin et al.
2021 (the paper's formula; see `zen` for where its reference code differs); meco as in Jiang et al. 2023 and
zico as in Li et al. 2023 (see each for where the reference code differs); params and flops from
`supernets.cost`.

Cost, CPU seconds per network on one thread at batch 64, 32 px (benchmarks/bench_proxies.py `timing`):
nb201 (C=16, N=5): synflow 0.11, nwot 0.94, jacov 1.03, snip 0.96, grad_norm 1.03, fisher 1.13, grasp 3.37,
zen 1.38; NAS-Bench-Macro: synflow 0.12, nwot 0.62, jacov 0.97, snip 0.87, grad_norm 0.86, fisher 0.99, grasp
4.15, zen 0.81; params and flops from the cost model take microseconds.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from supernets import Arch, cost, count_cost

__all__ = ["Proxy", "register_proxy", "get_proxy", "list_proxies", "prunable_layers", "score_many"]

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.SiLU, nn.GELU)


@dataclass(frozen=True)
class Proxy:
    """A registered proxy; call it as `proxy(net, images, labels, seed=0) -> float`.

    `uses_weights`: whether the value depends on the network's weights (False for params and flops, which only
    count, and for zen, which re-initializes by definition); `needs_labels`: whether the loss needs labels;
    `from_arch`: a faster path computing the same value from the subnet alone (no network needed);
    `min_batch`: fewest images that make the proxy defined (those comparing images need 2).
    """

    name: str
    fn: ProxyFn
    uses_weights: bool = True
    needs_labels: bool = False
    from_arch: Callable[[Arch], float] | None = None
    min_batch: int = 1

    def __call__(self, net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                 seed: int = 0, inplace: bool = False) -> float:
        """The proxy of `net` on one batch (images (B, C, H, W) float, labels (B,) int64 class indices).

        `inplace=True` skips the protective copy (a tenth of a second for a NAS-Bench-Macro network) when the
        caller owns `net` and discards it afterwards: the proxy may then change it.
        """
        _check_batch(self, images, labels)
        value = float(_guarded(self.name, lambda work: self.fn(work, images, labels), net, images, seed, inplace))
        return value if math.isfinite(value) else float("nan")


_PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str, *, uses_weights: bool = True, needs_labels: bool = False,
                   from_arch: Callable[[Arch], float] | None = None, min_batch: int = 1
                   ) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering `fn(net, images, labels) -> float` as proxy `name` (names are unique)."""
    if not name or "@" in name or "," in name:
        raise ValueError(f"proxy name {name!r} must be non-empty without '@' or ','")

    def deco(fn: ProxyFn) -> ProxyFn:
        if name in _PROXIES:
            raise ValueError(f"proxy {name!r} is already registered")
        _PROXIES[name] = Proxy(name, fn, uses_weights, needs_labels, from_arch, min_batch)
        return fn

    return deco


def list_proxies(pattern: str = "*") -> list[str]:
    """Registered proxy names matching a shell-style pattern, sorted."""
    return sorted(n for n in _PROXIES if fnmatch.fnmatch(n, pattern))


def get_proxy(name: str) -> Proxy:
    """The proxy registered as `name`."""
    try:
        return _PROXIES[name]
    except KeyError:
        raise ValueError(f"unknown proxy {name!r}; registered: {list_proxies()}") from None


# --------------------------------------------------------------------------- shared helpers
def _check_batch(proxy: Proxy, images: torch.Tensor, labels: torch.Tensor | None) -> None:
    name = proxy.name
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"proxy {name!r} needs images as a float tensor (B, C, H, W), got {shape}")
    if images.shape[0] < proxy.min_batch:
        raise ValueError(f"proxy {name!r} compares images of a batch: give at least {proxy.min_batch}, "
                         f"got {images.shape[0]}")
    if proxy.needs_labels:
        if labels is None:
            raise ValueError(f"proxy {name!r} needs labels (its loss is cross-entropy)")
        if labels.shape != (images.shape[0],) or labels.dtype != torch.int64:
            raise ValueError(f"proxy {name!r} needs int64 labels of shape ({images.shape[0]},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")


def _guarded(name: str, run: Callable[[nn.Module], object], net: nn.Module, images: torch.Tensor, seed: int,
             inplace: bool) -> object:
    """`run(work)` on a scratch copy of `net` (or `net` itself if `inplace`) under a forked generator seeded by
    `seed`; a failure inside torch becomes one line naming the proxy and the batch."""
    work = _scratch(net, copy_first=not inplace)
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(int(seed))
            return run(work)
    except RuntimeError as exc:  # shape mismatches and the like
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"proxy {name!r} failed on a batch of shape {tuple(images.shape)}: {first}") from None


def _scratch(net: nn.Module, copy_first: bool = True) -> nn.Module:
    """A deep copy to work on: training mode (BN on batch statistics), dropout off, every parameter trainable."""
    work = copy.deepcopy(net) if copy_first else net
    work.train()
    for m in work.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work


def prunable_layers(net: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear layers whose weights per-weight proxies sum over (zero-cost-nas's 'prunable' set)."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _on_device(net: nn.Module, *tensors: torch.Tensor | None) -> Iterator[torch.Tensor | None]:
    ref = next(net.parameters(), None)
    for t in tensors:
        yield t if t is None or ref is None else t.to(ref.device)


def _loss_grads(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[nn.Module]:
    """Backpropagate the cross-entropy of one batch; returns the prunable layers (their .grad is set)."""
    x, y = _on_device(net, images, labels)
    logits = net(x)  # (B, num_classes)
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}) for a network with {logits.shape[1]} outputs")
    F.cross_entropy(logits, y).backward()
    return prunable_layers(net)


def _hooked_forward(net: nn.Module, images: torch.Tensor, handles: list) -> None:
    """One forward pass without gradients for the forward hooks in `handles`, which are removed afterwards."""
    try:
        (x,) = _on_device(net, images)
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()


def _grad_or_zero(w: torch.Tensor) -> torch.Tensor:
    return w.grad if w.grad is not None else torch.zeros_like(w)


@torch.no_grad()
def _sum_layers(per_weight: Callable[[torch.Tensor], torch.Tensor], layers: list[nn.Module]) -> float:
    """Sum of a per-layer statistic of the weights, accumulated in float64."""
    return float(sum(float(per_weight(m.weight)) for m in layers))


# --------------------------------------------------------------------------- proxies
@register_proxy("synflow")
def synflow(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Synaptic flow (Tanaka et al. 2020, as a NAS proxy in Abdelfattah et al. 2021): sum of theta * dR/dtheta.

    Every parameter and buffer is replaced by its absolute value, the network runs in float64 (products over
    depth overflow float32) on one all-ones image, R is the sum of its outputs, and the score sums
    |theta * dR/dtheta| over Conv2d and Linear weights. BN layers are removed (replaced by identity): this is
    the `synflow` of Abdelfattah et al. (their `bn=False` copy), the variant their paper reports; with batch
    statistics on a single constant image BN would be ill-defined.
    """
    _replace_bn(net)
    net.double().eval()  # no BN left; eval only keeps dropout-like layers off
    with torch.no_grad():
        for t in [*net.parameters(), *net.buffers()]:
            if t.is_floating_point():
                t.abs_()
    (x,) = _on_device(net, torch.ones((1, *images.shape[1:]), dtype=torch.float64))
    net(x).sum().backward()
    return _sum_layers(lambda w: (w * _grad_or_zero(w)).abs().sum(), prunable_layers(net))


def _swap_modules(net: nn.Module, swaps: dict[type, Callable[[], nn.Module]]) -> None:
    """Replace, in place, every submodule that is an instance of a key by a new module from its factory."""
    for name, child in list(net.named_children()):
        factory = next((f for t, f in swaps.items() if isinstance(child, t)), None)
        if factory is not None:
            setattr(net, name, factory())
        else:
            _swap_modules(child, swaps)


def _replace_bn(net: nn.Module) -> None:
    _swap_modules(net, {nn.modules.batchnorm._BatchNorm: nn.Identity})


class _HardSigmoid(nn.Module):
    """relu6(x + 3) / 6: the same function as nn.Hardsigmoid, written with ops that autograd differentiates twice."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3) / 6


class _HardSwish(_HardSigmoid):
    """x * relu6(x + 3) / 6, nn.Hardswish in twice-differentiable ops."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * super().forward(x)


def _snip_of(layers: list[nn.Module]) -> float:
    return _sum_layers(lambda w: (w * _grad_or_zero(w)).abs().sum(), layers)


def _grad_norm_of(layers: list[nn.Module]) -> float:
    return _sum_layers(lambda w: _grad_or_zero(w).norm(), layers)


def _fisher_hooks(net: nn.Module, total: list[torch.Tensor]) -> list[torch.utils.hooks.RemovableHandle]:
    """Hooks adding each Conv2d/Linear output channel's Fisher term to `total` during the backward pass."""

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        act = out.detach()

        def on_grad(g: torch.Tensor) -> None:
            prod = act * g  # (B, C, H, W) or (B, C)
            per_channel = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod  # (B, C)
            total.append(0.5 * per_channel.pow(2).mean(0).sum())

        if out.requires_grad:
            out.register_hook(on_grad)

    return [m.register_forward_hook(hook) for m in prunable_layers(net)]


# snip, grad_norm and fisher all read one cross-entropy backward pass of the same batch: asked for together
# (`score_many`), they share it.
_LOSS_GRADIENT = ("snip", "grad_norm", "fisher")


def _loss_gradient_proxies(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                           names: Sequence[str]) -> dict[str, float]:
    """The proxies `names` (of `_LOSS_GRADIENT`) from one backward pass; fisher's hooks only when it is asked."""
    total: list[torch.Tensor] = []
    handles = _fisher_hooks(net, total) if "fisher" in names else []
    try:
        layers = _loss_grads(net, images, labels)
    finally:
        for h in handles:
            h.remove()
    of_weights = {"snip": _snip_of, "grad_norm": _grad_norm_of}
    return {n: float(sum(total)) if n == "fisher" else of_weights[n](layers) for n in names}


@register_proxy("snip", needs_labels=True)
def snip(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SNIP connection sensitivity (Lee et al. 2019, as in Abdelfattah et al. 2021): sum of |theta * dL/dtheta|."""
    return _loss_gradient_proxies(net, images, labels, ("snip",))["snip"]


@register_proxy("grad_norm", needs_labels=True)
def grad_norm(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Gradient norm (Abdelfattah et al. 2021): the sum over Conv2d/Linear layers of ||dL/dW||_2 of each layer.

    Per-layer Euclidean norms summed (as zero-cost-nas and NAS-Bench-Suite-Zero compute it), not the norm of the
    whole gradient vector.
    """
    return _loss_gradient_proxies(net, images, labels, ("grad_norm",))["grad_norm"]


@register_proxy("fisher", needs_labels=True)
def fisher(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fisher information of channels (Theis et al. 2018; Turner et al. 2020; as in Abdelfattah et al. 2021).

    For the output activation a of every Conv2d/Linear layer (before BN) and its gradient g = dL/da, each
    channel k scores 0.5 * mean_over_batch((sum over positions of a * g)_k ^ 2); the proxy sums all channels
    of all layers.
    """
    return _loss_gradient_proxies(net, images, labels, ("fisher",))["fisher"]


def score_many(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, names: Sequence[str], *,
               seed: int = 0, inplace: bool = False, seconds: dict[str, float] | None = None) -> dict[str, float]:
    """Proxies `names` of one network, each value equal to its own call, with shared work done once.

    snip, grad_norm and fisher asked for together share one forward and backward pass (two of them cost about
    one). `inplace`: the last computation may use `net` itself (see `Proxy.__call__`). `seconds`, when given,
    receives each proxy's wall time; a shared pass is split evenly between the proxies that read it.
    """
    proxies = [get_proxy(n) for n in dict.fromkeys(names)]  # unknown names fail before any work
    values: dict[str, float] = {}
    shared = [p.name for p in proxies if p.name in _LOSS_GRADIENT]
    rest = [p for p in proxies if p.name not in _LOSS_GRADIENT or len(shared) < 2]
    if len(shared) >= 2:
        _check_batch(get_proxy(shared[0]), images, labels)
        t0 = time.perf_counter()
        got = _guarded(",".join(shared), lambda work: _loss_gradient_proxies(work, images, labels, shared), net,
                       images, seed, inplace and not rest)
        values.update({n: v if math.isfinite(v) else float("nan") for n, v in got.items()})  # type: ignore[union-attr]
        if seconds is not None:
            seconds.update({n: (time.perf_counter() - t0) / len(shared) for n in shared})
    for i, p in enumerate(rest):
        t0 = time.perf_counter()
        values[p.name] = p(net, images, labels, seed=seed, inplace=inplace and i == len(rest) - 1)
        if seconds is not None:
            seconds[p.name] = time.perf_counter() - t0
    return {n: values[n] for n in names}


@register_proxy("grasp", needs_labels=True)
def grasp(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """GraSP (Wang et al. 2020, as in Abdelfattah et al. 2021): sum of -theta * (H g) over Conv2d/Linear weights.

    g = dL/dtheta on the batch, H the Hessian of L; H g is the gradient of (g . stop_gradient(g)). One forward
    pass serves both (the reference code runs the same batch twice, which gives the same values in train mode).
    """
    _swap_modules(net, {nn.Hardsigmoid: _HardSigmoid, nn.Hardswish: _HardSwish})  # torch has no 2nd derivative
    layers = prunable_layers(net)
    weights = [m.weight for m in layers]
    x, y = _on_device(net, images, labels)
    # Fused attention kernels have no second derivative; the plain-math one (same values) does.
    with sdpa_kernel(SDPBackend.MATH):
        loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    pairs = [(w, g) for w, g in zip(weights, grads) if g is not None]
    z = sum((g * g.detach()).sum() for _, g in pairs)
    hg = torch.autograd.grad(z, [w for w, _ in pairs], allow_unused=True)
    return float(sum((-w.detach() * h).sum() for (w, _), h in zip(pairs, hg) if h is not None))


@register_proxy("jacov", min_batch=2)
def jacov(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Jacobian covariance (Mellor et al. 2020, "NAS without training" v1; as in Abdelfattah et al. 2021).

    J (B, C*H*W) holds the gradient of each image's summed outputs with respect to that image; with the
    eigenvalues v of its row correlation matrix (B, B), the score is -sum(log(v + k) + 1 / (v + k)), k = 1e-5:
    highest when the images' Jacobians are uncorrelated. NaN when a Jacobian row is constant (the output
    ignores the input).
    """
    (x,) = _on_device(net, images)
    x = x.detach().clone().requires_grad_(True)
    out = net(x)  # (B, num_classes)
    if not out.requires_grad:  # no path from input to output (e.g. a cell of `none` edges)
        return float("nan")
    out.backward(torch.ones_like(out))
    if x.grad is None:
        return float("nan")
    jac = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()  # (B, C*H*W)
    if (jac.std(axis=1) == 0).any():
        return float("nan")
    corr = np.corrcoef(jac)  # (B, B)
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@register_proxy("nwot", min_batch=2)
def nwot(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """NASWOT (Mellor et al. 2021, ICML): log|det K| of the kernel of binary activation codes.

    Each rectifier's input, flattened per image, gives a binary code c (unit active: x > 0); K (B, B) counts,
    for each pair of images, the units on which their codes agree, K = sum over rectifiers of c c^T +
    (1 - c)(1 - c)^T (the number of units minus the Hamming distance). The paper hooks ReLUs; here ReLU6,
    LeakyReLU, Hardswish, SiLU and GELU layers count too, with x > 0 as their active side. Forward only.
    """
    n = images.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        code = (inputs[0].detach() > 0).reshape(n, -1).double().cpu()  # (B, units)
        kernel.add_(code @ code.T + (1 - code) @ (1 - code).T)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, _ACTIVATIONS)]
    if not handles:
        raise ValueError("proxy 'nwot' found no rectifier layer (nn.ReLU and the like) to read binary codes from")
    _hooked_forward(net, images, handles)
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("nan")


@register_proxy("zen", uses_weights=False)
def zen(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Zen-score (Lin et al. 2021, Zen-NAS): log E||f(x) - f(x + 0.01 eps)||_1 + sum over BN of log(sigma_BN).

    Weights are re-drawn from N(0, 1) (BN scale 1, shift 0, biases 0) and x, eps are N(0, 1) images of the
    batch's shape (the images themselves are not used), all from the seeded generator. f is the pre-pooling
    feature map: the output of the last layer producing a 4-D tensor; the difference is summed over (C, H, W)
    and averaged over the batch. sigma_BN = sqrt(mean over channels of the batch variance that each BN layer
    normalizes with), on the unperturbed batch, as in the paper's definition; the reference code (idstcv/ZenNAS)
    reads BN running variances after its forward passes instead, which mixes in the initial value 1.
    """
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    x = torch.randn(images.shape)
    noisy = x + 0.01 * torch.randn(images.shape)
    x, noisy = _on_device(net, x, noisy)
    log_sigma: list[float] = []
    last: list[torch.Tensor] = []
    record_bn = [True]

    def on_bn(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        if record_bn[0]:
            var = inputs[0].double().var(dim=(0, 2, 3) if inputs[0].dim() == 4 else 0, unbiased=False)  # (C,)
            mean_var = float(var.mean())
            log_sigma.append(0.5 * math.log(mean_var) if mean_var > 0 else -math.inf)  # dead layer: undefined

    def on_leaf(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            last[:] = [out]

    bn = [m.register_forward_hook(on_bn) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    leaves = [m.register_forward_hook(on_leaf) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(x)
            feat = last[0] if last else None
            record_bn[0] = False
            net(noisy)
            feat_noisy = last[0] if last else None
    finally:
        for h in bn + leaves:
            h.remove()
    if feat is None or feat_noisy is None:
        raise ValueError("proxy 'zen' found no layer producing a 4-D feature map before pooling")
    delta = (feat.double() - feat_noisy.double()).abs().sum(dim=(1, 2, 3)).mean()
    return math.log(float(delta)) + sum(log_sigma) if float(delta) > 0 else float("nan")


@register_proxy("meco")
def meco(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """MeCo (Jiang et al. 2023, NeurIPS): sum over feature maps of the smallest eigenvalue of their correlation.

    One forward pass of the batch (training mode: BN on batch statistics); for every distinct tensor a module
    outputs with at least 3 dims, the first image's map is read as rows (channels, or tokens) by columns (the
    rest, flattened), and the smallest eigenvalue of its rows' Pearson correlation matrix is added; rows that
    are constant make the correlation undefined, which the reference code sets to 0, so those maps add 0. The
    reference code (aaronmeco/MeCo) hooks every module; here a container whose output is its last layer's
    tensor counts that map once, not once per level of nesting, so the score does not depend on how a network
    groups its layers. Outputs of 2 dims (logits) add 0 in both. Computed in float64; a map with more rows than
    columns minus one is singular after centring, so it adds exactly 0 without an eigendecomposition.
    """
    maps: dict[int, torch.Tensor] = {}

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        if isinstance(out, torch.Tensor) and out.dim() >= 3:
            maps.setdefault(id(out), out)  # the tensor is held, so its id is not reused during the pass

    _hooked_forward(net, images, [m.register_forward_hook(hook) for m in net.modules()])
    total = 0.0
    for out in maps.values():
        fea = out[0].detach().reshape(out.shape[1], -1).double().cpu()  # (rows, columns)
        rows, cols = fea.shape
        if rows > cols - 1 or bool((fea.std(dim=1) == 0).any()):
            continue  # singular, or a constant row set to 0: the smallest eigenvalue is 0
        total += float(torch.linalg.eigvalsh(torch.atleast_2d(torch.corrcoef(fea)))[0])  # one row: [[1]]
    return total


@register_proxy("zico", needs_labels=True, min_batch=2)
def zico(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """ZiCo (Li et al. 2023, ICLR): sum over layers of log(sum over weights of mean|g| / std(g)) across batches.

    The batch is split into two halves (as NAS-Bench-Suite-Zero and AZ-NAS run it: one batch of 64, two splits);
    g is a Conv2d/Linear weight's cross-entropy gradient on each half, mean and std (population) are taken over
    the halves, weights whose std is 0 are left out, and a layer whose sum is 0 adds nothing. Gradients are
    zeroed between halves, as the paper's definition (statistics of per-batch gradients) says; the official
    code (SLDGroup/ZiCo) never zeroes them, so its second "batch" is the running sum of both.
    """
    half = images.shape[0] // 2
    per_half: list[list[torch.Tensor]] = []
    for part in (slice(0, half), slice(half, 2 * half)):
        net.zero_grad(set_to_none=True)
        layers = _loss_grads(net, images[part], labels[part])
        per_half.append([_grad_or_zero(m.weight).detach().double().flatten() for m in layers])
    total = 0.0
    for grads in zip(*per_half):
        g = torch.stack(grads)  # (2, weights)
        std = g.std(dim=0, unbiased=False)
        keep = std > 0
        ratio = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total


def _arch_params(arch: Arch) -> float:
    return float(cost(arch).params)


def _arch_flops(arch: Arch) -> float:
    return float(cost(arch).flops)


@register_proxy("params", uses_weights=False, from_arch=_arch_params)
def params(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Number of parameters (the baseline every proxy is compared with in Abdelfattah et al. 2021)."""
    return float(sum(p.numel() for p in net.parameters()))


@register_proxy("flops", uses_weights=False, from_arch=_arch_flops)
def flops(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    """FLOPs of one image at the batch's resolution (2 per multiply-accumulate), counted by `supernets.cost`."""
    return float(count_cost(net, tuple(images.shape[1:])).flops)
