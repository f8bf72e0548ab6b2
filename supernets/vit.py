"""Vision-transformer space in the AutoFormer manner (Chen et al. 2021): one weight-entangled supernet of ViTs.

Decisions: the embedding dimension (one for the whole network), the depth, and per block the number of heads and
the MLP ratio. Heads are `head_dim` wide (AutoFormer's 64 for ImageNet), so q, k and v have `heads * head_dim`
features. Weight entanglement: every smaller choice uses the leading slice of the largest weights (the first
`embed` features, the first heads, the first MLP hidden units), so every subnet inherits all of its weights and a
shallower network uses the first blocks. Choices are declared cheapest first.

Arch string: `e<embed>:` then the blocks joined by `-`, each `h<heads>m<mlp ratio>`; depth is the number of blocks
written, so blocks removed by depth never appear. Example (depth 3): `e192:h3m3.5-h4m4-h3m4`.

The extracted subnet is made of timm layers (`PatchEmbed`, `Block` with its `Attention` and `Mlp`,
`nn.LayerNorm`), a class token and learned absolute position embeddings, classified from the class token.

The `vit` variant is AutoFormer-T's search space (embed 192/216/240, depth 12/13/14, heads 3/4, MLP ratio 3.5/4,
head dim 64, 16 px patches at 224 px, as in AutoFormer's supernet-T config): 3 * (4^12 + 4^13 + 4^14) =
1,056,964,608 subnets, from 5.27M parameters and 1.17G MACs (the smallest) to 10.41M and 2.27G (the largest),
with 1000 classes, counted as `cost` counts (conv and linear layers with bias adds, attention's q@k^T and attn@v).
AutoFormer-T, the subnet the paper found in this space, is published at 5.7M parameters (5.8M for the released
checkpoint) and 1.3G FLOPs (multiply-adds) with 74.7% ImageNet top-1: near the bottom of the range, as DeiT-Ti's
shape (e192, 12 blocks of h3m4) is, whose count here, 5,717,416 parameters, equals timm's `vit_tiny_patch16_224`
(tests/test_vit.py). AutoFormer's model adds relative position encodings, which this space leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

# timm is imported inside the functions that build its layers, never at module level: `import timm` loads
# torchvision's model zoo (seconds), which every `import supernets` would otherwise pay.

from .base import Cost, FamilyConfig, Supernet
from .space import Arch, Decision, SearchSpace

__all__ = ["ViTConfig", "ViTSupernet", "ViTNet"]

_LN_EPS = 1e-6  # timm's ViT LayerNorm epsilon
_LayerNorm = partial(nn.LayerNorm, eps=_LN_EPS)


@dataclass(frozen=True)
class ViTConfig(FamilyConfig):
    """Choice lists and fixed sizes of a vit space; `image_size` (pixels) is where costs are counted."""

    family = "vit"

    embed_dims: tuple[int, ...] = (192, 216, 240)
    depths: tuple[int, ...] = (12, 13, 14)
    num_heads: tuple[int, ...] = (3, 4)
    mlp_ratios: tuple[float, ...] = (3.5, 4.0)
    head_dim: int = 64  # features per attention head (AutoFormer fixes it; the q/k/v width is heads * head_dim)
    patch_size: int = 16  # pixels per side of a patch token
    qkv_bias: bool = True
    num_classes: int = 1000
    in_chans: int = 3
    image_size: int = 224

    def __post_init__(self) -> None:
        for field_name in ("embed_dims", "depths", "num_heads", "mlp_ratios"):
            values = getattr(self, field_name)
            if not values or list(values) != sorted(set(values)) or min(values) <= 0:
                raise ValueError(f"vit {field_name} must be non-empty, positive, strictly increasing; "
                                 f"got {list(values)}")
        if any(float(f"{r:g}") != r for r in self.mlp_ratios):  # the arch string writes ratios with %g
            raise ValueError(f"vit mlp_ratios must have at most 6 significant digits; got {list(self.mlp_ratios)}")
        if self.image_size % self.patch_size:
            raise ValueError(f"vit image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        for e in self.embed_dims:
            hidden = [self.hidden(e, r) for r in self.mlp_ratios]
            if len(set(hidden)) != len(hidden) or min(hidden) < 1:
                raise ValueError(f"MLP ratios {list(self.mlp_ratios)} give hidden widths {hidden} at embed {e}; "
                                 "two choices would build the same network")

    # ----------------------------------------------------------------- sizes
    def hidden(self, embed: int, ratio: float) -> int:
        """MLP hidden units for `embed` features at `ratio` (as timm's Block rounds it)."""
        return int(embed * ratio)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def layout(self, arch: Arch) -> tuple[int, list[tuple[int, float]]]:
        """(embedding dimension, [(heads, mlp ratio) per active block])."""
        return int(arch["e"]), [(int(arch[f"b{j}.h"]), arch[f"b{j}.m"]) for j in range(int(arch["d"]))]

    # ----------------------------------------------------------------- space
    def search_space(self, name: str = "vit") -> SearchSpace:
        decisions = [Decision("e", self.embed_dims), Decision("d", self.depths)]
        for j in range(max(self.depths)):
            when = None if j < min(self.depths) else ("d", tuple(d for d in self.depths if d > j))
            decisions.append(Decision(f"b{j}.h", self.num_heads, when))
            decisions.append(Decision(f"b{j}.m", self.mlp_ratios, when))
        return SearchSpace(name, tuple(decisions), self.family, self.canonical_json(), _ViTCodec())

    def build_supernet(self, name: str = "vit") -> ViTSupernet:
        return ViTSupernet(self, name)

    def build_subnet(self, arch: Arch) -> ViTNet:
        return ViTNet(self, *self.layout(arch))

    def cost(self, arch: Arch) -> Cost:
        """MACs per image: patch conv, every linear layer (bias adds included), q@k^T and attn@v; params."""
        e, blocks = self.layout(arch)
        n, p, c = self.num_patches, self.patch_size, self.in_chans
        t = n + 1  # tokens: patches plus the class token
        bias = int(self.qkv_bias)
        macs = n * e * c * p * p + n * e
        params = e * c * p * p + e + e + t * e  # patch conv, class token, position embeddings
        for heads, ratio in blocks:
            a, hid = heads * self.head_dim, self.hidden(e, ratio)
            macs += t * (3 * a * e + bias * 3 * a)  # qkv
            macs += 2 * t * t * a  # q @ k^T and attn @ v over all heads
            macs += t * (a * e + e) + t * (e * hid + hid) + t * (hid * e + e)  # proj, fc1, fc2
            params += 3 * a * e + bias * 3 * a + a * e + e + e * hid + hid + hid * e + e + 4 * e  # with 2 norms
        macs += e * self.num_classes + self.num_classes  # classifier on the class token
        params += 2 * e + e * self.num_classes + self.num_classes
        return Cost(macs=macs, params=params)


class _ViTCodec:
    """`e192:h3m3.5-h4m4` string form; see the module docstring."""

    _block = re.compile(r"^h(\d+)m(\d+(?:\.\d+)?)$")

    def format(self, space: SearchSpace, values: Mapping[str, Any]) -> str:
        blocks = "-".join(f"h{values[f'b{j}.h']}m{values[f'b{j}.m']:g}" for j in range(int(values["d"])))
        return f"e{values['e']}:{blocks}"

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]:
        embed, sep, blocks = text.strip().partition(":")
        if not sep or not re.fullmatch(r"e\d+", embed):
            raise ValueError(f"arch string {text!r} is not a vit arch: expected e<embed>:h<heads>m<ratio>-..., "
                             f"e.g. {str(space.smallest())!r}; is it from another space?")
        tokens = blocks.split("-") if blocks else []
        depth = space["d"]
        if len(tokens) not in depth.choices:
            raise ValueError(f"{text!r} has {len(tokens)} block(s); allowed for 'd': {list(depth.choices)}")
        values: dict[str, Any] = {"e": int(embed[1:]), "d": len(tokens)}
        for j, tok in enumerate(tokens):
            m = self._block.match(tok)
            if not m:
                raise ValueError(f"cannot read block {j} {tok!r} of {text!r}: expected h<heads>m<mlp ratio>")
            values[f"b{j}.h"], values[f"b{j}.m"] = int(m.group(1)), float(m.group(2))
        return values


