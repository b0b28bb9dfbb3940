"""Parity with the reference implementation's adapter files (samsartor/teamwork), on every diffusers family.

The reference's rules are restated here as facts, not imported: its layer profiles are lists of globs over module
paths ("*" is one path component, the rest literal, matched in full: teamwork/adapter.py); each adapted layer
holds `adapter.down` [T, in, r], `adapter.up` [T, r, out] and, where the base layer has a bias and use_bias holds,
`adapter.bias` [T, out]; a layer's output for a teammate row adds (sum over the image's teammate rows of x A) B
of its teammate, plus its bias (teamwork/linear.py; a Conv2d on its channels per pixel); the metadata is
`config_to_metadata`'s (teamwork/config.py): modelspec.* with architecture `<base_model>/teamwork`, base_model,
teamwork.version 1.0 and `teamwork.<field>` = str(value) for teammates (comma-joined), lora_rank, profile,
lora_communication, use_bias, attn_allow and teammate_image_ids (comma-joined ints).  On load it parses rank
with int(), booleans as value.lower() == "true", skips `teamwork.*` keys it does not know, and adapts exactly the
modules with `.adapter` tensors.

What tests/adapters/test_checkpoint.py and test_profiles.py already check (an SD3 round trip, the published
layout on SD3, this tool's profiles' layer sets) is not repeated; here: every family end to end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from teamwork_cli.adapters.checkpoint import load_adapter, read_adapter_info, save_adapter
from teamwork_cli.adapters.config import default_image_ids
from teamwork_cli.adapters.model import adapter_layers, adapter_state_dict, inject_adapter
from teamwork_cli.adapters.profiles import layers_to_adapt, profile_for
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.hub import load_hub_denoiser

pytestmark = pytest.mark.usefixtures("offline")

TEAM = ["image.in", "diffuse.out", "normals.out"]
_UNET = [
    *(f"*.*.attentions.*.transformer_blocks.*.{leaf}" for leaf in ("attn1.to_q", "attn1.to_k", "attn1.to_v")),
    "*.*.attentions.*.transformer_blocks.*.attn1.to_out.0",
    "*.*.attentions.*.transformer_blocks.*.ff.net.0.proj",
    "*.*.attentions.*.transformer_blocks.*.ff.net.2",
    "*.*.resnets.*.conv1",
    "*.*.resnets.*.conv2",
    "*.*.resnets.*.conv_shortcut",
]
_MMDIT = [
    f"transformer_blocks.*.{leaf}"
    for leaf in ("norm1.linear", "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.0.proj", "ff.net.2")
]
# The reference's TEAMWORK_PROFILES (teamwork/pipeline_*.py), by the family of this package's tiny pipelines.
REFERENCE_PROFILES = {
    "sd3": ("SD3", _MMDIT),
    "flux": (
        "FLUX",
        [
            *_MMDIT,
            *(f"single_transformer_blocks.*.{leaf}" for leaf in ("norm.linear", "attn.to_q", "attn.to_k", "attn.to_v")),
            "single_transformer_blocks.*.proj_mlp",
            "single_transformer_blocks.*.proj_out",
        ],
    ),
    "flux2": (
        "FLUX2",
        [
            "double_stream_modulation_img.linear",
            "single_stream_modulation.linear",
            *(f"transformer_blocks.*.attn.{leaf}" for leaf in ("to_q", "to_k", "to_v", "to_out.0")),
            "transformer_blocks.*.ff.linear_in",
            "transformer_blocks.*.ff.linear_out",
            "single_transformer_blocks.*.attn.to_qkv_mlp_proj",
            "single_transformer_blocks.*.attn.to_out",
        ],
    ),
    # The reference's glob `layers.*.attention.to_out` names, in diffusers 0.42, the [Linear, Dropout] list; the
    # layer it adapts is that list's Linear, `to_out.0` (adapters/profiles.py says the same).
    "zimage": (
        "ZIMAGE",
        [
            "layers.*.adaLN_modulation.0",
            *(f"layers.*.attention.{leaf}" for leaf in ("to_q", "to_k", "to_v", "to_out.0")),
            *(f"layers.*.feed_forward.w{i}" for i in (1, 2, 3)),
        ],
    ),
    "sdxl": ("SDXL", _UNET),
    "sd2": ("SD2", _UNET),
}
FAMILIES = list(REFERENCE_PROFILES)
# config_to_metadata's keys, always written (modelspec.resolution, teamwork.attn_allow only when set).
REFERENCE_KEYS = {
    "modelspec.sai_model_spec",
    "modelspec.architecture",
    "modelspec.implementation",
    "modelspec.title",
    "modelspec.type",
    "base_model",
    "teamwork.version",
    "teamwork.teammates",
    "teamwork.lora_rank",
    "teamwork.profile",
    "teamwork.lora_communication",
    "teamwork.use_bias",
}
REFERENCE_FIELDS = {"teammates", "lora_rank", "profile", "lora_communication", "use_bias", "attn_allow"}
REFERENCE_FIELDS |= {"teammate_image_ids"}


def glob_regex(glob: str) -> str:
    return "".join(r"[^.]+" if c == "*" else re.escape(c) for c in glob)


def reference_layers(model: nn.Module, family: str) -> list[str]:
    """The module paths the reference's profile selects, in model order."""
    pattern = re.compile("|".join(f"({glob_regex(g)})" for g in REFERENCE_PROFILES[family][1]))
    return [name for name, _ in model.named_modules() if pattern.fullmatch(name)]


