"""Teamwork adapter layers against the formula of docs/conventions.md section 5, on tiny layers and models."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DModel
from torch import nn

from teamwork_cli.adapters.layer import TeamworkConv2d, TeamworkLayer, TeamworkLinear
from teamwork_cli.adapters.model import adapter_layers, inject_adapter, team_context
from teamwork_cli.core.team import TeamBatch

HETERO = [[0, 1, 2], [0, 2], [1]]  # three images with different active sets
DENSE = [[0, 1, 2], [0, 1, 2]]  # every teammate everywhere: TeamworkLinear's batched fast path


@pytest.fixture()
def make(request: pytest.FixtureRequest):
    """A tiny-model builder fixture, by name (for tests parametrized over models)."""
    return request.getfixturevalue(request.param)


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


@pytest.mark.parametrize("communication", [True, False])
@pytest.mark.parametrize("active", [HETERO, DENSE])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_on_channels_last_activations_matches_formula(communication: bool, active, bias: bool) -> None:
    # The embedded model runs NHWC (channels-last) activations: the dense fast path takes them as they are.
    torch.manual_seed(0)
    base = nn.Conv2d(4, 6, 3, 1, 1, bias=bias).to(memory_format=torch.channels_last)
    layer = TeamworkConv2d(base, 3, 2, communication=communication)
    randomise(nn.ModuleDict({"l": layer}))
    batch = TeamBatch.from_active(active, 3)
    x = torch.randn(batch.num_rows, 4, 7, 5).contiguous(memory_format=torch.channels_last)
    layer.state.batch = batch
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out.double(), reference(layer, x, batch), rtol=1e-5, atol=1e-5)
    # Gradients through the in-place offset agree with those of NCHW activations.
    grads = []
    for xx in (x, x.contiguous()):
        layer.zero_grad()
        xx = xx.detach().requires_grad_(True)
        layer(xx).square().sum().backward()
        grads.append([xx.grad, *(p.grad for p in layer.adapter.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_conv_rejects_grid_changing_layer() -> None:
    with pytest.raises(ValueError, match="padding"):
        TeamworkConv2d(nn.Conv2d(4, 4, 3, padding=0), 2, 2)


@pytest.mark.parametrize("make", ["tiny_sd3", "tiny_unet"], indirect=True)
def test_zero_up_is_exactly_the_base_model(make: object, sd3_inputs) -> None:
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
def test_coordination_reaches_other_teammates_only_when_on(
    communication: bool, active: list[list[int]], sd3_inputs, tiny_sd3
) -> None:
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
def test_images_never_mix(active: list[list[int]], sd3_inputs, tiny_sd3) -> None:
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


def test_inactive_teammate_contributes_nothing(sd3_inputs, tiny_sd3) -> None:
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
def test_gradients_reach_only_the_adapter(active: list[list[int]], sd3_inputs, tiny_sd3) -> None:
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
def test_autocast_bfloat16(active: list[list[int]], sd3_inputs, tiny_sd3) -> None:
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


def test_layer_needs_a_matching_team_context(sd3_inputs, tiny_sd3) -> None:
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


def test_initialisation_follows_the_published_format() -> None:
    layer = TeamworkLinear(nn.Linear(256, 128), 4, 16)
    ad = layer.adapter
    assert ad.down.shape == (4, 256, 16) and ad.up.shape == (4, 16, 128) and ad.bias.shape == (4, 128)
    assert abs(ad.down.std().item() - 0.02) < 0.002 and not ad.up.any() and not ad.bias.any()


def test_conv_gradients_reach_only_the_adapter(tiny_unet) -> None:
    model = tiny_unet()
    inject_adapter(model, None, 3, 2)
    randomise(model)
    batch = TeamBatch.from_active(HETERO, 3)
    with team_context(model, batch):
        out = model(torch.randn(batch.num_rows, 3, 8, 8), torch.full((batch.num_rows,), 10.0)).sample
        out.square().mean().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None and p.grad.abs().sum() > 0) == (".adapter." in name), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_adapter_layers_take_low_precision_inputs_with_fp32_params(dtype):
    """A half-precision base (fp16 on a GPU, bf16 on a CPU) with the adapter kept in fp32."""
    torch.manual_seed(0)
    lin = TeamworkLinear(torch.nn.Linear(8, 6).to(dtype), 2, 3)
    conv = TeamworkConv2d(torch.nn.Conv2d(4, 5, 3, padding=1).to(dtype), 2, 3)
    for layer in (lin, conv):
        torch.nn.init.normal_(layer.adapter.up, std=0.1)
        assert layer.adapter.down.dtype == torch.float32
    xl, xc = torch.randn(4, 3, 8), torch.randn(4, 4, 6, 6)
    with team_context(lin.state, [[0, 1], [0, 1]]), team_context(conv.state, [[0, 1], [0, 1]]):
        ref_l, ref_c = _fp32_reference(lin, xl), _fp32_reference(conv, xc)
        out_l, out_c = lin(xl.to(dtype)), conv(xc.to(dtype))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            auto_l = lin(xl.to(dtype))
    tol = 1e-5 if dtype == torch.float32 else 0.05
    for out, ref in ((out_l, ref_l), (out_c, ref_c), (auto_l, ref_l)):
        assert out.dtype == dtype and torch.isfinite(out).all()
        assert (out.float() - ref).abs().max() < tol


def _fp32_reference(layer, x: torch.Tensor) -> torch.Tensor:
    base = layer.base_layer
    dtype = base.weight.dtype
    base.float()
    try:
        return layer(x.float()).float()
    finally:
        base.to(dtype)
