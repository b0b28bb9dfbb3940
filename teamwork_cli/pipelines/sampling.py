"""The team sampler: one entry point for every backbone and task (paper section 3; docs/conventions.md section 6),
`sample_team`, and the samplers it runs, free functions of one signature as in k-diffusion's `sampling.py`.

Input teammates get their clean latents at every step, with the same timestep as the outputs; only output
teammates are denoised, by the denoiser's diffusers scheduler, and only they are decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.denoiser import TeamDenoiser, model_dtype

Callback = Callable[[int, int], None]


def check_team(layout: TeamLayout, inputs: dict[str, Tensor], outputs: list[str] | None) -> list[str]:
    """The checks every sampler makes of its inputs (the input teammates, no other) and outputs; returns the
    output teammates that run."""
    missing = [t.name for t in layout.inputs if t.name not in inputs]
    if missing:
        raise ValueError(f"inputs missing for teammates: {', '.join(missing)} (team: {', '.join(layout.names)})")
    unknown = [n for n in inputs if not layout.has(n) or not n.endswith(".in")]
    if unknown:
        raise ValueError(
            f"inputs given for {', '.join(unknown)}, which are not input teammates of "
            f"{layout.name!r}; its inputs: {', '.join(t.name for t in layout.inputs) or '(none)'}"
        )
    outs = [t.name for t in layout.outputs] if outputs is None else list(outputs)
    bad = [n for n in outs if n not in {t.name for t in layout.outputs}]
    if bad or not outs:
        raise ValueError(
            f"outputs must be a non-empty subset of {', '.join(t.name for t in layout.outputs)}; "
            f"got {', '.join(bad) or '(none)'}"
        )
    return outs


@torch.no_grad()
def sample_team(
    denoiser: TeamDenoiser,
    layout: TeamLayout,
    inputs: dict[str, Tensor],
    *,
    size: tuple[int, int] | None = None,
    num_images: int | None = None,
    outputs: list[str] | None = None,
    steps: int = 4,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    callback: Callback | None = None,
    cond: dict | None = None,
    known: dict[str, Tensor] | None = None,
    known_mask: Tensor | None = None,
    one_step: bool = False,
    start: dict[str, str] | None = None,
    start_level: float = 1.0,
) -> dict[str, Tensor]:
    """Denoise the output teammates given the input teammates (pixels in [-1, 1], [N, 3, H, W] each).

    `outputs` restricts which output teammates run (the others are inactive and cost nothing); `size` and
    `num_images` are needed only when there are no inputs. Returns decoded outputs in [-1, 1].
    `generator`: one for the whole batch, or one per image (CPU generators), so that an image's noise, and
    with it its result, does not depend on the other images of the batch.
    `known` (output name -> clean pixels in [-1, 1]) with `known_mask` ([N, 1, H, W], 1 = known): before every
    step the known region of those outputs is replaced by the clean pixels noised to the step's level, so the
    model fills only the rest in agreement with it (diffusion inpainting: Song et al. 2021, "Score-Based
    Generative Modeling through SDEs", section 5; Lugmayr et al. 2022, RePaint). Spatial latents only.
    `one_step`: the adapter is a one-step estimator (`training.finetune.team_loss`): one deterministic pass from zero at
    its last timestep, whatever `steps` and the generator say; `known` regions are left to the caller's composite.
    `start` (output -> input teammate) and `start_level` (a fraction of the last timestep): a one-step estimator
    trained with `finetune --start` begins those outputs from the input's clean latents at that noise level.
    """
    outs = check_team(layout, inputs, outputs)
    # An offloaded model's weights rest on the CPU; it runs on `execution_device` (set by TeamPipeline.load).
    device = getattr(denoiser, "execution_device", None) or next(denoiser.model.parameters()).device
    dtype = model_dtype(denoiser.model)
    in_names = list(inputs)
    if in_names:
        pixels = torch.cat([inputs[n] for n in in_names]).to(device, dtype)
        n_img = inputs[in_names[0]].shape[0]
        clean = denoiser.encode(pixels).float().unflatten(0, (len(in_names), n_img)).transpose(0, 1)  # [N, n_in, ..]
        latent_shape = clean.shape[2:]
    else:
        if size is None or num_images is None:
            raise ValueError("a team with no inputs needs size=(H, W) and num_images")
        n_img = num_images
        latent_shape = denoiser.encode(torch.zeros(1, 3, *size, device=device, dtype=dtype)).shape[1:]
    idx_in = [layout.index(n) for n in in_names]
    idx_out = [layout.index(n) for n in outs]
    active = torch.zeros(n_img, len(layout), dtype=torch.bool)
    active[:, idx_in + idx_out] = True
    batch = TeamBatch.from_active(active)
    full = torch.zeros((n_img, len(layout), *latent_shape), device=device)
    if in_names:
        full[:, idx_in] = clean
    model = TeamModel(denoiser, batch, full, idx_out, dtype, cond)
    if one_step:
        t_last = torch.tensor(float(denoiser.one_step_timestep()) * start_level)
        x = torch.zeros((n_img, len(outs), *latent_shape), device=device)  # at zero: the noise's mean
        for o, i in (start or {}).items():
            if o in outs:
                if i not in in_names:
                    raise ValueError(f"start: output {o} starts from input {i}, which is not given")
                src = full[:, layout.index(i)]
                x[:, outs.index(o)] = denoiser.add_noise(src, torch.zeros_like(src), t_last.expand(n_img).to(device))
        latents = sample_one_step(model, x.flatten(0, 1), t_last[None], callback=callback)
        return _decode(denoiser, latents, outs, n_img, dtype)
    # Noise is drawn on the CPU so that a seed gives the same result on every device.
    # The sampler's state stays in fp32 whatever the model's dtype (bf16 latents lose the small Euler steps).
    if isinstance(generator, Sequence):
        if len(generator) != n_img:
            raise ValueError(f"generator: a list needs one generator per image ({n_img}), got {len(generator)}")
        latents = torch.cat([torch.randn((len(outs), *latent_shape), generator=g) for g in generator]).to(device)
    else:
        latents = torch.randn((n_img * len(outs), *latent_shape), generator=generator).to(device)
    latents = latents * getattr(denoiser.scheduler, "init_noise_sigma", 1.0)
    timesteps = denoiser.set_timesteps(steps, latents)
    guide = _known_latents(denoiser, outs, known, known_mask, n_img, latent_shape, device, dtype)
    latents = sample_scheduler(model, latents, timesteps, callback=callback, generator=generator, guide=guide)
    return _decode(denoiser, latents, outs, n_img, dtype)


def _decode(
    denoiser: TeamDenoiser, latents: Tensor, outs: list[str], n_img: int, dtype: torch.dtype
) -> dict[str, Tensor]:
    decoded = denoiser.decode(latents.to(dtype)).float().unflatten(0, (n_img, len(outs)))
    return {n: decoded[:, k] for k, n in enumerate(outs)}


class TeamModel:
    """The team as a function of its output teammates' latents, k-diffusion's `model(x, t)`: the input teammates
    stay clean in `full`, and every call is one team forward. x: [N * n_out, ...] rows, image-major; returns the
    outputs' raw predictions (the denoiser's own parameterisation) in fp32."""

    def __init__(
        self,
        denoiser: TeamDenoiser,
        batch: TeamBatch,
        full: Tensor,
        idx_out: list[int],
        dtype: torch.dtype,
        cond: dict | None,
    ) -> None:
        self.denoiser, self.batch, self.full, self.idx_out = denoiser, batch, full, idx_out
        self.dtype, self.cond = dtype, cond or {}
        self.n_img, self.n_out = full.shape[0], len(idx_out)

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        self.full[:, self.idx_out] = x.unflatten(0, (self.n_img, self.n_out))
        rows = self.batch.to_rows(self.full)
        t_rows = t.expand(rows.shape[0]).to(self.full.device)
        pred = self.batch.from_rows(self.denoiser(rows.to(self.dtype), t_rows, self.batch, **self.cond))
        return pred[:, self.idx_out].flatten(0, 1).float()


# Samplers: free functions of one signature, (model, x, timesteps, *, callback, **extra) -> clean latents.


def sample_scheduler(
    model: TeamModel,
    x: Tensor,
    timesteps: Tensor,
    *,
    callback: Callback | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    guide: tuple[Tensor, Tensor] | None = None,
    after_step: Callable[[int, Tensor], Tensor] | None = None,
) -> Tensor:
    """The denoiser's own diffusers scheduler step by step (flow-matching Euler for SD3/Flux, DDIM/Euler for UNets).

    `after_step(i, latents) -> latents`, if given, runs after step i's scheduler update (before the callback): a
    hook for samplers that couple trajectories between steps (windows.sample_windows synchronises its windows).
    """
    den, n_img = model.denoiser, model.n_img
    # Stochastic schedulers draw step noise row by row from a list (diffusers' randn_tensor): image i's rows from
    # its own generator, as when it runs alone. CPU generators work for any device (diffusers draws on the CPU
    # and moves the noise): per-image seeds then hold for stochastic schedulers on a GPU too.
    row_gens = [g for g in generator for _ in range(model.n_out)] if isinstance(generator, Sequence) else generator
    latents = x
    for i, t in enumerate(timesteps):
        if guide is not None:  # known regions held to their clean latents noised to this step (`known`)
            x0, keep = guide
            eps = _step_noise(latents.shape, generator, n_img).to(latents.device)
            latents = torch.where(keep, _noised(den, x0, eps, t), latents)
        model_in = (
            den.scheduler.scale_model_input(latents, t) if hasattr(den.scheduler, "scale_model_input") else latents
        )
        pred = model(model_in, t)
        latents = den.scheduler.step(pred, t, latents, generator=row_gens).prev_sample
        if after_step is not None:
            latents = after_step(i, latents)
        if callback:
            callback(i + 1, len(timesteps))
    return latents


def sample_one_step(
    model: TeamModel, x: Tensor, timesteps: Tensor, *, callback: Callback | None = None, **_: object
) -> Tensor:
    """One deterministic pass at the single timestep and the clean estimate it implies (a one-step estimator,
    `finetune --one-step`; Garcia et al. 2025, "Fine-Tuning Image-Conditional Diffusion Models is Easier than You
    Think")."""
    t = timesteps[0]
    pred = model(x, t)
    est = model.denoiser.x0_from(pred, x, t.expand(x.shape[0]).to(x.device))
    if callback:
        callback(1, 1)
    return est


SAMPLERS = {"scheduler": sample_scheduler, "one-step": sample_one_step}


def _known_latents(
    denoiser: TeamDenoiser,
    outs: list[str],
    known: dict[str, Tensor] | None,
    known_mask: Tensor | None,
    n_img: int,
    latent_shape: torch.Size,
    device,
    dtype,
) -> tuple[Tensor, Tensor] | None:
    """Clean latents of the known outputs and where they hold, as rows of `latents` ([N * n_out, ...])."""
    if not known:
        return None
    bad = [n for n in known if n not in outs]
    if bad or known_mask is None:
        raise ValueError(
            f"known: {', '.join(bad)} are not running outputs ({', '.join(outs)})"
            if bad
            else "known needs known_mask ([N, 1, H, W], 1 = known)"
        )
    if len(latent_shape) != 3:
        raise ValueError(f"known regions need a spatial latent [C, h, w]; this backbone's is {list(latent_shape)}")
    h, w = latent_shape[-2:]
    factor = known_mask.shape[-2] // h
    # A latent cell is known only if every pixel it covers is: min-pooling the mask.
    keep = -F.max_pool2d(-known_mask.float().to(device), factor)[..., :h, :w] > 0.5  # [N, 1, h, w]
    x0 = torch.zeros((n_img, len(outs), *latent_shape), device=device)
    held = torch.zeros((n_img, len(outs), 1, h, w), dtype=torch.bool, device=device)
    for k, n in enumerate(outs):
        if n in known:
            x0[:, k] = denoiser.encode(known[n].to(device, dtype)).float()
            held[:, k] = keep
    return x0.flatten(0, 1), held.flatten(0, 1)


def _noised(denoiser: TeamDenoiser, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """x0 at step t in the form the scheduler keeps its latents: (1 - s) x0 + s eps for flow models; the
    scheduler's own `add_noise` otherwise (x0 + sigma eps for Euler-type, sqrt(abar) x0 + ... for DDIM/DDPM)."""
    ts = t.expand(x0.shape[0]).to(x0.device)
    if getattr(denoiser, "prediction_type", None) == "flow" or not hasattr(denoiser.scheduler, "add_noise"):
        return denoiser.add_noise(x0, eps, ts)
    return denoiser.scheduler.add_noise(x0, eps, ts)


def _step_noise(shape: torch.Size, generator: torch.Generator | Sequence[torch.Generator] | None, n_img: int) -> Tensor:
    """Fresh noise for all rows, image i's from its own generator when there is one per image."""
    if isinstance(generator, Sequence):
        per = (shape[0] // n_img, *shape[1:])
        return torch.cat([torch.randn(per, generator=g) for g in generator])
    return torch.randn(shape, generator=generator)