def reference_config(meta: dict[str, str]) -> dict:
    """A file's metadata read by the reference's rules (metadata_to_config), as a dict of its fields."""
    assert meta.get("modelspec.type") == "teamwork"
    cfg: dict = {"base_model": meta.get("base_model", "unknown"), "title": meta.get("modelspec.title")}
    for key, value in meta.items():
        field = key.removeprefix("teamwork.")
        if not key.startswith("teamwork.") or field not in REFERENCE_FIELDS:
            continue  # keys it does not know are skipped
        if field == "teammates":
            cfg[field] = value.split(",")
            assert all(re.fullmatch(r"[a-z]+\.(in|out)", t) for t in cfg[field])
        elif field == "teammate_image_ids":
            cfg[field] = [int(x) for x in value.split(",")] if value else []
        elif field == "lora_rank":
            cfg[field] = int(value)
        elif field in ("lora_communication", "use_bias"):
            cfg[field] = value.lower() == "true"
        else:
            cfg[field] = value
    return cfg


def _tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.fixture(params=FAMILIES)
def family(request, hub_teams):
    """(family, its tiny pipeline folder)."""
    return request.param, hub_teams(request.param)[1]


def _fresh(folder: Path):
    return load_hub_denoiser(str(folder), cache_embeds=False)


def test_files_written_here_have_the_reference_layout_and_metadata_and_round_trip_bit_exactly(family, tmp_path):
    name, folder = family
    den = _fresh(folder)
    profile = profile_for(den.model).name
    assert profile == REFERENCE_PROFILES[name][0]  # the reference's profile name, SDXL and SD2 apart
    inject_adapter(den.model, layers_to_adapt(den.model), len(TEAM), 2)
    with torch.no_grad():
        for p in adapter_state_dict(den.model).values():
            p.normal_(0, 0.1)
    base = "org/base-model"  # as finetune writes it: architecture = base_model
    # As finetune saves: the default RoPE offsets where the profile's files record them (FLUX.2, Z-Image).
    ids = default_image_ids(profile, len(TEAM)) if profile_for(den.model).records_image_ids else None
    kw = dict(base_model=base, title="t", profile=profile, architecture=base, teammate_image_ids=ids)
    path = save_adapter(den.model, tmp_path / "a.safetensors", TEAM, **kw)
    tensors, meta = _tensors(path)
    # Layout: exactly the reference's layers, each with its adapter tensors in the reference's shapes.
    layers = reference_layers(den.model, name)
    assert {k.rsplit(".adapter.", 1)[0] for k in tensors} == set(layers)
    for layer in layers:
        base_layer = den.model.get_submodule(layer).base_layer
        fan_in, fan_out = getattr(base_layer, "in_features", None), getattr(base_layer, "out_features", None)
        if isinstance(base_layer, nn.Conv2d):
            fan_in, fan_out = base_layer.in_channels, base_layer.out_channels
        assert tensors[f"{layer}.adapter.down"].shape == (3, fan_in, 2)
        assert tensors[f"{layer}.adapter.up"].shape == (3, 2, fan_out)
        has_bias = base_layer.bias is not None  # use_bias=True: a bias exactly where the base has one
        assert (f"{layer}.adapter.bias" in tensors) == has_bias, layer
        if has_bias:
            assert tensors[f"{layer}.adapter.bias"].shape == (3, fan_out)
    assert all(k.endswith((".adapter.down", ".adapter.up", ".adapter.bias")) for k in tensors)
    # Metadata: every key config_to_metadata writes, with its values, and readable by its parser.
    assert REFERENCE_KEYS <= set(meta)
    assert meta["modelspec.architecture"] == f"{base}/teamwork" and meta["modelspec.type"] == "teamwork"
    assert meta["modelspec.sai_model_spec"] == "1.0.0" and meta["teamwork.version"] == "1.0"
    cfg = reference_config(meta)
    assert cfg["teammates"] == TEAM and cfg["lora_rank"] == 2 and cfg["profile"] == profile
    assert cfg["lora_communication"] is True and cfg["base_model"] == base
    # use_bias: "True" where the base layers have biases; FLUX.2's linears have none, so its files say "False"
    # and hold no bias, which the reference reads the same way (no bias where the base has none).
    assert cfg["use_bias"] == any(k.endswith(".adapter.bias") for k in tensors) == (name != "flux2")
    assert meta["teamwork.lora_communication"] == "True" and meta["teamwork.use_bias"] in ("True", "False")
    # The reference writes the offsets into every file; a file without them reads as its default, all 0 without
    # joint attention: the same values.
    assert cfg.get("teammate_image_ids", [0, 0, 0]) == [0, 0, 0]
    assert ("teamwork.teammate_image_ids" in meta) == (name in ("flux2", "zimage"))
    # Round trip: load into a fresh model, save again: the same tensors, bit for bit, and the same metadata.
    other = _fresh(folder)
    load_adapter(other.model, path, teammates=TEAM)
    again = save_adapter(other.model, tmp_path / "b.safetensors", TEAM, **kw)
    back, meta_back = _tensors(again)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    assert all(back[k].dtype == tensors[k].dtype == torch.float32 for k in tensors)
    assert meta_back == meta