def _init_weights(module: nn.Module) -> None:
    """timm's ViT initialization: truncated normal (std 0.02) linear weights, zero biases."""
    from timm.layers import trunc_normal_

    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _add_embeddings(net: nn.Module, c: ViTConfig, embed: int) -> None:
    """Patch embedding, class token and position embeddings at width `embed`; the same names everywhere."""
    from timm.layers import PatchEmbed, trunc_normal_

    net.patch_embed = PatchEmbed(c.image_size, c.patch_size, c.in_chans, embed)
    net.cls_token = nn.Parameter(torch.zeros(1, 1, embed))
    net.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, c.num_patches + 1, embed), std=0.02))
    trunc_normal_(net.cls_token, std=1e-6)


def _tokens(net: nn.Module, x: torch.Tensor, embed: int) -> torch.Tensor:
    """Images (B, C, H, W) to tokens (B, 1 + N, embed) using the first `embed` features of the embeddings."""
    w, b = net.patch_embed.proj.weight[:embed], net.patch_embed.proj.bias[:embed]
    x = F.conv2d(x, w, b, stride=net.patch_embed.patch_size).flatten(2).transpose(1, 2)  # (B, N, embed)
    cls = net.cls_token[..., :embed].expand(x.shape[0], -1, -1)  # (B, 1, embed)
    return torch.cat([cls, x], dim=1) + net.pos_embed[..., :embed]


