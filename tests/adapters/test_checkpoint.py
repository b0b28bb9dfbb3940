"""Checkpoints in the published Teamwork `.safetensors` format (docs/conventions.md section 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from teamwork_cli.adapters.checkpoint import load_adapter, read_adapter_info, save_adapter
from teamwork_cli.adapters.model import adapter_layers, adapter_state_dict, inject_adapter, team_context
from teamwork_cli.core.team import TeamBatch

TEAM = ["image.in", "diffuse.out", "normals.out"]
META = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-3/teamwork",
    "modelspec.implementation": "https://github.com/samsartor/teamwork",
    "modelspec.title": "hand made",
    "modelspec.type": "teamwork",
    "base_model": "stabilityai/stable-diffusion-3-medium-diffusers",
    "teamwork.version": "1.0",
    "teamwork.teammates": ",".join(TEAM),
    "teamwork.lora_rank": "4",
    "teamwork.profile": "SD3",
    "teamwork.lora_communication": "True",
    "teamwork.use_bias": "True",
    "teamwork.some_future_key": "ignored",
}
Q, FF = "transformer_blocks.0.attn.to_q", "transformer_blocks.0.ff.net.0.proj"  # 16->16 and 16->64


def published_tensors(t: int = 3, rank: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    out: dict[str, torch.Tensor] = {}
    for name, (fan_in, fan_out) in {Q: (16, 16), FF: (16, 64)}.items():
        out[f"{name}.adapter.down"] = torch.randn(t, fan_in, rank, generator=g)
        out[f"{name}.adapter.up"] = torch.randn(t, rank, fan_out, generator=g)
        out[f"{name}.adapter.bias"] = torch.randn(t, fan_out, generator=g)
    out["transformer_blocks.0.norm1.adapter"] = torch.zeros(2)  # not a scalar: not a joint-attention marker
    return out


def write(path: Path, tensors: dict[str, torch.Tensor] | None = None, **meta: str | None) -> Path:
    metadata = {
        k: v for k, v in {**META, **{k.replace("__", "."): v for k, v in meta.items()}}.items() if v is not None
    }
    save_file(tensors if tensors is not None else published_tensors(), str(path), metadata=metadata)
    return path


def test_round_trip_is_bit_exact(tmp_path: Path, tiny_sd3) -> None:
    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    with torch.no_grad():
        for p in adapter_state_dict(model).values():
            p.normal_()
    path = save_adapter(
        model,
        tmp_path / "team.safetensors",
        TEAM,
        base_model="sd3",
        title="t",
        profile="SD3",
        architecture="stable-diffusion-3",
        resolution=512,
        extra={"note": "x"},
    )
    assert [p.name for p in tmp_path.iterdir()] == ["team.safetensors"]  # no temporary left behind
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta == {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-3/teamwork",
        "modelspec.implementation": "teamwork-diffusion",
        "modelspec.title": "t",
        "modelspec.type": "teamwork",
        "modelspec.resolution": "512x512",
        "base_model": "sd3",
        "teamwork.version": "1.0",
        "teamwork.teammates": "image.in,diffuse.out,normals.out",
        "teamwork.lora_rank": "4",
        "teamwork.profile": "SD3",
        "teamwork.lora_communication": "True",
        "teamwork.use_bias": "True",
        "note": "x",
    }
    loaded = tiny_sd3()
    state, info = load_adapter(loaded, path, teammates=TEAM)
    assert info.inputs == ["image.in"] and info.outputs == ["diffuse.out", "normals.out"] and info.num_layers == 7
    saved, back = adapter_state_dict(model), adapter_state_dict(loaded)
    assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)
    batch = TeamBatch.from_active([[0, 1, 2], [0, 2]], 3)
    inputs = {
        "hidden_states": torch.randn(5, 4, 8, 8),
        "encoder_hidden_states": torch.randn(5, 5, 16),
        "pooled_projections": torch.randn(5, 8),
        "timestep": torch.full((5,), 500.0),
    }
    with torch.no_grad(), team_context(model, batch):
        expected = model(**inputs).sample
    with torch.no_grad(), team_context(state, batch):
        assert torch.equal(loaded(**inputs).sample, expected)


def test_published_layout_loads_exactly_its_layers(tmp_path: Path, tiny_sd3) -> None:
    path = write(tmp_path / "pub.safetensors")
    info = read_adapter_info(path)  # header only, no model
    assert (info.teammates, info.rank, info.communication, info.use_bias) == (TEAM, 4, True, True)
    assert sorted(info.layers) == sorted([Q, FF]) and info.ignored_keys == ["transformer_blocks.0.norm1.adapter"]
    assert info.num_params == 3 * (16 * 4 + 4 * 16 + 16) + 3 * (16 * 4 + 4 * 64 + 64)
    model = tiny_sd3()
    _, info = load_adapter(model, path, dtype=torch.bfloat16)
    layers = adapter_layers(model)
    assert sorted(layers) == sorted([Q, FF])
    tensors = published_tensors()
    for key, value in adapter_state_dict(model).items():
        assert value.dtype == torch.bfloat16 and torch.equal(value, tensors[key].bfloat16())
    assert all(p.requires_grad == (".adapter." in n) for n, p in model.named_parameters())


def test_no_bias_and_no_communication(tmp_path: Path, tiny_sd3) -> None:
    tensors = {k: v for k, v in published_tensors().items() if not k.endswith("bias")}
    path = write(tmp_path / "a.safetensors", tensors, teamwork__use_bias="False", teamwork__lora_communication="False")
    model = tiny_sd3()
    load_adapter(model, path)
    assert all(not layer.communication and layer.adapter.bias is None for layer in adapter_layers(model).values())


def _bad_shape() -> dict[str, torch.Tensor]:
    tensors = published_tensors()
    tensors[f"{Q}.adapter.down"] = torch.zeros(3, 17, 4)
    tensors[f"{Q}.adapter.up"] = torch.zeros(3, 4, 17)
    tensors[f"{Q}.adapter.bias"] = torch.zeros(3, 17)
    return tensors


def _missing_layer() -> dict[str, torch.Tensor]:
    tensors = published_tensors()
    for p in ("down", "up", "bias"):
        tensors[f"transformer_blocks.7.attn.to_q.adapter.{p}"] = tensors[f"{Q}.adapter.{p}"].clone()
    return tensors


@pytest.mark.parametrize(
    "tensors, meta, match",
    [
        (None, {"modelspec__type": "lora"}, "modelspec.type is 'lora', expected 'teamwork'"),
        (None, {"modelspec__type": None}, "modelspec.type is None"),
        (None, {"teamwork__teammates": None}, "teamwork.teammates is missing"),
        (None, {"teamwork__teammates": "image,diffuse.out,normals.out"}, "'<channel>.in|out'"),
        (None, {"teamwork__lora_rank": "four"}, "lora_rank='four' must be a positive integer"),
        (None, {"teamwork__lora_rank": "8"}, r"rank 8 they must be \[3, in, 8\]"),
        (None, {"teamwork__teammates": "image.in,diffuse.out"}, "with 2 teammates"),
        (None, {"teamwork__lora_communication": "maybe"}, "is not a boolean"),
        (_bad_shape, {}, r"has shape \[3, 17, 4\] but layer transformer_blocks.0.attn.to_q .* needs \[3, 16, 4\]"),
        (_missing_layer, {}, "layer transformer_blocks.7.attn.to_q is not a module of SD3Transformer2DModel"),
        (lambda: {f"{Q}.adapter.down": torch.zeros(3, 16, 4)}, {}, "needs both adapter.down and adapter.up"),
    ],
)
def test_load_errors_name_file_and_mismatch(
    tmp_path: Path, tensors: object, meta: dict[str, str | None], match: str, tiny_sd3
) -> None:
    path = write(tmp_path / "bad.safetensors", tensors() if callable(tensors) else None, **meta)
    model = tiny_sd3()
    with pytest.raises(ValueError, match=match) as err:
        load_adapter(model, path)
    assert str(path) in str(err.value)
    assert not adapter_layers(model)  # nothing changed on failure


def test_missing_layers_can_be_skipped(tmp_path: Path, tiny_sd3) -> None:
    model = tiny_sd3()
    load_adapter(model, write(tmp_path / "x.safetensors", _missing_layer()), strict_layers=False)
    assert sorted(adapter_layers(model)) == sorted([Q, FF])


def test_requested_teammates_must_match(tmp_path: Path, tiny_sd3) -> None:
    path = write(tmp_path / "x.safetensors")
    with pytest.raises(ValueError) as err:
        load_adapter(tiny_sd3(), path, teammates=["image.in", "normals.out", "diffuse.out"])
    assert "['image.in', 'normals.out', 'diffuse.out']" in str(err.value) and str(TEAM) in str(err.value)
    model = tiny_sd3()
    load_adapter(model, path)
    with pytest.raises(ValueError, match="already has Teamwork adapters"):
        load_adapter(model, path)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(64), b"", b"not a checkpoint at all"])
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable .safetensors file") as err:
        read_adapter_info(path)
    assert str(path) in str(err.value)


def test_truncated_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cut\.safetensors is not a readable"):
        read_adapter_info(path)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_adapter_info(tmp_path / "missing.safetensors")


def test_save_errors(tmp_path: Path, tiny_sd3) -> None:
    model = tiny_sd3()
    kw = {"base_model": "b", "title": "t", "profile": "SD3", "architecture": "sd3"}
    with pytest.raises(ValueError, match="no Teamwork adapter layers"):
        save_adapter(model, tmp_path / "a.safetensors", TEAM, **kw)
    inject_adapter(model, [Q], 3, 4)
    with pytest.raises(ValueError, match="2 teammate names given but the adapters have \\[3\\]"):
        save_adapter(model, tmp_path / "a.safetensors", TEAM[:2], **kw)
    with pytest.raises(ValueError, match="channel in"):
        save_adapter(model, tmp_path / "a.safetensors", ["Image.in", "a.out", "b.out"], **kw)
    with pytest.raises(ValueError, match="reserved"):
        save_adapter(model, tmp_path / "a.safetensors", TEAM, extra={"teamwork.lora_rank": "9"}, **kw)
    assert not list(tmp_path.iterdir())


def test_loading_leaves_the_global_rng_alone(tmp_path: Path, tiny_sd3) -> None:
    path = write(tmp_path / "x.safetensors")
    model = tiny_sd3()
    before = torch.get_rng_state()
    load_adapter(model, path)
    assert torch.equal(torch.get_rng_state(), before)


def test_half_precision_copy_keeps_metadata_and_loads(tmp_path: Path, tiny_sd3) -> None:
    from teamwork_cli.adapters.checkpoint import convert_adapter

    src = write(tmp_path / "a.safetensors")
    dst = convert_adapter(src, tmp_path / "a16.safetensors", torch.float16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "a16.safetensors"]
    with safe_open(str(src), framework="pt") as f, safe_open(str(dst), framework="pt") as h:
        assert h.metadata() == f.metadata() and set(h.keys()) == set(f.keys())
        assert all(h.get_tensor(k).dtype == torch.float16 for k in h.keys())
    model = tiny_sd3()
    load_adapter(model, dst)
    p = adapter_state_dict(model)[f"{Q}.adapter.down"]
    assert p.dtype == torch.float32  # loaded into the model's dtype
    assert torch.allclose(p, published_tensors()[f"{Q}.adapter.down"], rtol=1e-3, atol=1e-3)


def _joint_model_outputs(model):
    """tiny_sd3's output for two images of three teammates each."""
    g = torch.Generator().manual_seed(1)
    inputs = {
        "hidden_states": torch.randn(6, 4, 8, 8, generator=g),
        "encoder_hidden_states": torch.randn(6, 5, 16, generator=g),
        "pooled_projections": torch.randn(6, 8, generator=g),
        "timestep": torch.full((6,), 500.0),
    }
    with torch.no_grad(), team_context(model, TeamBatch.from_active(torch.ones(2, 3, dtype=torch.bool))):
        return model(**inputs).sample