def reference_file(model: nn.Module, family: str, path: Path, profile: str | None = None, seed: int = 0) -> Path:
    """An adapter laid out and described as the reference writes one (random non-zero weights)."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in reference_layers(model, family):
        m = model.get_submodule(layer)
        fan_in, fan_out = (
            (m.in_channels, m.out_channels) if isinstance(m, nn.Conv2d) else (m.in_features, m.out_features)
        )
        tensors[f"{layer}.adapter.down"] = torch.randn(3, fan_in, 2, generator=g) * 0.1
        tensors[f"{layer}.adapter.up"] = torch.randn(3, 2, fan_out, generator=g) * 0.1
        if m.bias is not None:
            tensors[f"{layer}.adapter.bias"] = torch.randn(3, fan_out, generator=g) * 0.1
    meta = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{family}-base/teamwork",
        "modelspec.implementation": "samsartor/teamwork",
        "modelspec.title": "reference",
        "modelspec.type": "teamwork",
        "base_model": f"{family}-base",
        "teamwork.version": "1.0",
        "teamwork.teammates": ",".join(TEAM),
        "teamwork.lora_rank": "2",
        "teamwork.profile": profile or REFERENCE_PROFILES[family][0],
        "teamwork.lora_communication": "True",
        "teamwork.use_bias": "True",
        "teamwork.teammate_image_ids": "0,0,0",  # its newer config writes the (default) offsets into every file
    }
    save_file(tensors, str(path), metadata=meta)
    return path


class ReferenceRule(nn.Module):
    """A base layer plus the reference's equation on rows that name their teammate and image (test-local)."""

    def __init__(self, base: nn.Module, down: torch.Tensor, up: torch.Tensor, bias: torch.Tensor | None, sel: dict):
        super().__init__()
        self.base, self.down, self.up, self.extra, self.sel = base, down, up, bias, sel

    @property
    def weight(self) -> torch.Tensor:  # diffusers reads e.g. `attn.to_q.weight.dtype`
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        tm, bm = self.sel["teammate"], self.sel["matrix"]  # [rows], [rows, images] one-hot
        down, up = self.down[tm], self.up[tm]
        if isinstance(self.base, nn.Conv2d):
            hidden = torch.einsum("tihw,tir,tb->bhwr", x, down, bm)
            out = out + torch.einsum("bhwr,tro,tb->tohw", hidden, up, bm)
            return out if self.extra is None else out + self.extra[tm][:, :, None, None]
        hidden = torch.einsum("t...i,tir,tb->b...r", x, down, bm)
        out = out + torch.einsum("b...r,tro,tb->t...o", hidden, up, bm)
        if self.extra is None:
            return out
        bias = self.extra[tm]
        return out + bias.view(bias.shape[0], *[1] * (out.ndim - 2), bias.shape[1])


