"""Which layers of each diffusers denoiser Teamwork adapts (docs/conventions.md section 5, "published profiles").

A profile is a list of regular expressions matched in full against module paths relative to the denoiser
(the names `named_modules()` gives).  Only nn.Linear / nn.Conv2d modules are ever selected.  When loading a
checkpoint the file's own tensors decide the layers; the profiles are for training new adapters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from teamwork_cli.adapters.layer import adapter_class_for


@dataclass(frozen=True)
class BackboneProfile:
    name: str
    layer_patterns: list[str]  # re.fullmatch against the module path
    description: str = ""
    # Files of this profile carry teamwork.teammate_image_ids, as the reference writes them for the families it
    # added them for (FLUX.2, Z-Image); the other published profiles' files have none.
    records_image_ids: bool = False

    def matches(self, path: str) -> bool:
        return any(re.fullmatch(p, path) for p in self.layer_patterns)


# Module names checked against diffusers 0.42 (tiny models built from config; see tests/adapters/test_profiles.py).
_MMDIT_DOUBLE = (
    r"transformer_blocks\.\d+\."
    r"(norm1\.linear|attn\.to_[qkv]|attn\.to_out\.0|ff\.net\.0\.proj|ff\.net\.2)"
)
_FLUX_SINGLE = r"single_transformer_blocks\.\d+\.(norm\.linear|attn\.to_[qkv]|proj_mlp|proj_out)"
# FLUX.2 (the reference's FLUX2 profile, pipeline_flux2_klein.py): the image stream's and the single stream's
# modulation linears (model-level in FLUX.2, shared by all blocks), the double blocks' image-side attention q/k/v/out
# and feed-forward, the single blocks' fused qkv+mlp and output projections; the text stream stays at base.
_FLUX2 = [
    r"(double_stream_modulation_img|single_stream_modulation)\.linear",
    r"transformer_blocks\.\d+\.(attn\.to_[qkv]|attn\.to_out\.0|ff\.linear_in|ff\.linear_out)",
    r"single_transformer_blocks\.\d+\.attn\.(to_qkv_mlp_proj|to_out)",
]
# Z-Image (the reference's ZIMAGE profile, pipeline_zimage.py): the main layers' adaLN modulation, attention
# q/k/v/out and SwiGLU feed-forward; not the noise and context refiners.  The reference's glob names
# `attention.to_out`, which in diffusers 0.42 is the [Linear, Dropout] list; its Linear is `to_out.0`.
_ZIMAGE = [r"layers\.\d+\.(adaLN_modulation\.0|attention\.to_[qkv]|attention\.to_out\.0|feed_forward\.w[123])"]
_UNET_BLOCK = r"(down_blocks\.\d+|up_blocks\.\d+|mid_block)"
_RESNETS = _UNET_BLOCK + r"\.resnets\.\d+\.(conv1|conv2|conv_shortcut)"
# The published SD2/SDXL profiles: the reference implementation's globs "*.*.attentions.*..." and "*.*.resnets.*..."
# need two path components before `attentions`/`resnets`, so they take down and up blocks, never the mid block.
_UP_DOWN = r"(down_blocks\.\d+|up_blocks\.\d+)"
_UNET_ATTN = (
    r"\.attentions\.\d+\.transformer_blocks\.\d+\.(attn1\.to_[qkv]|attn1\.to_out\.0|ff\.net\.0\.proj|ff\.net\.2)"
)
_UNET_PUBLISHED = [_UP_DOWN + _UNET_ATTN, _UP_DOWN + r"\.resnets\.\d+\.(conv1|conv2|conv_shortcut)"]

_UNET2D = BackboneProfile(
    "UNET2D",
    [_UNET_BLOCK + r"\.attentions\.\d+\.(to_[qkv]|to_out\.0)", _RESNETS],
    "unconditional UNet: resnets' conv1/conv2/conv_shortcut and attention q/k/v/out",
)

_REGISTRY: dict[str, BackboneProfile] = {
    "SD3Transformer2DModel": BackboneProfile(
        "SD3",
        [_MMDIT_DOUBLE],
        "SD3 MMDiT: image-stream modulation, self-attention q/k/v/out and feed-forward of every block",
    ),
    "FluxTransformer2DModel": BackboneProfile(
        "FLUX",
        [_MMDIT_DOUBLE, _FLUX_SINGLE],
        "Flux: double blocks as SD3; single blocks' modulation, q/k/v, proj_mlp and proj_out",
    ),
    "Flux2Transformer2DModel": BackboneProfile(
        "FLUX2",
        _FLUX2,
        "FLUX.2: image-stream and single-stream modulation; double blocks' image q/k/v/out and feed-forward; "
        "single blocks' fused qkv+mlp and output projections",
        records_image_ids=True,
    ),
    "ZImageTransformer2DModel": BackboneProfile(
        "ZIMAGE",
        _ZIMAGE,
        "Z-Image: the main layers' adaLN modulation, attention q/k/v/out and feed-forward (not the refiners)",
        records_image_ids=True,
    ),
    "UNet2DConditionModel": BackboneProfile(
        "SD2",  # "SDXL" for an SDXL UNet (`profile_for`)
        _UNET_PUBLISHED,
        "SD2/SDXL UNet, as published: self-attention (attn1, not cross-attention) and feed-forward of the down and "
        "up blocks' transformer blocks, their resnets' conv1/conv2/conv_shortcut; not the mid block",
    ),
    "UNet2DModel": _UNET2D,
    "EmbeddedUNet": _UNET2D,  # models/unet.py: UNet2DModel's architecture and layer names, without diffusers
}


def supported_backbones() -> list[str]:
    return sorted(_REGISTRY)


def register_backbone(class_name: str, profile: BackboneProfile) -> None:
    """Add or replace the profile for a denoiser class (matched by class name, including base classes)."""
    for pattern in profile.layer_patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"profile {profile.name!r}: layer pattern {pattern!r} is not a valid regex: {e}") from e
    _REGISTRY[class_name] = profile


def profile_for(model: nn.Module) -> BackboneProfile:
    # Walking the MRO lets subclasses of a supported denoiser use its profile.
    for cls in type(model).__mro__:
        if cls.__name__ in _REGISTRY:
            profile = _REGISTRY[cls.__name__]
            if profile.name == "SD2" and _is_sdxl(model):  # one class, two names in the reference's files
                return BackboneProfile("SDXL", profile.layer_patterns, profile.description)
            return profile
    raise ValueError(
        f"no Teamwork backbone profile for {type(model).__name__}; supported: "
        f"{', '.join(supported_backbones())} (add one with register_backbone)"
    )


def _is_sdxl(model: nn.Module) -> bool:
    """SDXL's UNet conditions on pooled text and size ids ("text_time"); SD2's does not."""
    return getattr(getattr(model, "config", None), "addition_embed_type", None) == "text_time"


def layers_to_adapt(model: nn.Module, profile: BackboneProfile | None = None) -> list[str]:
    """Module paths of the nn.Linear / nn.Conv2d layers the profile selects, in model order."""
    profile = profile or profile_for(model)
    names = [
        name
        for name, module in model.named_modules()
        if adapter_class_for(module) is not None and profile.matches(name)
    ]
    if not names:
        raise ValueError(
            f"profile {profile.name!r} selects no nn.Linear/nn.Conv2d layer of "
            f"{type(model).__name__}; patterns: {profile.layer_patterns}"
        )
    return names


__all__ = ["BackboneProfile", "layers_to_adapt", "profile_for", "register_backbone", "supported_backbones"]