def test_joint_attention_markers_enable_joint_attention(tmp_path: Path, tiny_sd3) -> None:
    from teamwork_cli.models.joint_attention import enable_joint_attention, joint_attention_layers

    tensors = {**published_tensors(), "transformer_blocks.0.attn.adapter": torch.zeros(())}
    path = write(tmp_path / "joint.safetensors", tensors, teamwork__attn_allow="100;011;011")
    info = read_adapter_info(path)
    assert (
        info.joint_attention == ["transformer_blocks.0.attn"]
        and info.joint
        and info.ignored_keys[:1] != ["transformer_blocks.0.attn.adapter"]
    )
    assert info.attn_allow == "100;011;011" and info.joint_image_ids() == [0, 1, 2]  # SD3_PLUSATTN's default
    model = tiny_sd3()
    load_adapter(model, path)
    assert joint_attention_layers(model) == ["transformer_blocks.0.attn"]
    processor = model.transformer_blocks[0].attn.processor
    assert processor.allow.tolist() == [[True, False, False], [False, True, True], [False, True, True]]
    by_hand = tiny_sd3()
    load_adapter(by_hand, write(tmp_path / "plain.safetensors"))
    plain = _joint_model_outputs(by_hand)
    enable_joint_attention(by_hand, attn_allow=processor.allow)
    torch.testing.assert_close(_joint_model_outputs(model), _joint_model_outputs(by_hand), rtol=0, atol=0)
    assert (_joint_model_outputs(model) - plain).abs().max() > 1e-6  # not silently plain


