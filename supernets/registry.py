"""Find spaces and supernets by name: a tiny function per variant, registered with a decorator (as timm does)."""

from __future__ import annotations

from typing import Any, Callable

from ._registry import Registry
from .base import FamilyConfig, Supernet
from .blocks import ModuleConfig
from .macro import MacroConfig
from .mbv3 import MBV3Config, StageSpec
from .nb201 import NB201Config
from .resnet import ResNetConfig
from .space import SearchSpace
from .vit import ViTConfig

__all__ = [
    "register_supernet", "register_family", "list_supernets", "get_config", "get_space", "create_supernet",
    "config_from_dict", "space_from_dict", "space_to_dict",
]



def _as_variant(name: str, obj: Any) -> Callable[[], FamilyConfig]:
    """An `oneshot.spaces` entry point names a variant function (returning a FamilyConfig, e.g. a
    `supernets.ModuleConfig` for a module built from the blocks) or a FamilyConfig itself."""
    config = obj() if callable(obj) and not isinstance(obj, FamilyConfig) else obj
    if not isinstance(config, FamilyConfig):
        raise ValueError(f"must name a function returning a supernets FamilyConfig (e.g. ModuleConfig) or a config, "
                         f"got {type(config).__name__}")
    return obj if callable(obj) and not isinstance(obj, FamilyConfig) else (lambda: config)


# Installed packages add spaces through the `oneshot.spaces` entry-point group (`myspace = mypkg.spaces:myspace`).
_VARIANTS: Registry[Callable[[], FamilyConfig]] = Registry("supernet", key=lambda fn: fn.__name__,
                                                           entry_points="oneshot.spaces", adapt=_as_variant)
_FAMILIES: Registry[type[FamilyConfig]] = Registry("supernet family")


def register_supernet(fn: Callable[[], FamilyConfig]) -> Callable[[], FamilyConfig]:
    """Register a variant under its function's name; the function returns the variant's default config."""
    return _VARIANTS.register(fn)


def register_family(name: str, config_cls: type[FamilyConfig]) -> type[FamilyConfig]:
    """Make a family's config class rebuildable from files by its family name (`config_from_dict`)."""
    return _FAMILIES.register(config_cls, name=name)


register_family("mbv3", MBV3Config)
register_family("nb201", NB201Config)
register_family("macro", MacroConfig)
register_family("vit", ViTConfig)
register_family("resnet", ResNetConfig)
register_family("module", ModuleConfig)  # user code named by class path (supernets.blocks)


