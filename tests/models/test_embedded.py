"""The embedded model and the adapters shipped with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from teamwork_cli.adapters.checkpoint import read_adapter_info
from teamwork_cli.core.layout import load_preset
from teamwork_cli.models.embedded import (
    BASE_DIR,
    DEFAULT_CONFIG,
    EMBEDDED_DIR,
    EmbeddedDenoiser,
    has_embedded_base,
    pixel_multiple,
)

PRESETS = ("svbrdf", "intrinsics", "inpaint", "inpaint-material", "shade", "synthesize")


@pytest.mark.parametrize("preset", PRESETS)
def test_shipped_adapters_match_their_presets(preset):
    twins = Path(__file__).resolve().parents[2] / "benchmarks" / "weights"  # the ablation twins ship apart
    for name, folder in ((preset, EMBEDDED_DIR), (f"{preset}-nocoord", twins)):
        info = read_adapter_info(folder / f"{name}.safetensors")
        assert info.teammates == load_preset(preset).names and info.base_model == "embedded"
        assert info.communication == (name == preset)


def test_the_shipped_base():
    assert has_embedded_base()
    meta = json.loads((BASE_DIR / "teamwork.json").read_text())
    assert meta["type"] == "teamwork-embedded" and meta["prediction_type"] == "flow"
    den = EmbeddedDenoiser.from_pretrained()
    assert den.model.config.block_out_channels == tuple(DEFAULT_CONFIG["block_out_channels"])
    assert den.pixel_multiple == pixel_multiple() == 2 * 2 ** (len(DEFAULT_CONFIG["block_out_channels"]) - 1)


def test_save_and_load_round_trip(tmp_path, tiny_unet_config):
    torch.manual_seed(0)
    den = EmbeddedDenoiser.from_config(tiny_unet_config(sample_size=8), patch=4)
    den.save_pretrained(tmp_path / "m", meta={"steps": 3}, dtype=torch.float32)
    meta = json.loads((tmp_path / "m" / "teamwork.json").read_text())
    assert meta == {"type": "teamwork-embedded", "patch": 4, "prediction_type": "flow", "steps": 3}
    back = EmbeddedDenoiser.from_pretrained(tmp_path / "m")
    assert back.codec.patch == 4 and back.pixel_multiple == pixel_multiple(tmp_path / "m") == 8
    saved, loaded = den.model.state_dict(), back.model.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert next(den.model.parameters()).dtype == torch.float32  # saving in fp16 leaves the model as it was
    den.save_pretrained(tmp_path / "h")
    half = EmbeddedDenoiser.from_pretrained(tmp_path / "h")
    torch.testing.assert_close(half.model.conv_in.weight, den.model.conv_in.weight, atol=1e-3, rtol=1e-3)


def test_the_codec_is_lossless_patches_and_predict_keeps_the_shape(tiny_unet_config):
    den = EmbeddedDenoiser.from_config(tiny_unet_config(sample_size=8))
    x = torch.rand(2, 3, 8, 12)
    z = den.encode(x)
    assert z.shape == (2, 12, 4, 6) and torch.equal(den.decode(z), x)
    with torch.no_grad():
        assert den(z, torch.full((2,), 500.0)).shape == z.shape


def test_a_folder_without_teamwork_json_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not an embedded teamwork model") as err:
        EmbeddedDenoiser.from_pretrained(tmp_path)
    assert "python -m teamwork_cli.training.pretrain" in str(err.value)