def _qkv_slice(t: torch.Tensor, width: int, embed: int | None) -> torch.Tensor:
    """The fused q/k/v rows of the first `width` q, k and v features (and first `embed` input columns).

    The fused projection stacks q, k and v along dim 0 ((3 * A, E) for the largest A heads' features): a subnet
    takes the leading `width` rows of each of the three, not the leading 3 * width rows of the stack.
    """
    parts = t.unflatten(0, (3, -1))  # (3, A, E) or (3, A)
    parts = parts[:, :width, :embed] if embed is not None else parts[:, :width]
    return parts.flatten(0, 1)


class _DynamicBlock(nn.Module):
    """A pre-norm transformer block at its largest size; `forward` takes the heads and MLP ratio as arguments.

    Its tensors have the names of timm's `Block` (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2), so
    extraction is slicing.
    """

    def __init__(self, c: ViTConfig) -> None:
        super().__init__()
        self.cfg = c
        e, a = max(c.embed_dims), max(c.num_heads) * c.head_dim
        self.norm1 = _LayerNorm(e)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(e, 3 * a, bias=c.qkv_bias)
        self.attn.proj = nn.Linear(a, e)
        self.norm2 = _LayerNorm(e)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(e, max(c.hidden(x, r) for x in c.embed_dims for r in c.mlp_ratios))
        self.mlp.fc2 = nn.Linear(self.mlp.fc1.out_features, e)

    def forward(self, x: torch.Tensor, heads: int, ratio: float) -> torch.Tensor:
        b, t, e = x.shape  # (B, T, embed)
        hd = self.cfg.head_dim
        a, hid = heads * hd, self.cfg.hidden(e, ratio)
        y = F.layer_norm(x, (e,), self.norm1.weight[:e], self.norm1.bias[:e], _LN_EPS)
        qkv_b = _qkv_slice(self.attn.qkv.bias, a, None) if self.attn.qkv.bias is not None else None
        qkv = F.linear(y, _qkv_slice(self.attn.qkv.weight, a, e), qkv_b)  # (B, T, 3 * heads * hd)
        q, k, v = qkv.reshape(b, t, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, T, hd)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, hd); scale hd^-0.5, as timm's Attention
        y = F.linear(y.transpose(1, 2).reshape(b, t, a), self.attn.proj.weight[:e, :a], self.attn.proj.bias[:e])
        x = x + y
        y = F.layer_norm(x, (e,), self.norm2.weight[:e], self.norm2.bias[:e], _LN_EPS)
        y = F.gelu(F.linear(y, self.mlp.fc1.weight[:hid, :e], self.mlp.fc1.bias[:hid]))  # (B, T, hid)
        return x + F.linear(y, self.mlp.fc2.weight[:e, :hid], self.mlp.fc2.bias[:e])


class ViTSupernet(Supernet):
    """Every subnet of a vit space in one network; tensor names match `ViTNet`, so extraction is slicing."""

    def __init__(self, config: ViTConfig, name: str = "vit") -> None:
        super().__init__(config, name)
        e = max(config.embed_dims)
        _add_embeddings(self, config, e)
        self.blocks = nn.ModuleList(_DynamicBlock(config) for _ in range(max(config.depths)))
        self.norm = _LayerNorm(e)
        self.head = nn.Linear(e, config.num_classes)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        self.check_arch(arch)
        e, layout = self.config.layout(arch)
        x = _tokens(self, x, e)  # (B, T, e)
        for block, (heads, ratio) in zip(self.blocks, layout):
            x = block(x, heads, ratio)
        x = F.layer_norm(x, (e,), self.norm.weight[:e], self.norm.bias[:e], _LN_EPS)
        return F.linear(x[:, 0], self.head.weight[:, :e], self.head.bias)  # (B, num_classes)

    def cut(self, name: str, big: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        if name.endswith("attn.qkv.weight") or name.endswith("attn.qkv.bias"):
            return _qkv_slice(big, shape[0] // 3, shape[1] if len(shape) == 2 else None)
        return super().cut(name, big, shape)


def _block(c: ViTConfig, embed: int, heads: int, ratio: float) -> nn.Module:
    """timm's Block with attention heads `head_dim` wide (timm's Block would make them embed / heads wide)."""
    # Block has no head-width argument (and before timm 1.0.22 no attention-layer argument either): build it with
    # one head, then give it timm's Attention with the head width set.
    from timm.layers import Attention
    from timm.models.vision_transformer import Block

    block = Block(embed, 1, ratio, qkv_bias=c.qkv_bias, norm_layer=_LayerNorm)
    block.attn = Attention(embed, heads, attn_head_dim=c.head_dim, qkv_bias=c.qkv_bias)
    return block


class ViTNet(nn.Module):
    """A plain ViT with one subnet's embedding dimension, depth, heads and MLP ratios, made of timm layers."""

    def __init__(self, config: ViTConfig, embed: int, blocks: list[tuple[int, float]]) -> None:
        super().__init__()
        self.embed_dim = embed
        _add_embeddings(self, config, embed)
        self.blocks = nn.Sequential(*(_block(config, embed, h, r) for h, r in blocks))
        self.norm = _LayerNorm(embed)
        self.head = nn.Linear(embed, config.num_classes)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, N, E)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed  # (B, 1 + N, E)
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])  # (B, num_classes)