def list_supernets(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style pattern, sorted (with installed packages' `oneshot.spaces`
    entry points, listed without importing them)."""
    return _VARIANTS.list(pattern)


def get_config(name: str, **overrides: Any) -> FamilyConfig:
    """The variant's config with some fields replaced (e.g. `num_classes=10`, `image_size=16`)."""
    cfg = _VARIANTS.get(name)()
    return cfg.replace(**overrides) if overrides else cfg


def get_space(name: str, **overrides: Any) -> SearchSpace:
    """The search space of a registered variant, without building any torch module."""
    return get_config(name, **overrides).search_space(name)


def create_supernet(name: str, **overrides: Any) -> Supernet:
    """Build a registered supernet, e.g. `create_supernet("mbv3", num_classes=10)`."""
    return get_config(name, **overrides).build_supernet(name)


def config_from_dict(family: str, data: dict[str, Any]) -> FamilyConfig:
    """Rebuild a family config saved with a checkpoint or subnet file."""
    return _FAMILIES.get(family).from_dict(data)


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """`{"name", "family", "config"}`: enough to rebuild the space (and its supernet) anywhere."""
    import json

    return {"name": space.name, "family": space.family, "config": json.loads(space.config)}


def space_from_dict(data: dict[str, Any]) -> SearchSpace:
    """Rebuild a space from `{"name", "family", "config"}` as stored in files."""
    return config_from_dict(data["family"], data["config"]).search_space(data["name"])


# --------------------------------------------------------------------------- registered variants
@register_supernet
def mbv3() -> MBV3Config:
    """Once-for-All MobileNetV3 space for 224 px ImageNet."""
    return MBV3Config()


@register_supernet
def mbv3_tiny() -> MBV3Config:
    """Small mbv3 space for 16-32 px inputs (the digits default): 3 stages, elastic width, depth, kernel, expand."""
    return MBV3Config(
        stages=(StageSpec(16, 1, False, "relu"), StageSpec(32, 2, True, "relu"), StageSpec(48, 2, True, "hard_swish")),
        depths=(1, 2, 3), kernels=(3, 5, 7), expands=(2, 3, 4), width_mults=(0.5, 0.75, 1.0),
        num_classes=10, stem_width=16, stem_stride=1, head_width=128, divisor=4, image_size=16,
    )


@register_supernet
def mbv3_test() -> MBV3Config:
    """Minimal mbv3 space for unit tests (8 px inputs)."""
    return MBV3Config(
        stages=(StageSpec(8, 1, False, "relu"), StageSpec(16, 2, True, "hard_swish")),
        depths=(1, 2), kernels=(3, 5), expands=(2, 3), width_mults=(0.5, 1.0),
        num_classes=10, stem_width=8, stem_stride=1, head_width=32, divisor=4, image_size=8,
    )


@register_supernet
def nb201() -> NB201Config:
    """NAS-Bench-201 skeleton exactly as the benchmark (C=16, N=5, 32 px, 10 classes)."""
    return NB201Config()


@register_supernet
def nb201_small() -> NB201Config:
    """NAS-Bench-201 cell space on a narrow, shallow skeleton (C=8, N=1) for CPU runs."""
    return NB201Config(channels=8, cells=1, image_size=16)


@register_supernet
def nb201_test() -> NB201Config:
    """Minimal NAS-Bench-201 skeleton for unit tests (C=4, N=1, 8 px)."""
    return NB201Config(channels=4, cells=1, image_size=8)


@register_supernet
def macro() -> MacroConfig:
    """NAS-Bench-Macro exactly as the benchmark (8 layers, stem 32, head 1280, 32 px, 10 classes): its table is ground truth."""
    return MacroConfig()


@register_supernet
def macro_test() -> MacroConfig:
    """Minimal macro space for unit tests: the same 8 layers and arch strings on narrow channels and 8 px inputs."""
    return MacroConfig(stem_width=4, stage_widths=(8, 16, 16), head_width=32, image_size=8)


@register_supernet
def vit() -> ViTConfig:
    """AutoFormer-T's ViT space for 224 px ImageNet: embed 192/216/240, depth 12-14, heads 3/4, MLP ratio 3.5/4."""
    return ViTConfig()


@register_supernet
def vit_tiny() -> ViTConfig:
    """Small ViT space for 16-32 px inputs (the digits ViT): 4 px patches, 16-wide heads, depth 2-4."""
    return ViTConfig(embed_dims=(32, 48, 64), depths=(2, 3, 4), num_heads=(1, 2, 3), mlp_ratios=(1.0, 2.0, 3.0),
                     head_dim=16, patch_size=4, num_classes=10, image_size=16)


@register_supernet
def vit_test() -> ViTConfig:
    """Minimal ViT space for unit tests (8 px inputs, 4 tokens plus the class token, 40 subnets)."""
    return ViTConfig(embed_dims=(8, 12), depths=(1, 2), num_heads=(1, 2), mlp_ratios=(1.0, 2.0), head_dim=4,
                     patch_size=4, num_classes=10, image_size=8)


@register_supernet
def resnet50() -> ResNetConfig:
    """Once-for-All style ResNet space for 224 px ImageNet whose largest subnet is torchvision's ResNet-50: depth
    per stage (3, 4, 6, 3 bottlenecks or up to 2 fewer), expansion 0.15/0.2/0.25 per block, width 0.65/0.8/1.0
    per stage and stem."""
    return ResNetConfig()


@register_supernet
def resnet_cifar() -> ResNetConfig:
    """The resnet50 space sized for 32 px inputs (CIFAR-10): a 3x3 stride-1 stem without max pool, 10 classes."""
    return ResNetConfig(stem_kernel=3, stem_stride=1, max_pool=False, num_classes=10, image_size=32)


@register_supernet
def resnet_test() -> ResNetConfig:
    """Minimal resnet space for unit tests (8 px inputs): 2 stages of up to 2 bottlenecks, 2 widths and depths but
    3 expansions, so decisions of different choice counts and conditional ones meet."""
    return ResNetConfig(stage_widths=(16, 32), stage_blocks=(2, 2), stage_strides=(1, 2), depth_cuts=(0, 1),
                        expands=(0.25, 0.5, 0.75), width_mults=(0.5, 1.0), stem_width=8, stem_kernel=3,
                        stem_stride=1, max_pool=False, divisor=2, num_classes=10, image_size=8)
