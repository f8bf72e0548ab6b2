"""The vit family: arch strings, weight entanglement, timm layers, and costs checked against timm's own ViT."""

import json

import pytest
import torch

from supernets import Arch, ViTConfig, cost, count_cost, create_supernet, extract, get_space


def test_arch_string_is_short_and_omits_blocks_removed_by_depth():
    space = get_space("vit_test")
    a = space.make({"e": 12, "d": 1, "b0.h": 2, "b0.m": 2.0, "b1.h": 1, "b1.m": 1.0})
    assert str(a) == "e12:h2m2" and "b1.h" not in a
    b = Arch.from_str(get_space("vit"), "e192:h3m3.5-h4m4-h3m4-h3m4-h3m4-h3m4-h3m4-h3m4-h3m4-h3m4-h3m4-h4m3.5")
    assert b["d"] == 12 and b["b0.m"] == 3.5 and b["b1.h"] == 4 and isinstance(b["b1.m"], float)


def test_deit_tiny_shape_costs_what_timm_counts_for_its_vit_tiny():
    """An independent witness: timm's vit_tiny_patch16_224 is e192 with 12 blocks of 3 heads, MLP ratio 4."""
    import timm

    arch = Arch.from_str(get_space("vit"), "e192:" + "-".join(["h3m4"] * 12))
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=1000)
    assert cost(arch) == count_cost(reference, (3, 224, 224))
    assert cost(arch).params == sum(p.numel() for p in reference.parameters())


def test_attention_products_are_counted():
    """q@k^T and attn@v: 2 * tokens^2 * heads * head_dim MACs per block, on top of the linear layers."""
    space = get_space("vit_test")
    one, two = (space.make({"e": 8, "d": 1, "b0.h": h, "b0.m": 1.0}) for h in (1, 2))
    c = ViTConfig.from_dict(json.loads(space.config))
    t, e, hd = c.num_patches + 1, 8, c.head_dim
    linear_extra = t * (3 * hd * e + 3 * hd) + t * hd * e  # one more head in qkv (with bias) and proj
    assert cost(two).macs - cost(one).macs == linear_extra + 2 * t * t * hd


def test_subnet_is_made_of_timm_layers():
    from timm.layers import PatchEmbed
    from timm.models.vision_transformer import Attention, Block

    net = create_supernet("vit_test")
    sub = extract(net, net.space.largest())
    kinds = {type(m) for m in sub.modules()}
    assert {PatchEmbed, Block, Attention, torch.nn.LayerNorm} <= kinds
    attn = sub.blocks[0].attn
    assert attn.head_dim == net.config.head_dim and attn.num_heads == 2  # heads keep their width, not embed/heads


def test_smaller_choices_train_the_leading_slices_only():
    torch.manual_seed(0)
    net = create_supernet("vit_test").train()
    arch = net.space.smallest()  # embed 8 of 12, depth 1, 1 head of 2, ratio 1
    net(torch.randn(2, 3, 8, 8), arch).sum().backward()
    qkv = net.blocks[0].attn.qkv.weight.grad.unflatten(0, (3, -1))  # (3, 2 heads * 4, 12)
    hd = net.config.head_dim
    assert qkv[:, :hd, :8].abs().sum() > 0
    assert qkv[:, hd:].abs().sum() == 0 and qkv[:, :, 8:].abs().sum() == 0  # other head, other features
    assert net.blocks[0].mlp.fc1.weight.grad[8:].abs().sum() == 0  # hidden 8 of 24
    assert net.blocks[1].attn.qkv.weight.grad is None  # block removed by depth gets nothing


def test_config_validation():
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        get_space("vit_test", image_size=10)
    with pytest.raises(ValueError, match="same network"):
        get_space("vit_test", embed_dims=(2, 3), mlp_ratios=(1.0, 1.2))
    with pytest.raises(ValueError, match="strictly increasing"):
        get_space("vit_test", num_heads=(2, 1))
