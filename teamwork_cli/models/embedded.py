"""The embedded default model: a small pixel-space UNet that ships with the package and runs on a CPU.

Design (numbers in docs/embedded-model.md): a diffusers `UNet2DModel` on 2x2 pixel patches (`PatchCodec`),
trained by rectified flow on the project's procedural materials, sampled with diffusers'
`FlowMatchEulerDiscreteScheduler`, so it shares the SD3 code path for the schedule and the target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from teamwork_cli.models.denoiser import PatchCodec, TeamDenoiser

if TYPE_CHECKING:  # diffusers is imported where a model is built: `teamwork --help` need not pay for it
    from diffusers import FlowMatchEulerDiscreteScheduler, UNet2DModel

EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "weights"
BASE_DIR = EMBEDDED_DIR / "base"
META_FILE = "teamwork.json"


def pixel_multiple(path: Path = BASE_DIR) -> int:
    """What image sizes a saved embedded base needs to be a multiple of, from its config files alone (no weights
    loaded): the patch times the UNet's downsampling (`EmbeddedDenoiser.pixel_multiple`)."""
    down = len(json.loads((path / "unet" / "config.json").read_text())["block_out_channels"]) - 1
    return int(json.loads((path / META_FILE).read_text())["patch"]) * 2**down


DEFAULT_CONFIG = dict(
    sample_size=64,
    in_channels=12,
    out_channels=12,
    block_out_channels=(64, 96, 128, 160),
    layers_per_block=1,
    down_block_types=("DownBlock2D",) * 4,
    up_block_types=("UpBlock2D",) * 4,
    norm_num_groups=16,
)


class EmbeddedDenoiser(TeamDenoiser):
    prediction_type = "flow"

    def __init__(self, model: UNet2DModel, scheduler: FlowMatchEulerDiscreteScheduler, patch: int = 2) -> None:
        super().__init__(model, scheduler)
        self.codec = PatchCodec(patch)

    @classmethod
    def from_config(cls, config: dict | None = None, patch: int = 2) -> EmbeddedDenoiser:
        from diffusers import FlowMatchEulerDiscreteScheduler, UNet2DModel

        cfg = dict(DEFAULT_CONFIG if config is None else config)
        return cls(UNet2DModel(**cfg), FlowMatchEulerDiscreteScheduler(shift=1.0), patch)

    @classmethod
    def from_pretrained(cls, path: str | Path = BASE_DIR, dtype: torch.dtype = torch.float32) -> EmbeddedDenoiser:
        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{path} is not an embedded teamwork model (no {META_FILE}); train one with "
                "`python -m teamwork_cli.training.pretrain` or pass a diffusers model with --base"
            )
        meta = json.loads(meta_path.read_text())
        from diffusers import FlowMatchEulerDiscreteScheduler, UNet2DModel

        model = UNet2DModel.from_pretrained(path / "unet", torch_dtype=dtype)
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(path / "scheduler")
        return cls(model, scheduler, int(meta.get("patch", 2)))

    def save_pretrained(self, path: str | Path, meta: dict | None = None, dtype: torch.dtype = torch.float16) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # fp16 halves the shipped size; the weights of a 6M-parameter net lose nothing measurable in fp16.
        model = self.model
        orig = next(model.parameters()).dtype
        model.to(dtype)
        try:
            model.save_pretrained(path / "unet")
        finally:
            model.to(orig)
        self.scheduler.save_pretrained(path / "scheduler")
        data = {"type": "teamwork-embedded", "patch": self.codec.patch, "prediction_type": self.prediction_type}
        data.update(meta or {})
        (path / META_FILE).write_text(json.dumps(data, indent=2) + "\n")

    @property
    def pixel_multiple(self) -> int:
        down = len(self.model.config.block_out_channels) - 1
        return self.codec.patch * 2**down

    def encode(self, pixels: Tensor) -> Tensor:
        return self.codec.encode(pixels)

    def decode(self, latents: Tensor) -> Tensor:
        return self.codec.decode(latents)

    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        return self.model(sample, timesteps).sample


def has_embedded_base() -> bool:
    return (BASE_DIR / META_FILE).is_file()
