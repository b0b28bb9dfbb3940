"""Injecting, listing and removing Teamwork adapter layers in a model, and their state dict."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from teamwork_cli.adapters.model import adapter_layers, adapter_state_dict, inject_adapter, remove_adapter


def test_state_dict_keys_and_removal(tiny_sd3) -> None:
    model = tiny_sd3()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    to_q = model.transformer_blocks[0].attn.to_q
    inject_adapter(model, ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_out.0"], 3, 4)
    wrapped = model.transformer_blocks[0].attn.to_q
    assert wrapped.weight is to_q.weight and wrapped.base_layer is to_q  # base is wrapped, not copied
    sd = adapter_state_dict(model)
    assert set(sd) == {
        f"transformer_blocks.0.attn.{p}.adapter.{n}" for p in ("to_q", "to_out.0") for n in ("down", "up", "bias")
    }
    assert sd["transformer_blocks.0.attn.to_q.adapter.down"].shape == (3, 16, 4)
    assert set(sd) <= set(model.state_dict())
    assert remove_adapter(model) == ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_out.0"]
    assert model.transformer_blocks[0].attn.to_q is to_q
    restored = model.state_dict()
    assert restored.keys() == original.keys() and all(torch.equal(restored[k], original[k]) for k in original)


def test_inject_errors_leave_model_untouched(tiny_sd3) -> None:
    model = tiny_sd3()
    for names, match in (
        (["transformer_blocks.0.attn.to_q", "nope.layer"], "not a submodule"),
        (["transformer_blocks.0.norm2"], "LayerNorm; Teamwork adapts only Linear, Conv2d"),
        ([], "empty"),
    ):
        with pytest.raises(ValueError, match=match):
            inject_adapter(model, names, 2, 4)
        assert not adapter_layers(model)
    inject_adapter(model, ["transformer_blocks.0.attn.to_q"], 2, 4)
    with pytest.raises(ValueError, match="already has Teamwork adapters"):
        inject_adapter(model, ["transformer_blocks.0.attn.to_k"], 2, 4)


def test_use_bias_flag() -> None:
    def model() -> nn.Sequential:
        return nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4))

    for use_bias, expected in ((None, [False, True]), (True, [True, True]), (False, [False, False])):
        m = model()
        inject_adapter(m, ["0", "1"], 2, 2, use_bias=use_bias)
        assert [layer.adapter.bias is not None for layer in adapter_layers(m).values()] == expected
