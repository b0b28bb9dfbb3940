"""Teamwork adapter layers against the formula of conventions.md section 5, on tiny layers and models."""

from __future__ import annotations

import pytest
import torch
from diffusers import SD3Transformer2DModel, UNet2DModel
from torch import nn

from teamwork_cli.adapters.layer import TeamworkConv2d, TeamworkLayer, TeamworkLinear
from teamwork_cli.adapters.model import adapter_layers, adapter_state_dict, inject_adapter, remove_adapter, team_context
from teamwork_cli.core.team import TeamBatch

HETERO = [[0, 1, 2], [0, 2], [1]]  # three images with different active sets
DENSE = [[0, 1, 2], [0, 1, 2]]  # every teammate everywhere: TeamworkLinear's batched fast path


def tiny_sd3() -> SD3Transformer2DModel:
    torch.manual_seed(0)
    return SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8,
                                 num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16,
                                 pooled_projection_dim=8, out_channels=4).eval()


def sd3_inputs(rows: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"hidden_states": torch.randn(rows, 4, 8, 8, generator=g),
            "encoder_hidden_states": torch.randn(rows, 5, 16, generator=g),
            "pooled_projections": torch.randn(rows, 8, generator=g), "timestep": torch.full((rows,), 500.0)}


def tiny_unet() -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4, attention_head_dim=4).eval()


def randomise(model: nn.Module, scale: float = 0.1) -> None:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".adapter." in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)


def run(model: nn.Module, batch: TeamBatch, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with team_context(model, batch), torch.no_grad():
        return model(**inputs).sample


def reference(layer: TeamworkLayer, x: torch.Tensor, batch: TeamBatch) -> torch.Tensor:
    """Row-by-row float64 evaluation of W x_t + b + (sum_{s in S} x_s A_s) B_t + bias_t."""
    a, b = layer.adapter.down.double(), layer.adapter.up.double()
    conv = isinstance(layer, TeamworkConv2d)
    xs = x  # the adapter's input grid: the base layer's strided grid for a conv
    if conv:
        sh, sw = layer.stride
        xs = x[:, :, ::sh, ::sw]
        down = lambda xr, s: torch.einsum("chw,cr->rhw", xr.double(), a[s])  # noqa: E731
        up = lambda h, t: torch.einsum("rhw,ro->ohw", h, b[t])  # noqa: E731
    else:
        down = lambda xr, s: xr.double() @ a[s]  # noqa: E731
        up = lambda h, t: h @ b[t]  # noqa: E731
    with torch.no_grad():
        out = layer.base_layer(x).double()
        for r in range(batch.num_rows):
            t, g = int(batch.teammate_ids[r]), int(batch.group_ids[r])
            if layer.communication:
                rows = {s: batch.rows_of(g, s) for s in range(batch.num_teammates)}
                h = sum(down(xs[rs], s) for s, rs in rows.items() if rs is not None)
            else:
                h = down(xs[r], t)
            out[r] += up(h, t)
            if layer.adapter.bias is not None:
                bias = layer.adapter.bias[t].double()
                out[r] += bias[:, None, None] if conv else bias
    return out


def test_team_batch_layout() -> None:
    active = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)
    batch = TeamBatch.from_active(active)
    assert batch.teammate_ids.tolist() == [0, 0, 1, 2]
    assert batch.group_ids.tolist() == [0, 1, 0, 1]
    assert batch.slices == [(0, 0, 2), (1, 2, 3), (2, 3, 4)]
    assert batch.rows_of(1, 1) is None and batch.rows_of(1, 2) == 3 and batch.rows_of(0, 1) == 2
    same = TeamBatch.from_active([[0, 1], [0, 2]], 3)
    assert same.slices == batch.slices and torch.equal(same.group_ids, batch.group_ids)
    x = torch.randn(2, 3, 5)
    rows = batch.to_rows(x)
    assert torch.equal(rows[3], x[1, 2])
    back = batch.from_rows(rows, fill=-1.0)
    assert torch.equal(back[active], x[active]) and (back[~active] == -1).all()
    assert batch.to("cpu").slices == batch.slices
    sparse = TeamBatch.from_active([[1], [2]], 3)  # teammate 0 nowhere: no slice
    assert sparse.slices == [(1, 0, 1), (2, 1, 2)]


