"""What a subnet costs: counted on the extracted module with torch's flop counter, or analytically and cached."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

from .base import Cost, FamilyConfig
from .registry import config_from_dict
from .space import Arch

__all__ = ["Cost", "count_cost", "cost"]


def count_cost(module: nn.Module, input_shape: tuple[int, ...], bias_adds: bool = True) -> Cost:
    """Count MACs of one sample and parameters by running `module` once under torch's FlopCounterMode.

    As NAS-Bench-201 counts them: multiply-accumulates of conv and linear layers, plus one per output element for
    a layer's bias add (the flop counter itself ignores biases); pooling, normalization and activations are free.
    `bias_adds=False` leaves bias adds out, as NAS-Bench-Macro counts (give the family's `bias_adds_in_macs`).
    Matrix products count too (attention's q@k^T and attn@v, whether written as matmuls or fused in
    `F.scaled_dot_product_attention`); softmax and the attention scaling are free.
    """
    added = 0

    def count_bias(mod: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal added
        added += out.numel()

    hooks = [
        m.register_forward_hook(count_bias)
        for m in module.modules()
        if bias_adds and isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None
    ]
    was_training = module.training
    module.eval()
    try:
        param = next(module.parameters(), None)
        x = torch.zeros((1, *input_shape), device=param.device if param is not None else "cpu")
        counter = flop_counter_mode()
        with counter, torch.no_grad():
            module(x)
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    macs = counter.get_total_flops() // 2 + added
    return Cost(macs=macs, params=sum(p.numel() for p in module.parameters()))


# torch's flop counter knows the CUDA kernels of F.scaled_dot_product_attention but not the CPU one, which it
# would count as zero: give the CPU kernel the same formula (2 * B * heads * Tq * Tk * head_dim per product).
def _sdpa_flops(query_shape: tuple, key_shape: tuple, value_shape: tuple, *args: object, **kwargs: object) -> int:
    from torch.utils import flop_counter

    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def flop_counter_mode() -> Any:
    """torch's FlopCounterMode as `count_cost` uses it (CPU attention counted); imported on first use, since the
    flop counter pulls in triton (~0.2 s of `import supernets`)."""
    from torch.utils.flop_counter import FlopCounterMode

    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return FlopCounterMode(display=False, custom_mapping={cpu_sdpa: _sdpa_flops} if cpu_sdpa is not None else {})


@lru_cache(maxsize=None)
def _config(family: str, config_json: str) -> FamilyConfig:
    import json

    return config_from_dict(family, json.loads(config_json))


@lru_cache(maxsize=1 << 16)
def cost(arch: Arch) -> Cost:
    """Fast path for search: the family's analytic formula, memoized; equal to `count_cost` on the extracted net."""
    space = arch.space
    return _config(space.family, space.config).cost(arch)
