"""GGUF-quantized transformers (--transformer): loading through diffusers' single-file loader, the adapter layers on
GGUFLinear, the dtypes that follow the compute dtype, a task command and finetune end to end, and the errors.

The GGUF files are written here with the gguf package: 2-D weights whose rows split into 32-value blocks as Q8_0,
every other tensor (norms, biases, convolutions, the narrow input projections) as F32, as GGUF converters keep
small tensors.  Tensors carry diffusers' names, which diffusers' single-file loader takes as they are (its FLUX.1
converter from the original names assumes the full model's 3072 width, so it cannot read a tiny model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from teamwork_cli.adapters.layer import TeamworkGGUFLinear, TeamworkLinear, adapter_class_for
from teamwork_cli.adapters.model import adapter_layers, inject_adapter, team_context
from teamwork_cli.adapters.profiles import layers_to_adapt
from teamwork_cli.cli.app import main
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.denoiser import model_dtype
from teamwork_cli.models.hub import gguf as G
from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.families import FAMILIES

gguf = pytest.importorskip("gguf")

pytestmark = pytest.mark.usefixtures("offline")
Q8_0 = gguf.GGMLQuantizationType.Q8_0
SVBRDF = ["image.in", "halfway.in", "diffuse.out", "specular.out", "roughness.out", "normals.out"]


def write_gguf(state: dict[str, torch.Tensor], path: Path) -> int:
    """`state` as a GGUF file (Q8_0 where a row splits into 32-value blocks, else F32); returns how many are Q8_0."""
    writer = gguf.GGUFWriter(str(path), arch="teamwork-test")
    quantized = 0
    for name, value in state.items():
        a = value.detach().float().numpy()
        if a.ndim == 2 and a.shape[1] % 32 == 0:
            writer.add_tensor(name, gguf.quants.quantize(a, Q8_0), raw_dtype=Q8_0)
            quantized += 1
        else:
            writer.add_tensor(name, np.ascontiguousarray(a))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return quantized


def _wide_transformer(family: str):
    """The tiny pipeline's transformer 32 wide (2 heads of 16), so that its block weights fit Q8_0's blocks."""
    import diffusers as D

    torch.manual_seed(1)
    if family == "flux":
        return D.FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=16,
            guidance_embeds=True,
            axes_dims_rope=(4, 4, 8),
        )
    return D.SD3Transformer2DModel(
        sample_size=16,
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        caption_projection_dim=32,
        pooled_projection_dim=16,
        pos_embed_max_size=32,
    )


@pytest.fixture(scope="module", params=["flux", "sd3"])
def quantized(request, tmp_path_factory):
    """(family, pipeline folder, its transformer as a GGUF file, number of Q8_0 tensors)."""
    from teamwork_cli.models.hub.testing import tiny_pipeline

    root = tmp_path_factory.mktemp(f"gguf_{request.param}")
    pipe = tiny_pipeline(request.param)
    pipe.register_modules(transformer=_wide_transformer(request.param))
    pipe.save_pretrained(root / "base")
    n = write_gguf(pipe.transformer.state_dict(), root / "transformer-Q8_0.gguf")
    return request.param, root / "base", root / "transformer-Q8_0.gguf", n


def _predict(den, n_rows=1):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_rows, 4, 8, 8, generator=g)
    with torch.no_grad():
        return den.predict(x, torch.full((n_rows,), 600.0))


def test_the_transformer_loads_quantized_and_predicts_as_the_pipelines_own(quantized):
    family, base, path, n = quantized
    plain = load_hub_denoiser(str(base), cache_embeds=False)
    den = load_hub_denoiser(str(base), cache_embeds=False, transformer=str(path))
    gguf_layers = [m for m in den.model.modules() if G.is_gguf_linear(m)]
    assert n > 5 and len(gguf_layers) == n  # every Q8_0 weight is a GGUFLinear's
    assert {m.weight.dtype for m in gguf_layers} == {torch.uint8}  # still the GGUF blocks, 34 bytes per 32
    assert model_dtype(den.model) == torch.float32  # the compute dtype, not the blocks' uint8
    assert den.prompt_embeds.dtype == torch.float32
    a, b = _predict(plain), _predict(den)
    rel = ((a - b).abs().max() / a.abs().max()).item()
    assert 0 < rel < 0.03, rel  # Q8_0's rounding (1/254 of each block's range), not another model


def test_the_adapter_wraps_gguflinear_and_its_offset_matches_the_unquantized_model(quantized, randomize_up):
    family, base, path, _ = quantized
    plain = load_hub_denoiser(str(base), cache_embeds=False)
    den = load_hub_denoiser(str(base), cache_embeds=False, transformer=str(path))
    names = layers_to_adapt(den.model)
    assert names == layers_to_adapt(plain.model)  # the profile sees the same layers
    for model in (plain.model, den.model):
        torch.manual_seed(0)  # the same `down` init in both
        inject_adapter(model, names, 2, 4)
        randomize_up(model, 0.2, seed=3)
    layers = adapter_layers(den.model)
    kinds = {type(layer) for layer in layers.values()}
    assert kinds <= {TeamworkGGUFLinear, TeamworkLinear} and TeamworkGGUFLinear in kinds
    for name, layer in layers.items():
        assert (type(layer) is TeamworkGGUFLinear) == G.is_gguf_linear(layer.base_layer), name
        assert layer.adapter.down.dtype == torch.float32  # never the base weight's uint8
        assert torch.equal(layer.adapter.down, adapter_layers(plain.model)[name].adapter.down)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.full((2,), 600.0)
    with torch.no_grad():
        with team_context(plain.model, [[0, 1]]):
            a = plain.predict(x, t)
        with team_context(den.model, [[0, 1]]):
            b = den.predict(x, t)
    rel = ((a - b).abs().max() / a.abs().max()).item()
    assert 0 < rel < 0.03, rel


def _gguf_linear(compute_dtype, in_f=64, out_f=48, seed=0):
    """One GGUFLinear holding a Q8_0 weight, as diffusers builds it."""
    from diffusers.quantizers.gguf.utils import GGUFLinear, GGUFParameter

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_f, in_f, generator=g)
    layer = GGUFLinear(in_f, out_f, bias=True, compute_dtype=compute_dtype)
    layer.weight = GGUFParameter(torch.from_numpy(gguf.quants.quantize(w.numpy(), Q8_0)), quant_type=Q8_0)
    layer.bias = torch.nn.Parameter(torch.randn(out_f, generator=g).to(compute_dtype), requires_grad=False)
    return layer, w


def test_dispatch_picks_the_gguf_layer_and_the_offset_is_added_to_the_dequantized_output():
    base, w = _gguf_linear(torch.float32)
    assert adapter_class_for(base) is TeamworkGGUFLinear and adapter_class_for(torch.nn.Linear(2, 2)) is TeamworkLinear
    layer = TeamworkGGUFLinear(base, 2, 3)
    with torch.no_grad():
        layer.adapter.up.normal_(0, 0.1)
        layer.adapter.bias.normal_(0, 0.1)
    x = torch.randn(4, 5, 64, generator=torch.Generator().manual_seed(1))  # rows: teammate 0 (2 images), then 1
    with team_context(layer.state, [[0, 1], [0, 1]]), torch.no_grad():
        y = layer(x)
    deq = torch.nn.functional.linear(x, _dequant(base), base.bias)
    ad = layer.adapter
    z = x[:2] @ ad.down[0] + x[2:] @ ad.down[1]  # each image's sum over its teammates
    want = deq + torch.cat([z @ ad.up[0], z @ ad.up[1]]) + ad.bias[[0, 0, 1, 1]][:, None, :]
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    # Q8_0 of the weight: each 32-value block in steps of its max / 127, so within half a step of the original
    assert 0 < (_dequant(base) - w).abs().max() <= w.abs().max() / 127 * 0.51


def _dequant(layer):
    from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

    return dequantize_gguf_tensor(layer.weight).float()


def test_with_a_bf16_compute_dtype_the_base_runs_in_bf16_and_the_adapter_follows_model_dtype():
    base, _ = _gguf_linear(torch.bfloat16)
    model = torch.nn.Sequential(base)
    assert model_dtype(model) == torch.bfloat16  # the bias (a float), not the uint8 blocks
    inject_adapter(model, ["0"], 2, 3, dtype=model_dtype(model))
    layer = model[0]
    assert isinstance(layer, TeamworkGGUFLinear) and layer.adapter.up.dtype == torch.bfloat16
    with torch.no_grad():
        layer.adapter.up.normal_(0, 0.1)
    x = torch.randn(2, 64, generator=torch.Generator().manual_seed(2))  # fp32 in: cast to the compute dtype
    with team_context(model, [[0, 1]]), torch.no_grad():  # one image: row 0 is teammate 0, row 1 teammate 1
        y = model(x)
    assert y.dtype == torch.bfloat16
    ad = {k: v.float() for k, v in layer.adapter.named_parameters()}
    z = x[0] @ ad["down"][0] + x[1] @ ad["down"][1]
    base_out = torch.nn.functional.linear(x.bfloat16(), _dequant(base).bfloat16(), base.bias).float()
    want = base_out + torch.stack([z @ ad["up"][0], z @ ad["up"][1]]) + ad["bias"]
    torch.testing.assert_close(y.float(), want, rtol=0.02, atol=0.05)
    G.set_compute_dtype(model, torch.float32)
    assert base.compute_dtype == torch.float32


def test_bad_files_and_bases_are_errors_with_a_hint(quantized, tmp_path, sd2_folder):
    family, base, path, _ = quantized
    with pytest.raises(TeamworkError, match="not found") as err:
        load_hub_denoiser(str(base), cache_embeds=False, transformer=str(tmp_path / "none.gguf"))
    assert err.value.hint
    fake = tmp_path / "adapter.gguf"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(TeamworkError, match="is not a GGUF file") as err:
        G.check_gguf_file(fake)
    assert "--adapter" in err.value.hint
    with pytest.raises(TeamworkError, match="not a regular file"):
        G.check_gguf_file(tmp_path)
    with pytest.raises(TeamworkError, match="denoises with a UNet") as err:
        load_hub_denoiser(str(sd2_folder), cache_embeds=False, transformer=str(path))
    assert "SD2/SDXL" in err.value.hint
    fam = FAMILIES["FluxPipeline"]
    with pytest.raises(TeamworkError, match="has no single-file loader in diffusers"):
        G.transformer_class(fam, {"transformer": ["diffusers", "PixArtTransformer2DModel"]}, "base model x")
    assert G.transformer_class(fam, {"transformer": ["diffusers", "FluxTransformer2DModel"]}, "x").__name__ == (
        "FluxTransformer2DModel"
    )
    from teamwork_cli.models.loading import load_denoiser

    with pytest.raises(TeamworkError, match="the embedded base model has no transformer") as err:
        load_denoiser(None, transformer=str(path))
    assert "--base" in err.value.hint


def test_a_gguf_file_of_another_model_is_refused(quantized, tmp_path):
    family, base, _, _ = quantized
    other = _wide_transformer("sd3" if family == "flux" else "flux")
    wrong = tmp_path / "other.gguf"
    write_gguf(other.state_dict(), wrong)
    with pytest.raises(TeamworkError, match="diffusers could not load it") as err:
        load_hub_denoiser(str(base), cache_embeds=False, transformer=str(wrong))
    assert "same model as --base" in err.value.hint


def test_svbrdf_and_finetune_run_with_transformer(quantized, tmp_path, capsys, write_png):
    """finetune --transformer trains on the quantized base and records the file; svbrdf --transformer writes the
    maps near those of the pipeline's own transformer; bad --transformer values are one Error/Hint, exit 1."""
    family, base, path, _ = quantized
    from PIL import Image

    adapter = tmp_path / "a.safetensors"
    common = ["--steps", "1", "--batch-size", "2", "--resolution", "16", "--rank", "2", "--mixed-precision", "no"]
    args = ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "--base", str(base), "-o", str(adapter)]
    assert main([*args, *common, "--pool", "3", "--transformer", str(path)]) == 0, capsys.readouterr().err
    from safetensors import safe_open

    with safe_open(str(adapter), framework="pt") as f:
        meta = f.metadata()
    assert meta["teamwork.transformer"] == path.name and meta["base_model"] == str(base)
    assert meta["teamwork.profile"] == family.upper()
    photo = write_png(tmp_path / "p.png", np.random.default_rng(0).random((16, 16, 3)))
    run = ["svbrdf", str(photo), "--adapter", str(adapter), "--base", str(base), "--steps", "1", "--fit", "none"]
    capsys.readouterr()
    assert main([*run, "-o", str(tmp_path / "q"), "--transformer", str(path)]) == 0, capsys.readouterr().err
    assert main([*run, "-o", str(tmp_path / "p")]) == 0, capsys.readouterr().err
    for c in ("diffuse", "roughness", "normals"):
        q = np.asarray(Image.open(tmp_path / "q" / f"p_{c}.png"), np.float64) / 65535
        p = np.asarray(Image.open(tmp_path / "p" / f"p_{c}.png"), np.float64) / 65535
        assert q.shape == p.shape and np.abs(q - p).max() < 0.05, c
    capsys.readouterr()
    for bad, says in ((tmp_path / "none.gguf", "not found"), (adapter, "is not a GGUF file")):
        assert main([*run, "-o", str(tmp_path / "x"), "--transformer", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("Error: transformer file") and says in err and "Hint:" in err, err
    embedded = [*args[:5], "-o", str(tmp_path / "e.safetensors"), *common[:2], "--transformer", str(path)]
    assert main(embedded) == 1
    err = capsys.readouterr().err
    assert "the embedded base model has no transformer" in err and "Hint:" in err
