"""Injection: put Teamwork layers in place of a model's base layers, read them back, take them out.

Settings (which layers: `profiles`; what goes in a file: `config`, `checkpoint`) live apart, as in peft's
`tuners/lora/model.py`; this module only changes the module tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from teamwork_cli.adapters.layer import ADAPTER_CLASSES, TeamworkLayer, adapter_class_for
from teamwork_cli.adapters.profiles import layers_to_adapt
from teamwork_cli.core.team import TeamBatch, TeamState


@contextlib.contextmanager
def team_context(
    model_or_state: nn.Module | TeamState, batch: TeamBatch | Tensor | Sequence[Sequence[int]]
) -> Iterator[TeamBatch]:
    """Set the row layout for the adapter layers for the duration of one forward (nesting restores)."""
    state = model_or_state if isinstance(model_or_state, TeamState) else _state_of(model_or_state)
    if not isinstance(batch, TeamBatch):
        batch = TeamBatch.from_active(batch, state.num_teammates)
    if batch.num_teammates != state.num_teammates:
        raise ValueError(f"team batch has {batch.num_teammates} teammates, the adapter has {state.num_teammates}")
    previous, state.batch = state.batch, batch
    try:
        yield batch
    finally:
        state.batch = previous


def _state_of(model: nn.Module) -> TeamState:
    for module in model.modules():
        if isinstance(module, TeamworkLayer):
            return module.state
    raise ValueError(
        f"{type(model).__name__} has no Teamwork adapter layers; call inject_adapter or load_adapter first"
    )


def make_layer(
    model: nn.Module,
    name: str,
    num_teammates: int,
    rank: int,
    state: TeamState,
    *,
    communication: bool = True,
    use_bias: bool | None = None,
    dtype: torch.dtype = torch.float32,
    init_weights: bool = True,
) -> TeamworkLayer:
    """Build (not install) the Teamwork wrapper of submodule `name`; checks the layer can be adapted."""
    try:
        module = model.get_submodule(name)
    except AttributeError as e:
        raise ValueError(f"layer {name!r} is not a submodule of {type(model).__name__}") from e
    if isinstance(module, TeamworkLayer):
        raise ValueError(f"layer {name!r} is already adapted; call remove_adapter(model) first")
    cls = adapter_class_for(module)
    if cls is None:
        allowed = ", ".join(t.__name__ for t in ADAPTER_CLASSES)
        raise ValueError(f"layer {name!r} is a {type(module).__name__}; Teamwork adapts only {allowed}")
    try:
        return cls(
            module,
            num_teammates,
            rank,
            state,
            communication=communication,
            use_bias=use_bias,
            dtype=dtype,
            init_weights=init_weights,
        )
    except ValueError as e:
        raise ValueError(f"cannot adapt layer {name!r}: {e}") from e


def install_layers(model: nn.Module, layers: dict[str, TeamworkLayer]) -> None:
    """Put built wrappers in place of their base layers and freeze every non-adapter parameter."""
    for name, layer in layers.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
    model.requires_grad_(False)
    for layer in layers.values():
        layer.adapter.requires_grad_(True)


def inject_adapter(
    model: nn.Module,
    layer_names: Sequence[str] | None,
    num_teammates: int,
    rank: int,
    *,
    communication: bool = True,
    use_bias: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> TeamState:
    """Adapt the named layers (None: the backbone profile's) in place and freeze every base parameter.

    use_bias: None = the published format (an adapter bias iff the base layer has a bias); True/False = on
    every/no layer.  All names are checked before the model is changed.
    """
    if adapter_layers(model):
        raise ValueError(f"{type(model).__name__} already has Teamwork adapters; call remove_adapter first")
    if layer_names is None:
        layer_names = layers_to_adapt(model)
    if not layer_names:
        raise ValueError("layer_names is empty; name at least one nn.Linear or nn.Conv2d to adapt")
    if len(set(layer_names)) != len(layer_names):
        raise ValueError("layer_names lists a layer twice")
    if num_teammates < 1 or rank < 1:
        raise ValueError(f"num_teammates and rank must be >= 1, got {num_teammates} and {rank}")
    state = TeamState(num_teammates)
    layers = {
        name: make_layer(
            model, name, num_teammates, rank, state, communication=communication, use_bias=use_bias, dtype=dtype
        )
        for name in layer_names
    }
    install_layers(model, layers)
    return state


def adapter_layers(model: nn.Module) -> dict[str, TeamworkLayer]:
    """Module path (relative to `model`) -> adapter layer."""
    return {name: m for name, m in model.named_modules() if isinstance(m, TeamworkLayer)}


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The adapter tensors under their published keys `P.adapter.down/up[/bias]` (detached, not copied)."""
    out: dict[str, Tensor] = {}
    for name, layer in adapter_layers(model).items():
        for pname, p in layer.adapter.named_parameters(recurse=False):
            out[f"{name}.adapter.{pname}"] = p.detach()
    return out


def remove_adapter(model: nn.Module) -> list[str]:
    """Put the base layers back in place of their wrappers; returns the restored paths."""
    names = list(adapter_layers(model))
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, getattr(parent, child).base_layer)
    return names


__all__ = [
    "adapter_layers",
    "adapter_state_dict",
    "inject_adapter",
    "install_layers",
    "make_layer",
    "remove_adapter",
    "team_context",
]
