"""Elastic building blocks: write a supernet as a plain torch module, get its space, extraction and cost for free.

One concept per file: `values` (Value, Derived), `context` (the active subnet during a forward), `layers`
(ElasticConv2d, ElasticBatchNorm2d, ElasticLinear), `choice` (LayerChoice, Zero), `depth` (ElasticDepth),
`supernet` (BlockSupernet, ModuleConfig).
"""

from .choice import LayerChoice, Zero
from .context import active_values
from .depth import ElasticDepth
from .layers import ElasticBatchNorm2d, ElasticBlock, ElasticConv2d, ElasticLinear
from .supernet import BlockSupernet, ModuleConfig, meta_supernet, standalone_subnet
from .values import Derived, Value

__all__ = [
    "BlockSupernet", "Derived", "ElasticBatchNorm2d", "ElasticBlock", "ElasticConv2d", "ElasticDepth", "ElasticLinear",
    "LayerChoice", "ModuleConfig", "Value", "Zero", "active_values", "meta_supernet", "standalone_subnet",
]