@pytest.mark.parametrize("active, match", [([[0], []], "no active teammate"), ([[0, 3]], "teammate index 3"),
                                           ([[1, 1]], "twice"), (torch.ones(2, 2), "bool")])
def test_team_batch_errors(active: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TeamBatch.from_active(active, 3 if isinstance(active, list) else None)  # type: ignore[arg-type]


@pytest.mark.parametrize("communication", [True, False])
@pytest.mark.parametrize("shape", [(6,), (4, 6)])
@pytest.mark.parametrize("active", [HETERO, DENSE])
def test_linear_matches_formula(communication: bool, shape: tuple[int, ...], active: list[list[int]]) -> None:
    torch.manual_seed(0)
    layer = TeamworkLinear(nn.Linear(6, 5), 3, 2, communication=communication)
    randomise(nn.ModuleDict({"l": layer}))
    batch = TeamBatch.from_active(active, 3)
    x = torch.randn(batch.num_rows, *shape)
    layer.state.batch = batch
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out.double(), reference(layer, x, batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("communication", [True, False])
@pytest.mark.parametrize("kernel, stride, padding, bias", [(3, 1, 1, True), (3, 2, 1, True), (1, 1, 0, False)])
def test_conv_matches_formula(communication: bool, kernel: int, stride: int, padding: int, bias: bool) -> None:
    torch.manual_seed(0)
    layer = TeamworkConv2d(nn.Conv2d(4, 6, kernel, stride, padding, bias=bias), 3, 2, communication=communication)
    assert (layer.adapter.bias is not None) == bias  # published format: adapter bias iff base bias
    randomise(nn.ModuleDict({"l": layer}))
    batch = TeamBatch.from_active(HETERO, 3)
    x = torch.randn(batch.num_rows, 4, 7, 7)
    layer.state.batch = batch
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out.double(), reference(layer, x, batch), rtol=1e-5, atol=1e-5)


def test_conv_rejects_grid_changing_layer() -> None:
    with pytest.raises(ValueError, match="padding"):
        TeamworkConv2d(nn.Conv2d(4, 4, 3, padding=0), 2, 2)


@pytest.mark.parametrize("make", [tiny_sd3, tiny_unet])
def test_zero_up_is_exactly_the_base_model(make: object) -> None:
    model = make()  # type: ignore[operator]
    batch = TeamBatch.from_active(HETERO, 3)
    if isinstance(model, UNet2DModel):
        inputs = {"sample": torch.randn(batch.num_rows, 3, 8, 8), "timestep": torch.full((batch.num_rows,), 10.0)}
    else:
        inputs = sd3_inputs(batch.num_rows)
    with torch.no_grad():
        expected = model(**inputs).sample
    inject_adapter(model, None, 3, 4)
    assert torch.equal(run(model, batch, inputs), expected)


@pytest.mark.parametrize("communication", [True, False])
@pytest.mark.parametrize("active", [HETERO, DENSE])
def test_coordination_reaches_other_teammates_only_when_on(communication: bool, active: list[list[int]]) -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4, communication=communication)
    randomise(model)
    batch = TeamBatch.from_active(active, 3)
    inputs = sd3_inputs(batch.num_rows)
    before = run(model, batch, inputs)
    inputs["hidden_states"][batch.rows_of(0, 0)] += 1.0  # change the input teammate of image 0
    after = run(model, batch, inputs)
    out_row = batch.rows_of(0, 2)
    assert torch.equal(before[out_row], after[out_row]) != communication


@pytest.mark.parametrize("active", [HETERO, DENSE])
def test_images_never_mix(active: list[list[int]]) -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    randomise(model)
    batch = TeamBatch.from_active(active, 3)
    inputs = sd3_inputs(batch.num_rows)
    before = run(model, batch, inputs)
    image0 = (batch.group_ids == 0).nonzero().flatten()
    inputs["hidden_states"][image0] += torch.randn(len(image0), 4, 8, 8)
    after = run(model, batch, inputs)
    others = batch.group_ids != 0
    assert torch.equal(before[others], after[others])
    assert not torch.equal(before[~others], after[~others])


