"""Teamwork adapter checkpoints in the published `.safetensors` format (docs/conventions.md section 5).

Tensors: `P.adapter.down` [T, in, rank], `P.adapter.up` [T, rank, out], optional `P.adapter.bias` [T, out]
for every adapted layer at module path P of the denoiser; teammate order is `teamwork.teammates`.
A bare scalar `P.adapter` tensor marks module P as attending jointly across teammates (the reference's `*_PLUSATTN`
profiles); such a file, or one whose profile is a `*_PLUSATTN` one, loads with joint attention on
(models/joint_attention.py), `teamwork.attn_allow` and `teamwork.teammate_image_ids` honoured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from teamwork_cli.adapters.config import (
    FORMAT_VERSION,
    IMPLEMENTATION,
    JOINT_SUFFIX,
    TeamworkConfig,
    default_image_ids,
    parse_attn_allow,
)
from teamwork_cli.adapters.layer import TeamworkLayer
from teamwork_cli.adapters.model import adapter_layers, adapter_state_dict, install_layers, make_layer
from teamwork_cli.core.channels import TEAMMATE_RE
from teamwork_cli.core.team import TeamState

_PARAMS = ("down", "up", "bias")
_KEY_RE = re.compile(r"^(?P<layer>.+)\.adapter(?:\.(?P<param>down|up|bias))?$")


@dataclass
class AdapterInfo:
    path: str
    title: str
    base_model: str
    teammates: list[str]
    inputs: list[str]
    outputs: list[str]
    rank: int
    communication: bool
    use_bias: bool
    profile: str
    architecture: str  # modelspec.architecture as stored, e.g. "stable-diffusion-3/teamwork"
    resolution: str | None
    num_layers: int
    num_params: int
    layers: list[str]  # module paths P, in file order
    shapes: dict[str, tuple[int, ...]] = field(repr=False)  # tensor key -> shape
    metadata: dict[str, str] = field(repr=False)
    ignored_keys: list[str] = field(default_factory=list, repr=False)
    config: TeamworkConfig | None = field(default=None, repr=False)  # the metadata, parsed
    joint_attention: list[str] = field(default_factory=list)  # modules marked by a scalar `P.adapter`, file order
    attn_allow: str | None = None  # teamwork.attn_allow as stored
    teammate_image_ids: list[int] | None = None  # teamwork.teammate_image_ids as stored

    @property
    def joint(self) -> bool:
        """Joint attention across teammates: markers in the file or a *_PLUSATTN profile."""
        return bool(self.joint_attention) or self.profile.endswith(JOINT_SUFFIX)

    def joint_image_ids(self) -> list[int]:
        """The RoPE image-id offsets joint attention uses: the file's, else the reference's default for the
        joint-attention profile (markers under a plain profile count as that profile's *_PLUSATTN)."""
        if self.teammate_image_ids is not None:
            return list(self.teammate_image_ids)
        profile = self.profile if self.profile.endswith(JOINT_SUFFIX) else self.profile + JOINT_SUFFIX
        return default_image_ids(profile, len(self.teammates))


def read_adapter_info(path: str | os.PathLike[str]) -> AdapterInfo:
    """Metadata and tensor layout of a checkpoint, read from its header only (no model needed)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"adapter checkpoint {path} does not exist")
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with safe_open(path, framework="pt") as f:
            meta = dict(f.metadata() or {})
            for key in f.keys():
                shapes[key] = tuple(f.get_slice(key).get_shape())
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path} is not a readable .safetensors file: {e}") from e

    config = TeamworkConfig.from_metadata(meta, where=path)  # checks the keys before the tensors
    teammates, rank = config.teammates, config.rank
    layers: dict[str, dict[str, tuple[int, ...]]] = {}
    ignored: list[str] = []
    joint: list[str] = []
    for key, shape in shapes.items():
        m = _KEY_RE.match(key)
        if m is not None and m["param"] is None and shape == ():
            joint.append(m["layer"])
            continue
        if m is None or m["param"] is None:
            ignored.append(key)
            continue
        layers.setdefault(m["layer"], {})[m["param"]] = shape
    if not layers:
        raise ValueError(f"{path}: no '<layer>.adapter.down/up' tensors found")
    t = len(teammates)
    for name, p in layers.items():
        if "down" not in p or "up" not in p:
            raise ValueError(f"{path}: layer {name} needs both adapter.down and adapter.up, has {sorted(p)}")
        down, up, bias = p["down"], p["up"], p.get("bias")
        if len(down) != 3 or len(up) != 3 or down[0] != t or up[0] != t or down[2] != rank or up[1] != rank:
            raise ValueError(
                f"{path}: layer {name} has down {down} and up {up}; with {t} teammates and "
                f"rank {rank} they must be [{t}, in, {rank}] and [{t}, {rank}, out]"
            )
        if bias is not None and bias != (t, up[2]):
            raise ValueError(f"{path}: layer {name} has bias {bias}, expected {(t, up[2])}")

    if "teamwork.use_bias" not in meta:  # older files: the tensors tell
        config.use_bias = any("bias" in p for p in layers.values())
    return AdapterInfo(
        path=path,
        title=config.title,
        base_model=config.base_model,
        teammates=config.teammates,
        inputs=config.inputs,
        outputs=config.outputs,
        rank=config.rank,
        communication=config.communication,
        use_bias=config.use_bias,
        profile=config.profile,
        architecture=config.architecture,
        resolution=config.resolution,
        num_layers=len(layers),
        num_params=sum(_numel(shapes[k]) for k in shapes if k not in ignored and shapes[k] != ()),
        layers=list(layers),
        shapes=shapes,
        metadata=meta,
        ignored_keys=ignored,
        config=config,
        joint_attention=joint,
        attn_allow=config.attn_allow,
        teammate_image_ids=config.teammate_image_ids,
    )


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def load_adapter(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    teammates: list[str] | None = None,
    dtype: torch.dtype = torch.float32,
    strict_layers: bool = True,
) -> tuple[TeamState, AdapterInfo]:
    """Adapt exactly the layers that have tensors in the file and load them (in `dtype`).

    strict_layers=False skips file layers missing from the model instead of failing.  Everything is checked
    before the model is changed.
    """
    info = read_adapter_info(path)
    if teammates is not None and list(teammates) != info.teammates:
        raise ValueError(
            f"{info.path}: requested teammates {list(teammates)} differ from the file's "
            f"{info.teammates} (same names in the same order are required)"
        )
    if adapter_layers(model):
        raise ValueError(f"{type(model).__name__} already has Teamwork adapters; call remove_adapter first")
    t, rank = len(info.teammates), info.rank
    state = TeamState(t)
    layers: dict[str, TeamworkLayer] = {}
    for name in info.layers:
        try:
            model.get_submodule(name)
        except AttributeError:
            if strict_layers:
                raise ValueError(
                    f"{info.path}: layer {name} is not a module of {type(model).__name__} (wrong base model?)"
                ) from None
            continue
        has_bias = f"{name}.adapter.bias" in info.shapes
        try:
            layer = make_layer(
                model,
                name,
                t,
                rank,
                state,
                communication=info.communication,
                use_bias=has_bias,
                dtype=dtype,
                init_weights=False,
            )
        except ValueError as e:
            raise ValueError(f"{info.path}: {e}") from e
        for param, tensor in layer.adapter.named_parameters(recurse=False):
            key = f"{name}.adapter.{param}"
            if info.shapes[key] != tuple(tensor.shape):
                raise ValueError(
                    f"{info.path}: tensor {key} has shape {list(info.shapes[key])} but layer "
                    f"{name} ({type(layer.base_layer).__name__} {layer.in_features} -> "
                    f"{layer.out_features}) needs {list(tensor.shape)}"
                )
        layers[name] = layer
    if not layers:
        raise ValueError(f"{info.path}: none of its {info.num_layers} layers exist in {type(model).__name__}")
    joint_paths = _joint_paths(model, info)
    with safe_open(info.path, framework="pt") as f, torch.no_grad():
        for name, layer in layers.items():
            for param, tensor in layer.adapter.named_parameters(recurse=False):
                tensor.copy_(f.get_tensor(f"{name}.adapter.{param}"))
    install_layers(model, layers)
    if joint_paths is not None:
        from teamwork_cli.models.joint_attention import enable_joint_attention

        allow = None if info.attn_allow is None else parse_attn_allow(info.attn_allow, t)
        enable_joint_attention(model, paths=joint_paths, attn_allow=allow, image_ids=info.joint_image_ids())
    return state, info


def _joint_paths(model: nn.Module, info: AdapterInfo) -> list[str] | None:
    """The modules to couple (None: no joint attention), checked against the model before anything changes: the
    file's markers, else the backbone's default joint-attention modules for a *_PLUSATTN profile."""
    if not info.joint:
        return None
    from teamwork_cli.models.joint_attention import check_joint_paths, joint_attention_paths

    try:
        paths = info.joint_attention or joint_attention_paths(model)
        check_joint_paths(model, paths)
    except ValueError as e:
        why = (
            f"{len(info.joint_attention)} joint-attention markers"
            if info.joint_attention
            else f"profile {info.profile}"
        )
        raise ValueError(f"{info.path}: its {why} ask for joint attention: {e}") from None
    return paths


def init_adapter(
    model: nn.Module, path: str | os.PathLike[str], teammates: list[str], communication: bool
) -> AdapterInfo:
    """Copy a file's adapter tensors into the adapter already injected into `model` (to continue training a
    shipped or published adapter). The file must have the same teammates, in order, and the same layers and
    shapes; everything is checked before anything is copied."""
    info = read_adapter_info(path)
    if list(teammates) != info.teammates:
        raise ValueError(f"{info.path}: its teammates {info.teammates} differ from the team's {list(teammates)}")
    if info.communication != communication:  # same keys and shapes either way: only the metadata tells
        raise ValueError(
            f"{info.path}: it was trained with coordination {'on' if info.communication else 'off'}; "
            f"pass {'--coordination' if info.communication else '--no-coordination'} to continue it"
        )
    current = adapter_state_dict(model)
    stored = set(info.shapes) - set(info.ignored_keys) - {f"{p}.adapter" for p in info.joint_attention}
    if set(current) != stored:
        missing, extra = sorted(set(current) - stored), sorted(stored - set(current))
        raise ValueError(
            f"{info.path}: its layers differ from this adapter's (missing {missing[:3]}, extra "
            f"{extra[:3]}): was it trained on another base, or with another --rank or coordination?"
        )
    bad = [k for k, v in current.items() if tuple(v.shape) != info.shapes[k]]
    if bad:
        raise ValueError(
            f"{info.path}: tensor {bad[0]} has shape {list(info.shapes[bad[0]])}, this adapter needs "
            f"{list(current[bad[0]].shape)} (another --rank?)"
        )
    with safe_open(info.path, framework="pt") as f, torch.no_grad():
        for key, tensor in current.items():
            tensor.copy_(f.get_tensor(key))
    return info


def build_metadata(
    teammates: list[str],
    *,
    rank: int,
    communication: bool,
    use_bias: bool,
    base_model: str,
    title: str,
    profile: str,
    architecture: str,
    resolution: int | None = None,
    extra: Mapping[str, str] | None = None,
    attn_allow: str | None = None,
    teammate_image_ids: list[int] | None = None,
) -> dict[str, str]:
    """The string metadata of docs/conventions.md section 5 (see `TeamworkConfig.to_metadata`)."""
    res = None if resolution is None else f"{int(resolution)}x{int(resolution)}"
    return TeamworkConfig(
        list(teammates),
        rank,
        communication,
        use_bias,
        profile,
        base_model,
        architecture,
        title,
        res,
        attn_allow=attn_allow,
        teammate_image_ids=teammate_image_ids,
        extra=dict(extra or {}),
    ).to_metadata()


def save_adapter(
    model: nn.Module,
    path: str | os.PathLike[str],
    teammates: list[str],
    *,
    base_model: str,
    title: str,
    profile: str,
    architecture: str,
    resolution: int | None = None,
    extra: dict[str, str] | None = None,
    attn_allow: str | None = None,
    teammate_image_ids: list[int] | None = None,
) -> Path:
    """Write the model's adapters in the published format, atomically (temp file + os.replace).

    Modules attending jointly across teammates get their scalar `P.adapter` marker and the profile its
    `_PLUSATTN` suffix: the reference's loader couples the modules its `_PLUSATTN` profile names (its saver
    drops the markers), and a loader here reads either signal."""
    layers = adapter_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Teamwork adapter layers to save")
    bad = [t for t in teammates if not TEAMMATE_RE.match(t)]
    if bad or len(set(teammates)) != len(teammates):
        raise ValueError(f"teammates {teammates} must be unique '<channel>.in|out' names, channel in [a-z]+")
    counts = {layer.num_teammates for layer in layers.values()}
    ranks = {layer.rank for layer in layers.values()}
    comms = {layer.communication for layer in layers.values()}
    if counts != {len(teammates)}:
        raise ValueError(f"{len(teammates)} teammate names given but the adapters have {sorted(counts)} teammates")
    if len(ranks) != 1 or len(comms) != 1:
        raise ValueError(
            f"all adapted layers must share one rank and communication flag, found ranks "
            f"{sorted(ranks)} and communication {sorted(comms)}"
        )
    use_bias = any(layer.adapter.bias is not None for layer in layers.values())
    joint = _joint_layers(model)
    if joint and not profile.endswith(JOINT_SUFFIX):
        profile += JOINT_SUFFIX
    if joint and teammate_image_ids is None and profile == "FLUX2" + JOINT_SUFFIX:
        # The offsets the coupled attention uses, so that the file reloads with the same layout (0, 10, 20, ...
        # by default are FLUX.2's, which the reference writes into every file).
        teammate_image_ids = _joint_image_ids(model, joint[0])
    meta = build_metadata(
        list(teammates),
        rank=ranks.pop(),
        communication=comms.pop(),
        use_bias=use_bias,
        base_model=base_model,
        title=title,
        profile=profile,
        architecture=architecture,
        resolution=resolution,
        extra=extra,
        attn_allow=attn_allow,
        teammate_image_ids=teammate_image_ids,
    )
    tensors = {k: v.contiguous().cpu() for k, v in adapter_state_dict(model).items()}
    tensors.update({f"{p}.adapter": torch.zeros(()) for p in joint})
    return _write_atomic(tensors, meta, path)


def _joint_image_ids(model: nn.Module, path: str) -> list[int]:
    from teamwork_cli.models.joint_attention import attention_module

    return list(attention_module(model.get_submodule(path)).processor.image_ids)


def _joint_layers(model: nn.Module) -> list[str]:
    from teamwork_cli.models.joint_attention import joint_attention_layers

    return joint_attention_layers(model)


def _write_atomic(tensors: dict[str, torch.Tensor], meta: dict[str, str], path: str | os.PathLike[str]) -> Path:
    """A temporary file, then a rename: a killed run never leaves a half-written adapter under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, os.fspath(tmp), metadata=meta)
        os.replace(tmp, path)
        umask = os.umask(0)  # safetensors creates the file 0600; readable like any other output instead
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def convert_adapter(src: str | os.PathLike[str], dst: str | os.PathLike[str], dtype: torch.dtype) -> Path:
    """Rewrite an adapter file with its tensors in `dtype` (e.g. float16 to ship it at half the size; loading casts
    back to the model's dtype), metadata unchanged; atomic like save_adapter."""
    info = read_adapter_info(src)
    with safe_open(info.path, framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k).to(dtype).contiguous() for k in f.keys()}
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{info.path}: {bad[0]} is not finite in {dtype} (out of range); keep a wider dtype")
    return _write_atomic(tensors, meta, dst)


__all__ = [
    "FORMAT_VERSION",
    "IMPLEMENTATION",
    "AdapterInfo",
    "TeamworkConfig",
    "build_metadata",
    "convert_adapter",
    "init_adapter",
    "load_adapter",
    "read_adapter_info",
    "save_adapter",
]