def test_reference_files_load_unchanged_and_give_the_reference_equations_outputs(family, tmp_path):
    name, folder = family
    ours = _fresh(folder)
    path = reference_file(ours.model, name, tmp_path / "ref.safetensors")
    tensors, _ = _tensors(path)
    _, info = load_adapter(ours.model, path, teammates=TEAM)
    assert info.profile == REFERENCE_PROFILES[name][0] and info.config.implementation == "samsartor/teamwork"
    assert info.teammate_image_ids == [0, 0, 0] and not info.joint
    assert adapter_state_dict(ours.model).keys() == tensors.keys()
    assert all(torch.equal(v, tensors[k]) for k, v in adapter_state_dict(ours.model).items())

    ref = _fresh(folder)
    sel: dict = {}
    for layer in reference_layers(ref.model, name):
        parent, _, child = layer.rpartition(".")
        owner = ref.model.get_submodule(parent) if parent else ref.model
        t = {p: tensors.get(f"{layer}.adapter.{p}") for p in ("down", "up", "bias")}
        setattr(owner, child, ReferenceRule(getattr(owner, child), t["down"], t["up"], t["bias"], sel))
    batch = TeamBatch.from_active([[0, 1, 2], [0, 2]], 3)  # two images, the second without diffuse
    sel["teammate"] = batch.teammate_ids
    sel["matrix"] = nn.functional.one_hot(batch.group_ids, batch.num_groups).float()
    g = torch.Generator().manual_seed(1)
    latents = ours.encode(torch.rand(batch.num_rows, 3, 16, 16, generator=g) * 2 - 1)
    t = torch.full((batch.num_rows,), 0.6 * ours.num_train_timesteps)
    with torch.no_grad():
        got = ours(latents, t, batch)
        want = ref.predict(latents, t)
        base = _fresh(folder).predict(latents, t)
    scale = want.abs().max()
    assert (want - base).abs().max() > 1e-3 * scale  # the adapter changes the output ...
    assert (got - want).abs().max() <= 1e-5 * scale  # ... exactly as the reference's equation says


@pytest.mark.parametrize("name", ["sd2", "sdxl"])
def test_earlier_unet_profile_files_still_load_as_the_sd2_and_sdxl_profiles(name, hub_teams, tmp_path):
    """Files this tool wrote before it used the reference's SD2/SDXL names say profile UNET: the same tensors
    load into the same layers and give the same outputs."""
    folder = hub_teams(name)[1]
    first = _fresh(folder)
    old = reference_file(first.model, name, tmp_path / "old.safetensors", profile="UNET")
    new = reference_file(first.model, name, tmp_path / "new.safetensors")
    assert read_adapter_info(old).profile == "UNET" and read_adapter_info(new).profile == REFERENCE_PROFILES[name][0]
    outs = []
    for path in (old, new):
        den = _fresh(folder)
        _, info = load_adapter(den.model, path, teammates=TEAM)
        assert sorted(adapter_layers(den.model)) == sorted(reference_layers(den.model, name)) == sorted(info.layers)
        batch = TeamBatch.from_active([[0, 1, 2]], 3)
        x = den.encode(torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1)
        with torch.no_grad():
            outs.append(den(x, torch.full((3,), 500.0), batch))
    assert torch.equal(outs[0], outs[1])


# The reference's *_PLUSATTN profiles add one glob each, a module whose `adapter` is a scalar 0.0 (its
# TeamworkJointAttention); FLUX.2's joint attention replaces whole blocks instead and is not compared here.
REFERENCE_JOINT = {
    "sd3": "transformer_blocks.*.attn",
    "flux": "transformer_blocks.*.attn",
    "sd2": "*.*.attentions.*.transformer_blocks.*.attn1",
    "sdxl": "*.*.attentions.*.transformer_blocks.*.attn1",
}


@pytest.mark.parametrize("name", list(REFERENCE_JOINT))
def test_joint_attention_files_carry_the_references_scalar_markers_and_plusattn_profile(name, hub_teams, tmp_path):
    from teamwork_cli.models.joint_attention import enable_joint_attention

    folder = hub_teams(name)[1]
    den = _fresh(folder)
    profile = profile_for(den.model).name
    inject_adapter(den.model, layers_to_adapt(den.model), len(TEAM), 2)
    enable_joint_attention(den.model)
    path = save_adapter(
        den.model, tmp_path / "j.safetensors", TEAM, base_model="b", title="t", profile=profile, architecture="b"
    )
    tensors, meta = _tensors(path)
    markers = {k.removesuffix(".adapter"): v for k, v in tensors.items() if k.endswith(".adapter")}
    pattern = re.compile(glob_regex(REFERENCE_JOINT[name]))
    assert set(markers) == {n for n, _ in den.model.named_modules() if pattern.fullmatch(n)} != set()
    assert all(v.shape == () and v.item() == 0.0 for v in markers.values())
    assert meta["teamwork.profile"] == f"{REFERENCE_PROFILES[name][0]}_PLUSATTN"
    assert {k.rsplit(".adapter.", 1)[0] for k in tensors if ".adapter." in k} == set(reference_layers(den.model, name))