def test_inactive_teammate_contributes_nothing() -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    randomise(model)
    batch = TeamBatch.from_active([[0, 2], [0, 2]], 3)  # teammate 1 inactive everywhere
    inputs = sd3_inputs(batch.num_rows)
    before = run(model, batch, inputs)
    with torch.no_grad():
        for layer in adapter_layers(model).values():
            layer.adapter.down[1].normal_()
            layer.adapter.up[1].normal_()
    assert torch.equal(run(model, batch, inputs), before)


@pytest.mark.parametrize("active", [HETERO, DENSE])
def test_gradients_reach_only_the_adapter(active: list[list[int]]) -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    randomise(model)
    batch = TeamBatch.from_active(active, 3)
    with team_context(model, batch):
        model(**sd3_inputs(batch.num_rows)).sample.square().mean().backward()
    for name, p in model.named_parameters():
        if ".adapter." in name:
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name


@pytest.mark.parametrize("active", [HETERO, DENSE])
def test_autocast_bfloat16(active: list[list[int]]) -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    randomise(model)
    batch = TeamBatch.from_active(active, 3)
    inputs = sd3_inputs(batch.num_rows)
    full = run(model, batch, inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = run(model, batch, inputs)
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, rtol=0.1, atol=0.1)
    layer = TeamworkLinear(nn.Linear(6, 5), 2, 2)
    layer.state.batch = TeamBatch.from_active([[0, 1]], 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(2, 6)).dtype == torch.bfloat16


def test_layer_needs_a_matching_team_context() -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    with pytest.raises(RuntimeError, match="team_context"):
        model(**sd3_inputs(2))
    with team_context(model, TeamBatch.from_active([[0, 1]], 3)):
        with pytest.raises(ValueError, match="3 rows but the team batch has 2"):
            model(**sd3_inputs(3))
    with pytest.raises(ValueError, match="teammates"):
        with team_context(model, TeamBatch.from_active([[0, 1]], 2)):
            pass


def test_state_dict_keys_and_removal() -> None:
    model = tiny_sd3()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    to_q = model.transformer_blocks[0].attn.to_q
    inject_adapter(model, ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_out.0"], 3, 4)
    wrapped = model.transformer_blocks[0].attn.to_q
    assert wrapped.weight is to_q.weight and wrapped.base_layer is to_q  # base is wrapped, not copied
    sd = adapter_state_dict(model)
    assert set(sd) == {f"transformer_blocks.0.attn.{p}.adapter.{n}" for p in ("to_q", "to_out.0")
                       for n in ("down", "up", "bias")}
    assert sd["transformer_blocks.0.attn.to_q.adapter.down"].shape == (3, 16, 4)
    assert set(sd) <= set(model.state_dict())
    assert remove_adapter(model) == ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_out.0"]
    assert model.transformer_blocks[0].attn.to_q is to_q
    restored = model.state_dict()
    assert restored.keys() == original.keys() and all(torch.equal(restored[k], original[k]) for k in original)


def test_inject_errors_leave_model_untouched() -> None:
    model = tiny_sd3()
    for names, match in ((["transformer_blocks.0.attn.to_q", "nope.layer"], "not a submodule"),
                         (["transformer_blocks.0.norm2"], "LayerNorm; Teamwork adapts only Linear, Conv2d"),
                         ([], "empty")):
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


def test_initialisation_follows_the_published_format() -> None:
    layer = TeamworkLinear(nn.Linear(256, 128), 4, 16)
    ad = layer.adapter
    assert ad.down.shape == (4, 256, 16) and ad.up.shape == (4, 16, 128) and ad.bias.shape == (4, 128)
    assert abs(ad.down.std().item() - 0.02) < 0.002 and not ad.up.any() and not ad.bias.any()


def test_conv_gradients_reach_only_the_adapter() -> None:
    model = tiny_unet()
    inject_adapter(model, None, 3, 2)
    randomise(model)
    batch = TeamBatch.from_active(HETERO, 3)
    with team_context(model, batch):
        out = model(torch.randn(batch.num_rows, 3, 8, 8), torch.full((batch.num_rows,), 10.0)).sample
        out.square().mean().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None and p.grad.abs().sum() > 0) == (".adapter." in name), name
