"""Load a team (base denoiser + Teamwork adapter) and run it on images of any size.

`TeamPipeline` works on channel tensors in their [0, 1] file encoding ([N, C, H, W]) so that tasks never see
the model's sample space; `check_inputs()` holds every check of what a caller hands in.

Batches: the N images of one call share each forward pass but never mix (every layer is per image, and the
adapter's coordination sums only over one image's teammates), and each image's noise comes from its own seed,
so an image gives the same result alone or in any batch (up to float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.adapters.checkpoint import AdapterInfo, load_adapter, read_adapter_info
from teamwork_cli.core.devices import DTYPES, auto_dtype, resolve_device
from teamwork_cli.core.encoding import INPUT_CONVENTIONS, from_convention, from_model, to_convention, to_model
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.core.rows import map_rows
from teamwork_cli.models.denoiser import TeamDenoiser
from teamwork_cli.models.loading import load_denoiser
from teamwork_cli.pipelines.sampling import sample_team
from teamwork_cli.pipelines.tiling import (
    WindowOptions,
    latent_factor,
    make_periodic,
    recorded_resolution,
    resize_periodic,
    round_to,
)
from teamwork_cli.pipelines.windows import sample_windows


class Plan(NamedTuple):
    """`TeamPipeline.plan`: sizes in pixels; window None means one pass over the canvas."""

    ph: int
    pw: int
    th: int
    tw: int
    window: int | None
    overlap: int
    tile: bool

    def band(self, h: int) -> int:
        """The edge band `make_periodic` blends, in pixels of an input of height h: one overlap."""
        return max(1, round(self.overlap * h / self.th))


@dataclass
class TeamPipeline:
    denoiser: TeamDenoiser
    layout: TeamLayout
    info: AdapterInfo
    device: torch.device
    # sampling uses bf16 autocast on CPUs that compute it natively, faster there than fp32 (docs/embedded-model.md).
    autocast: torch.dtype | None = None

    @property
    def one_step(self) -> bool:
        """A one-step estimator (finetune --one-step): sampled in one deterministic pass; steps and seeds are moot."""
        return self.info.metadata.get("teamwork.objective") == "one-step"

    @property
    def one_step_start(self) -> tuple[dict[str, str], float]:
        """A one-step estimator's start (finetune --start): output -> input teammate, and the noise level."""
        meta = self.info.metadata
        pairs = [p.split("=", 1) for p in meta.get("teamwork.one_step_start", "").split(",") if "=" in p]
        return {o: i for o, i in pairs}, float(meta.get("teamwork.one_step_level", 1.0))

    def plan(self, h: int, w: int, resolution: int | None = None, windows: WindowOptions | None = None) -> Plan:
        """How an h x w input is processed: its size after `resolution` (ph, pw), the canvas (th, tw: a multiple of
        the denoiser's pixels), and with windows their side, overlap, and whether the canvas wraps."""
        if resolution is not None and resolution < 16:
            raise ValueError(f"resolution must be at least 16 pixels; got {resolution}")
        scale = 1.0 if resolution is None else resolution / max(h, w)
        ph, pw = max(1, round(h * scale)), max(1, round(w * scale))
        m = self.denoiser.pixel_multiple
        th, tw = math.ceil(ph / m) * m, math.ceil(pw / m) * m
        if windows is None:
            return Plan(ph, pw, th, tw, None, 0, False)
        window = round_to(windows.window or self.default_window(), m, at_least=m)
        if not windows.windowed(ph, pw, window):
            return Plan(ph, pw, th, tw, None, 0, False)
        if windows.tileable:  # no padding on a torus: the canvas is resampled to the multiple instead
            th, tw = round_to(ph, m, at_least=m), round_to(pw, m, at_least=m)
        f = latent_factor(self.denoiser)
        overlap = windows.overlap if windows.overlap is not None else window // 4
        overlap = min(max(f if windows.tileable else 0, overlap // f * f), window - f)
        return Plan(ph, pw, th, tw, window, overlap, windows.tileable)

    def default_window(self) -> int:
        """The window of `WindowOptions(window=None)`: the adapter's training resolution where its file records
        one, else the base model's native size (its config's sample_size, in pixels), else 512."""
        recorded = recorded_resolution(self.info.resolution)
        if recorded:
            return recorded
        sample_size = getattr(getattr(self.denoiser.model, "config", None), "sample_size", None)
        if isinstance(sample_size, int):
            return sample_size * latent_factor(self.denoiser)
        return 512

    @classmethod
    def load(
        cls,
        adapter: str | Path,
        *,
        base: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        offload: bool = False,
        attention_slicing: bool = False,
        compile: bool | str = False,
        **backbone_options,
    ) -> TeamPipeline:
        """A base denoiser with the adapter, ready on `device`.

        adapter: a .safetensors file, a shipped adapter's name (e.g. "svbrdf") or owner/repo/file on the hub.
        offload: keep the weights in CPU memory and move them to the GPU block by block as they run (hub
        backbones on a GPU; a no-op on a CPU and for the embedded model, which fit anywhere).
        attention_slicing: attention in slices where diffusers supports it (SD2/SDXL UNets) and the VAE one image
        at a time. compile: torch.compile the denoiser's model (True, or a torch.compile backend name).
        backbone_options: passed to `load_hub_denoiser` (prompt, guidance for Flux, ...); None means default.
        """
        if not Path(adapter).is_file():  # a shipped adapter's name, or owner/repo/file on the hub
            from teamwork_cli.models.hub.resolve import resolve_adapter

            adapter = resolve_adapter(adapter)
        info = read_adapter_info(adapter)
        base = base if base is not None else info.base_model
        dev = resolve_device(device)
        if dtype != "auto" and dtype not in DTYPES:
            raise ValueError(f"dtype must be one of auto, {', '.join(DTYPES)}; got {dtype!r}")
        auto = auto_dtype(dev) if dtype == "auto" else None
        if dev.type == "cpu" and dtype == "bf16":
            auto = torch.bfloat16
        elif dev.type != "cpu" and dtype in ("bf16", "fp16"):
            auto = DTYPES[dtype]
        # With bf16 autocast the base weights are stored in bf16 too: autocast would otherwise recast every
        # frozen weight at every call. The small adapter stays fp32 (its casts are cached).
        den = load_denoiser(base, auto or (DTYPES[dtype] if dtype in DTYPES else torch.float32), **backbone_options)
        try:
            # The adapter stays fp32 whatever the base's dtype: its layers cast their input (or autocast does).
            load_adapter(den.model, adapter, teammates=info.teammates)
        except ValueError as e:
            raise TeamworkError(
                str(e), f"the adapter was trained for base {info.base_model!r}; pass that model with --base"
            ) from e
        den.eval()
        if not (offload and dev.type != "cpu" and _enable_offload(den, dev)):
            den.to(dev)
        if attention_slicing:
            _slice_attention(den)
        if compile:
            # In place (nn.Module.compile), so `den.model` keeps its class, config and adapter layers.
            den.model.compile(**({} if compile is True else {"backend": compile}))
        # An adapter may say how it was trained to see channels; otherwise the denoiser's default holds
        # (hub backbones: the published checkpoints' convention; the embedded model: file encodings).
        convention = info.metadata.get("teamwork.input_convention")
        if convention is not None:
            if convention not in INPUT_CONVENTIONS:
                raise TeamworkError(
                    f"{adapter}: metadata teamwork.input_convention={convention!r} is not one of "
                    f"{', '.join(INPUT_CONVENTIONS)}"
                )
            den.input_convention = convention
        layout = TeamLayout.from_names(info.teammates, name=info.title)
        return cls(den, layout, info, dev, auto)

    def check_inputs(self, inputs: dict[str, Tensor], outputs: list[str] | None, steps: int) -> None:
        need = [t.name for t in self.layout.inputs]
        missing = [n for n in need if n not in inputs]
        if missing:
            raise ValueError(f"inputs: missing {', '.join(missing)}; this adapter needs {', '.join(need)}")
        extra = [n for n in inputs if n not in need]
        if extra:
            raise ValueError(f"inputs: {', '.join(extra)} are not inputs of this adapter ({', '.join(need)})")
        sizes = {tuple(x.shape[-2:]) for x in inputs.values()}
        if len(sizes) > 1:
            raise ValueError(f"inputs: all inputs must have one size, got {sorted(sizes)}")
        counts = {x.shape[0] for x in inputs.values()}
        if len(counts) > 1:
            raise ValueError(f"inputs: all inputs must hold the same number of images, got {sorted(counts)}")
        for n, x in inputs.items():
            if x.ndim != 4 or x.shape[1] not in (1, 3):
                raise ValueError(f"inputs[{n!r}] must be [N, 1|3, H, W], got {tuple(x.shape)}")
            if min(x.shape[-2:]) < 8:
                raise ValueError(f"inputs[{n!r}] is {x.shape[-1]}x{x.shape[-2]} pixels; at least 8x8 is needed")
        outs = [t.name for t in self.layout.outputs]
        if outputs is not None and (not outputs or any(o not in outs for o in outputs)):
            raise ValueError(f"outputs must be a non-empty subset of {', '.join(outs)}; got {outputs}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")

    @torch.no_grad()
    def __call__(
        self,
        inputs: dict[str, Tensor],
        *,
        outputs: list[str] | None = None,
        steps: int = 4,
        seed: int | Sequence[int] = 0,
        resolution: int | None = None,
        size: tuple[int, int] | None = None,
        num_images: int = 1,
        callback: Callable[[int, int], None] | None = None,
        known: dict[str, Tensor] | None = None,
        known_mask: Tensor | None = None,
        windows: WindowOptions | None = None,
    ) -> dict[str, Tensor]:
        """Outputs (file encoding, [N, C, H, W]) for inputs in file encoding, at the inputs' own size.

        seed: image i's noise comes from its own generator, seeded with seed + i (an int) or seed[i] (one per
        image); so image i's result does not depend on the other images of the call. To batch files that would
        each run alone with seed s, pass [s] * N.
        resolution: process with the longer side at this many pixels (default: the input size), then resize.
        known, known_mask: output teammate -> its known pixels (file encoding), and where they hold ([N, 1, H, W],
        1 = known): those regions are held to the known values while sampling (`sampling.sample_team`).
        windows: process in overlapping windows (`pipelines/tiling.py`): always with windows.tileable (the outputs
        then wrap around, all maps jointly), else when the canvas is larger than the window; None: one pass.
        """
        self.check_inputs(inputs, outputs, steps)
        if inputs:
            shape = next(iter(inputs.values())).shape
            (h, w), n_img = shape[-2:], shape[0]
        elif size is not None:
            (h, w), n_img = size, num_images
        else:
            raise ValueError("size=(H, W) is required when the team has no inputs")
        seeds = [seed + i for i in range(n_img)] if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != n_img:
            raise ValueError(f"seed: give one int or one seed per image ({n_img}); got {len(seeds)} seeds")
        plan = self.plan(h, w, resolution, windows)
        ph, pw, th, tw, window, overlap, tile = plan
        if window is not None and known and self.one_step:
            known, known_mask = None, None  # a one-step pass never holds them: its caller composites
        if window is not None and known:
            raise ValueError(
                "known regions (inpainting with a diffusion adapter) cannot be held in windows yet; "
                "drop the windows (tileable, window) or use a one-step inpainting adapter"
            )

        def prepare(n: str, x: Tensor) -> Tensor:
            x = x.float()
            if tile:  # inputs made to wrap within one overlap of the edges (`make_periodic`)
                x = make_periodic(x, plan.band(h))
            if (ph, pw) != (h, w):
                x = _resize(x, (ph, pw))
            if tile:  # the canvas resampled to the pixel multiple, periodically: a torus cannot be padded
                x = resize_periodic(x, (th, tw))
                return to_model(to_convention(n.split(".")[0], x, self.denoiser.input_convention)).to(self.device)
            # Reflect padding up to the UNet's multiple keeps the borders' statistics; it is cropped off below.
            x = F.pad(
                x, (0, tw - pw, 0, th - ph), mode="reflect" if min(ph, pw) > max(th - ph, tw - pw) else "replicate"
            )
            return to_model(to_convention(n.split(".")[0], x, self.denoiser.input_convention)).to(self.device)

        model_in = {n: prepare(n, x) for n, x in inputs.items()}
        # The model has its own copies now: inputs a caller handed over (keeping no reference) are freed here.
        del inputs
        guide: dict = {}
        if known:
            if known_mask is None:
                raise ValueError("known_mask is required with known ([N, 1, H, W], 1 = known)")
            for name, x in {**known, "known_mask": known_mask}.items():
                chans = (1,) if name == "known_mask" else (1, 3)
                if x.ndim != 4 or x.shape[0] not in (1, n_img) or x.shape[1] not in chans or x.shape[-2:] != (h, w):
                    raise ValueError(
                        f"{name}: must be [1 or {n_img}, {' or '.join(map(str, chans))}, {h}, {w}] "
                        f"(the inputs' size), got {tuple(x.shape)}"
                    )
            km = known_mask.float()
            if (ph, pw) != (h, w):  # a resized cell is known only if all of it was
                km = (_resize(km, (ph, pw)) > 0.999).float()
            guide = {
                "known": {n: prepare(n, x) for n, x in known.items()},
                "known_mask": F.pad(km, (0, tw - pw, 0, th - ph)).to(self.device),
            }  # padding: free
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        common = dict(
            size=(th, tw),
            num_images=num_images,
            outputs=outputs,
            steps=steps,
            generator=gens,
            callback=callback,
            one_step=self.one_step,
            start=self.one_step_start[0],
            start_level=self.one_step_start[1],
        )
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            if window is None:
                out = sample_team(self.denoiser, self.layout, model_in, **common, **guide)
            else:
                out = sample_windows(
                    self.denoiser,
                    self.layout,
                    model_in,
                    window=window,
                    overlap=overlap,
                    wrap=tile,
                    sync=windows.sync,
                    strength=windows.strength,
                    batch_size=windows.windows_per_pass(window),
                    **common,
                )
        del model_in, guide  # the model's copies of the inputs: a canvas each, no longer needed
        convention = self.denoiser.input_convention
        result = {}
        for n in list(out):
            x = out.pop(n)  # each output's canvas freed as soon as it is converted
            channel = n.split(".")[0]
            # Per pixel, a band of rows at a time: a whole-canvas chain of temporaries would outweigh the canvas.
            x = map_rows(lambda p: from_convention(channel, from_model(channel, p.cpu()), convention), x)  # noqa: B023
            if tile:  # back to the processed size, then the input size, both periodically: the maps still tile
                x = resize_periodic(x, (h, w))
            else:
                x = x[..., :ph, :pw]
                if (ph, pw) != (h, w):
                    x = _resize(x, (h, w))
            result[n] = x.clamp_(0, 1) if x.is_contiguous() else x.clamp(0, 1)  # x is this loop's own
        return result


def _enable_offload(den: TeamDenoiser, device: torch.device) -> bool:
    """Hub backbones only: the embedded model is a few MB, so offloading it would only cost time."""
    if _vae_of(den) is None or not hasattr(den.model, "enable_group_offload"):
        return False
    from teamwork_cli.models.hub.memory import enable_offload

    enable_offload(den, device)
    return True


def _slice_attention(den: TeamDenoiser) -> None:
    # Only diffusers' UNets slice attention; SD3/Flux transformers use PyTorch's SDPA, which on a GPU never
    # builds the full attention matrix anyway.
    if hasattr(den.model, "set_attention_slice"):
        den.model.set_attention_slice("auto")
    vae = _vae_of(den)
    if vae is not None:
        vae.enable_slicing()  # a batch goes through the VAE one image at a time


def _vae_of(den: TeamDenoiser):
    """The hub backbones' VAE; None for the embedded model (its codec is a lossless pixel reshuffle)."""
    return getattr(getattr(den, "codec", None), "vae", None)


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Area filter to shrink (no aliasing), bilinear to enlarge."""
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