def test_a_plusattn_profile_without_markers_couples_the_default_modules(tmp_path: Path, tiny_sd3) -> None:
    from teamwork_cli.models.joint_attention import joint_attention_layers

    path = write(tmp_path / "p.safetensors", teamwork__profile="SD3_PLUSATTN")
    model = tiny_sd3()
    load_adapter(model, path)
    assert joint_attention_layers(model) == ["transformer_blocks.0.attn"]


def test_markers_the_model_cannot_couple_are_refused_before_it_changes(tmp_path: Path, tiny_sd3) -> None:
    tensors = {**published_tensors(), "transformer_blocks.0.adapter": torch.zeros(())}
    path = write(tmp_path / "bad.safetensors", tensors)
    model = tiny_sd3()
    with pytest.raises(
        ValueError,
        match=r"its 1 joint-attention markers ask for joint attention: joint attention at "
        r"transformer_blocks\.0 \(JointTransformerBlock\) is not supported",
    ):
        load_adapter(model, path)
    assert adapter_layers(model) == {}


def test_save_writes_markers_and_the_plusattn_profile(tmp_path: Path, tiny_sd3) -> None:
    from teamwork_cli.models.joint_attention import enable_joint_attention, joint_attention_layers

    model = tiny_sd3()
    inject_adapter(model, None, 3, 4)
    with torch.no_grad():
        for p in adapter_state_dict(model).values():
            p.normal_()
    enable_joint_attention(model, attn_allow=[[1, 0, 0], [0, 1, 1], [0, 1, 1]])
    path = save_adapter(
        model,
        tmp_path / "j.safetensors",
        TEAM,
        base_model="sd3",
        title="t",
        profile="SD3",
        architecture="sd3",
        attn_allow="100;011;011",
        teammate_image_ids=[0, 1, 2],
    )
    with safe_open(str(path), framework="pt") as f:
        meta, marker = f.metadata(), f.get_tensor("transformer_blocks.0.attn.adapter")
    assert marker.shape == () and marker.item() == 0.0  # the reference's nn.Parameter(tensor(0.0))
    assert meta["teamwork.profile"] == "SD3_PLUSATTN" and meta["teamwork.attn_allow"] == "100;011;011"
    assert meta["teamwork.teammate_image_ids"] == "0,1,2"
    loaded = tiny_sd3()
    load_adapter(loaded, path)
    assert joint_attention_layers(loaded) == ["transformer_blocks.0.attn"]
    torch.testing.assert_close(_joint_model_outputs(loaded), _joint_model_outputs(model), rtol=0, atol=0)
