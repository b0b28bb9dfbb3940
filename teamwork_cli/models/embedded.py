"""The embedded default model: a small pixel-space UNet that ships with the package and runs on a CPU.

Design (numbers in docs/embedded-model.md): a UNet with diffusers' `UNet2DModel` architecture (`models/unet.py`,
which loads and saves diffusers' folder format without importing diffusers) on 2x2 pixel patches
(`PatchCodec`), trained by rectified flow on the project's procedural materials, sampled with diffusers'
`FlowMatchEulerDiscreteScheduler`, so it shares the SD3 code path for the schedule and the target.  The
scheduler is built on first use: one-step estimation needs only its `num_train_timesteps`, and diffusers'
import would cost more than the model's pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from teamwork_cli.models.denoiser import PatchCodec, TeamDenoiser
from teamwork_cli.models.unet import EmbeddedUNet

if TYPE_CHECKING:  # diffusers is imported where a scheduler is built
    from diffusers import FlowMatchEulerDiscreteScheduler

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


SCHEDULER = {"shift": 1.0}  # FlowMatchEulerDiscreteScheduler's settings for a model trained from config
TRAIN_TIMESTEPS = 1000  # diffusers' default num_train_timesteps: timesteps are sigma * 1000


class EmbeddedDenoiser(TeamDenoiser):
    prediction_type = "flow"

    def __init__(
        self, model: EmbeddedUNet, scheduler: FlowMatchEulerDiscreteScheduler | dict | None = None, patch: int = 2
    ) -> None:
        """scheduler: a diffusers scheduler, or its config (a dict) to build one from when sampling first needs it."""
        self._scheduler_config = dict(SCHEDULER) if scheduler is None else scheduler
        # Channels-last (NHWC) weights and activations: oneDNN's convolutions and group norms run about 1.35x
        # faster so on a CPU (benchmarks/svbrdf_speed.py), and the adapters' 1x1 offsets become plain matmuls.
        super().__init__(model.to(memory_format=torch.channels_last), None)
        self.codec = PatchCodec(patch)

    @property
    def scheduler(self) -> FlowMatchEulerDiscreteScheduler:
        if isinstance(self._scheduler_config, dict):
            from diffusers import FlowMatchEulerDiscreteScheduler

            cfg = {k: v for k, v in self._scheduler_config.items() if not k.startswith("_")}
            self._scheduler_config = FlowMatchEulerDiscreteScheduler.from_config(cfg)
        return self._scheduler_config

    @scheduler.setter
    def scheduler(self, value: FlowMatchEulerDiscreteScheduler | dict | None) -> None:
        if value is not None:  # TeamDenoiser.__init__ passes None: the config given to __init__ stands
            self._scheduler_config = value

    @property
    def num_train_timesteps(self) -> int:
        cfg = self._scheduler_config
        if isinstance(cfg, dict):
            return int(cfg.get("num_train_timesteps", TRAIN_TIMESTEPS))
        return int(cfg.config.num_train_timesteps)

    @classmethod
    def from_config(cls, config: dict | None = None, patch: int = 2) -> EmbeddedDenoiser:
        return cls(EmbeddedUNet(dict(DEFAULT_CONFIG if config is None else config)), None, patch)

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
        model = EmbeddedUNet.from_pretrained(path / "unet", dtype)
        scheduler = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
        return cls(model, scheduler, int(meta.get("patch", 2)))

    def save_pretrained(self, path: str | Path, meta: dict | None = None, dtype: torch.dtype = torch.float16) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # fp16 halves the shipped size; the weights of a 6M-parameter net lose nothing measurable in fp16.
        self.model.save_pretrained(path / "unet", dtype)
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
        out = self.model(sample.contiguous(memory_format=torch.channels_last), timesteps).sample
        return out.contiguous()  # callers view the prediction as NCHW


def has_embedded_base() -> bool:
    return (BASE_DIR / META_FILE).is_file()
