"""Search spaces, subnets and weight-sharing supernets, with exact extraction of standalone subnets."""

from ._registry import Registry
from .base import Cost, FamilyConfig, Supernet
from .blocks import (
    BlockSupernet,
    Derived,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepth,
    ElasticLinear,
    LayerChoice,
    ModuleConfig,
    Value,
    Zero,
)
from .check import CheckLine, CheckReport, check
from .cost import cost, count_cost
from .extract import extract, load_subnet, save_subnet
from .few_shot import FewShotSupernet, restrict_space
from .files import atomic_write_bytes
from .macro import MacroConfig, MacroSupernet
from .mbv3 import MBV3Config, MBV3Supernet, StageSpec
from .nb201 import NB201Config, NB201Supernet
from .resnet import ResNetConfig, ResNetSupernet
from .registry import (
    config_from_dict,
    create_supernet,
    get_config,
    get_space,
    list_supernets,
    register_family,
    register_supernet,
    space_from_dict,
    space_to_dict,
)
from .space import Arch, Choice, Decision, SearchSpace
from .vit import ViTConfig, ViTNet, ViTSupernet

__all__ = [
    "BlockSupernet", "Derived", "ElasticBatchNorm2d", "ElasticConv2d", "ElasticDepth", "ElasticLinear", "LayerChoice",
    "ModuleConfig", "Value", "Zero", "CheckLine", "CheckReport", "check",
    "Arch", "Choice", "Cost", "Decision", "FamilyConfig", "FewShotSupernet", "MBV3Config", "MBV3Supernet", "MacroConfig",
    "MacroSupernet", "NB201Config", "NB201Supernet", "Registry", "ResNetConfig", "ResNetSupernet", "SearchSpace", "StageSpec",
    "Supernet",
    "atomic_write_bytes", "config_from_dict", "cost", "count_cost",
    "create_supernet", "extract", "get_config", "get_space", "list_supernets", "load_subnet",
    "register_family", "register_supernet", "restrict_space", "save_subnet", "space_from_dict", "space_to_dict", "ViTConfig", "ViTNet",
    "ViTSupernet",
]
