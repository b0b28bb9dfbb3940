"""Train a Teamwork adapter on any channel set (paper section 4): the loss of `teamwork finetune`.

Every image of a batch has its own set of active teammates: the channels its sample has, minus random teammate
dropout (`dropout`), so one adapter learns from heterogeneous data. Input teammates are clean at the image's
timestep; the loss covers output teammates only, with the target the base model's scheduler defines.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.core.encoding import to_model
from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.denoiser import TeamDenoiser

# A batch source: (batch_size, generator) -> channel -> [N, C, H, W] in [0, 1] file encoding. An image lacking a
# channel has NaN there (folder data with missing files), so its teammate is inactive. A key may also name one
# teammate ("image.in"), which then gets that tensor instead of its channel's (inpainting's blanked input).
BatchSource = Callable[[int, torch.Generator], dict[str, Tensor]]


def draw_active(available: Tensor, is_output: Tensor, dropout: float, g: torch.Generator) -> Tensor:
    """Drop each available teammate with probability `dropout`, keeping at least one output per image."""
    keep = torch.rand(available.shape, generator=g) >= dropout
    active = available & keep
    lost = ~(active & is_output).any(dim=1)
    if lost.any():  # give such images back one of their available outputs, at random
        scores = torch.rand(available.shape, generator=g) * (available & is_output)
        pick = scores.argmax(dim=1)
        active[lost, pick[lost]] = True
    return active


def team_loss(
    layout: TeamLayout,
    source: BatchSource,
    batch_size: int,
    dropout: float = 0.0,
    logit_mean: float = 0.0,
    one_step: bool = False,
    start: dict[str, str] | None = None,
    start_level: float = 1.0,
    hole_loss: bool = False,
):
    """The finetuning loss as a `loop.LossFn`.

    one_step: train the adapter as a deterministic one-step estimator instead of a denoiser: outputs start from
    zero (the noise's mean) at the last timestep and the loss is on the clean outputs the prediction implies
    (Garcia et al. 2025, "Fine-Tuning Image-Conditional Diffusion Models is Easier than You Think", section 4).
    All training then goes to the one condition inference meets: estimation tasks, not generation.
    start (output -> input teammate), start_level (a fraction of the last timestep): those outputs start from the
    input's clean latents noised by the noise's mean to that level, a one-step refinement of a guess the team is
    given (SDEdit's start from a guide, Meng et al. 2022, with a one-step objective), e.g. shading's deferred image.
    hole_loss: inpainting teams (with mask.in): the loss counts only the latent pixels the hole touches, and their
    neighbours (the seam), since `teamwork inpaint` composites the input back everywhere else; a loss over the whole
    image is mostly the reward for copying the context through.
    """
    names = layout.names
    if hole_loss and not layout.has("mask.in"):
        raise ValueError(f"hole loss needs a mask.in teammate (an inpainting team); the team is {', '.join(names)}")
    is_output = torch.tensor([not t.is_input for t in layout.teammates])
    starts = check_start(layout, start or {}, start_level, one_step)

    def loss_fn(model: TeamDenoiser, g: torch.Generator) -> Tensor:
        den = model.module if hasattr(model, "module") else model  # unwrap DDP for the codec and schedule
        with torch.autocast(next(den.model.parameters()).device.type, enabled=False):
            data = source(batch_size, g)  # renderers inside sources must stay fp32 under the trainer's autocast
        data = {
            t.name: data[t.name] if t.name in data else data[t.channel]
            for t in layout.teammates
            if t.name in data or t.channel in data
        }  # per teammate: its own key, else its channel's
        n = batch_size
        available = torch.stack(
            [
                ~torch.isnan(data[t.name]).flatten(1).any(1) if t.name in data else torch.zeros(n, dtype=torch.bool)
                for t in layout.teammates
            ],
            1,
        )
        if not (available & is_output).any(dim=1).all():
            raise ValueError(
                "every training sample needs at least one output channel of the team "
                f"({', '.join(t.name for t in layout.outputs)})"
            )
        active = draw_active(available, is_output, dropout, g)
        batch = TeamBatch.from_active(active)
        device = next(den.model.parameters()).device
        pixels = torch.stack(
            [
                to_model(
                    torch.nan_to_num(data[t.name])
                    if t.name in data
                    else torch.zeros(n, 1, *next(iter(data.values())).shape[-2:])
                )
                for t in layout.teammates
            ],
            1,
        )  # [N, T, 3, H, W]
        x0 = den.encode(pixels.flatten(0, 1).to(device)).unflatten(0, (n, len(names)))
        if one_step:  # outputs at zero (the noise's mean), or at their start input noised by its mean
            t_img = torch.full((n,), float(den.one_step_timestep()) * start_level, device=device)
            noisy = torch.zeros_like(x0)
            for o, i in starts.items():
                noisy[:, o] = den.add_noise(x0[:, i], torch.zeros_like(x0[:, i]), t_img)
        else:
            t_img = den.draw_timesteps(n, g, device, logit_mean=logit_mean)
            eps = torch.randn(x0.shape, generator=g).to(device)
            t_full = t_img[:, None].expand(n, len(names)).flatten()
            noisy = den.add_noise(x0.flatten(0, 1), eps.flatten(0, 1), t_full).unflatten(0, (n, len(names)))
        x_in = torch.where(is_output.to(device).view(1, -1, *[1] * (x0.ndim - 2)), noisy, x0)
        rows = batch.to_rows(x_in)
        t_rows = t_img[batch.group_ids.to(device)]
        pred = model(rows, t_rows, batch)
        out_rows = is_output.to(device)[batch.teammate_ids.to(device)]
        weight = None
        if hole_loss:
            weight = batch.to_rows(hole_weights(layout, data["mask.in"], active, x0.shape[-2:]).to(device))[out_rows]
        if one_step:
            est = den.x0_from(pred[out_rows].float(), rows[out_rows].float(), t_rows[out_rows])
            return weighted_mse(est, batch.to_rows(x0)[out_rows].float(), weight)
        target = den.target(x0.flatten(0, 1), eps.flatten(0, 1), t_full).unflatten(0, (n, len(names)))
        return weighted_mse(pred[out_rows].float(), batch.to_rows(target)[out_rows].float(), weight)

    return loss_fn


def hole_weights(layout: TeamLayout, mask: Tensor, active: Tensor, size: tuple[int, ...]) -> Tensor:
    """[N, T, 1, h, w] loss weights of `team_loss(hole_loss=True)`: 1 on the latent cells a hole touches (pixels
    above 0.5, as `teamwork inpaint` reads a mask) and one cell around them (the seam), 0 elsewhere. Everywhere 1
    for an output with no input of its channel (nothing is composited back into it) and for a sample whose mask
    is missing (NaN) or whose mask teammate was dropped (the team cannot see that hole)."""
    n, k = active.shape
    known = ~torch.isnan(mask).flatten(1).any(1) & active[:, layout.index("mask.in")]
    hole = F.adaptive_max_pool2d((torch.nan_to_num(mask[:, :1]) > 0.5).float(), size)
    hole = F.max_pool2d(hole, 3, stride=1, padding=1)
    hole = torch.where(known.view(n, 1, 1, 1), hole, torch.ones_like(hole))
    pasted = torch.tensor([not t.is_input and layout.has(f"{t.channel}.in") for t in layout.teammates])
    return torch.where(pasted.view(1, k, 1, 1, 1), hole[:, None], torch.ones(n, k, 1, *size))


def weighted_mse(a: Tensor, b: Tensor, weight: Tensor | None) -> Tensor:
    """Mean squared error over the pixels of `weight` [rows, 1, h, w] (all pixels when None)."""
    if weight is None:
        return F.mse_loss(a, b)
    return ((a - b) ** 2 * weight).sum() / (weight.sum() * a.shape[1]).clamp_min(1.0)


def check_start(layout: TeamLayout, start: dict[str, str], level: float, one_step: bool) -> dict[int, int]:
    """Teammate indices output -> input of a one-step start (`team_loss`), validated."""
    if (start or level != 1.0) and not one_step:
        raise ValueError("start: a start (and its level) is for one-step estimators; add --one-step")
    if not 0 < level <= 1:
        raise ValueError(f"start level must be in (0, 1], got {level}")
    outs, ins = {t.name for t in layout.outputs}, {t.name for t in layout.inputs}
    for o, i in start.items():
        if o not in outs or i not in ins:
            raise ValueError(
                f"start {o}={i}: must be OUTPUT=INPUT teammates; outputs {', '.join(sorted(outs))}, "
                f"inputs {', '.join(sorted(ins)) or '(none)'}"
            )
    return {layout.index(o): layout.index(i) for o, i in start.items()}


PROCEDURAL = ("svbrdf", "scenes", "inpaint", "synthesize")


def make_source(
    data: str,
    layout: TeamLayout,
    size: int,
    *,
    pool: int = 1536,
    pool_seed: int = 0,
    cache: str | Path | None = None,
    hole_fill: str = "grey",
) -> BatchSource:
    """A folder of samples, or generated data: `procedural:svbrdf` (views of cached procedural materials with
    flash photos), `procedural:scenes` (3D scenes with exact intrinsic buffers, `procedural.scenes`),
    `procedural:inpaint` (images or materials with random masks) or `procedural:synthesize` (materials with their
    exact flash render).

    hole_fill: what procedural:inpaint shows in the holes (grey or harmonic; other sources take only grey).
    Procedural training data never uses evaluation seeds (`procedural.scenes.EVAL_SEED0` = 10,000,000 and above).
    """
    from teamwork_cli.graphics.holefill import HOLE_FILLS

    if hole_fill not in HOLE_FILLS:
        raise ValueError(f"hole fill must be one of {', '.join(HOLE_FILLS)}; got {hole_fill!r}")
    if hole_fill != "grey" and data != "procedural:inpaint":
        raise ValueError(f"hole fill {hole_fill!r} applies to --data procedural:inpaint only; got --data {data}")
    if data.startswith("procedural:"):
        kind = data.split(":", 1)[1]
        if kind not in PROCEDURAL:
            raise ValueError(
                f"--data procedural:{kind}: unknown generator; available: "
                f"{', '.join('procedural:' + k for k in PROCEDURAL)}"
            )
        from teamwork_cli.training import task_data
        from teamwork_cli.training.data import encoded_views, load_or_build_pool

        root = Path(cache) if cache else Path(os.environ.get("TEAMWORK_CACHE", Path.home() / ".cache" / "teamwork"))
        mats: dict[str, Tensor] = {}

        def materials() -> dict[str, Tensor]:  # built (or read from the cache) on first use only
            if not mats:
                mats.update(load_or_build_pool(root / f"pool_{pool}_256_{pool_seed}.pt", pool, 256, pool_seed))
            return mats

        if kind == "scenes":
            return task_data.scene_source(layout, size)
        if kind == "inpaint":
            return task_data.inpaint_source(layout, size, materials, hole_fill)
        if kind == "synthesize":
            return task_data.synthesize_source(layout, size, materials)
        wanted = {t.channel for t in layout.teammates}
        known = {"image", "halfway", "diffuse", "specular", "roughness", "normals"}
        if not wanted <= known:
            raise ValueError(
                f"procedural:svbrdf makes {', '.join(sorted(known))}; the team also needs "
                f"{', '.join(sorted(wanted - known))}"
            )
        materials()
        return lambda n, g: {k: v for k, v in encoded_views(mats, n, size, g).items() if k in wanted}
    from teamwork_cli.training.data import FolderSource

    return FolderSource(data, [t.channel for t in layout.teammates], size, [t.channel for t in layout.outputs])


def train_adapter(
    layout: TeamLayout,
    source: BatchSource,
    out: str | Path,
    *,
    base: str | None = None,
    transformer: str | Path | None = None,
    steps: int = 1000,
    batch_size: int = 8,
    grad_accum: int = 1,
    rank: int = 16,
    coordination: bool = True,
    optimizer: str = "adamw",
    lr: float = 1e-3,
    warmup: int = 50,
    schedule: str = "cosine",
    clip: float = 1.0,
    dropout: float = 0.0,
    seed: int = 0,
    resolution: int | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    mixed_precision: str = "auto",
    title: str | None = None,
    command: str = "",
    progress=None,
    denoiser: TeamDenoiser | None = None,
    logit_mean: float = 0.0,
    init: str | Path | None = None,
    one_step: bool = False,
    metadata: dict[str, str] | None = None,
    start: dict[str, str] | None = None,
    start_level: float = 1.0,
    hole_loss: bool = False,
    joint_attention: bool = False,
    attn_allow: str | None = None,
) -> int:
    """Inject a fresh adapter into the base (or, with `init`, one starting from that file's weights), train it, and
    write it in the published format. one_step: a one-step estimator (`team_loss`), marked so in the file's
    metadata (teamwork.objective, and its start: teamwork.one_step_start, teamwork.one_step_level), which the
    pipeline reads to sample it the same way. metadata: more entries for the file (e.g. teamwork.hole_fill, which
    the inpaint task reads). hole_loss: the loss covers an inpainting team's holes only (`team_loss`).
    joint_attention: the teammates of each image also attend to each other (the reference's *_PLUSATTN profiles,
    models/joint_attention.py), masked by attn_allow ("100;011;011"), at the profile's default RoPE image ids;
    the file records the markers, the mask and the ids. transformer: a GGUF file of the base's transformer
    (models/hub/gguf.py): the frozen base runs quantized, the adapter trains as usual; its file name is recorded
    (teamwork.transformer)."""
    from teamwork_cli.adapters.checkpoint import init_adapter, save_adapter
    from teamwork_cli.adapters.config import JOINT_SUFFIX, default_image_ids, parse_attn_allow
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt, profile_for
    from teamwork_cli.models.loading import load_denoiser
    from teamwork_cli.training.loop import TrainConfig, run_precision, train

    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if attn_allow is not None and not joint_attention:
        raise ValueError("attn_allow masks joint attention: pass joint_attention=True (--joint-attention) with it")
    allow = None if attn_allow is None else parse_attn_allow(attn_allow, len(layout))
    # Built first: it validates the start and the hole loss before the base loads.
    loss = team_loss(layout, source, batch_size, dropout, logit_mean, one_step, start, start_level, hole_loss)
    torch.manual_seed(seed)  # the adapter's init
    den = denoiser if denoiser is not None else load_denoiser(base, transformer=transformer)
    if resolution and resolution % den.pixel_multiple:
        m = den.pixel_multiple
        raise ValueError(
            f"resolution {resolution} is not a multiple of {m}, as this base needs (its latent grid "
            f"and downsampling); e.g. {max(m, resolution // m * m)} or {(resolution // m + 1) * m}"
        )
    # Resolved here, not in train(): the frozen base's dtype below depends on it.
    mixed_precision = run_precision(mixed_precision, Path(out).with_name(Path(out).name + ".state.pt"), resume)
    if mixed_precision == "bf16":  # the frozen base in bf16: autocast would recast its weights at every call
        # nn.Module.to, not diffusers' override: that one warns about fp32-only modules even when a model has none
        torch.nn.Module.to(den.model, torch.bfloat16)
        from teamwork_cli.models.hub.gguf import set_compute_dtype

        set_compute_dtype(den.model, torch.bfloat16)  # GGUF layers: dequantize into bf16 too (uint8 blocks stay)
    profile = profile_for(den.model)
    inject_adapter(den.model, layers_to_adapt(den.model, profile), len(layout), rank, communication=coordination)
    # The reference's default offsets (all 0 without joint attention), where its files record them.
    image_ids = default_image_ids(profile.name, len(layout)) if profile.records_image_ids else None
    if joint_attention:  # shares the adapters' team state, so team_context drives both
        from teamwork_cli.models.joint_attention import enable_joint_attention

        image_ids = default_image_ids(profile.name + JOINT_SUFFIX, len(layout))
        enable_joint_attention(den.model, attn_allow=allow, image_ids=image_ids)
    extra = {
        "teamwork.command": command,
        "teamwork.objective": "one-step" if one_step else "diffusion",
        **(metadata or {}),
    }
    if start or start_level != 1.0:
        extra["teamwork.one_step_start"] = ",".join(f"{o}={i}" for o, i in (start or {}).items())
        extra["teamwork.one_step_level"] = repr(float(start_level))
    if hole_loss:
        extra["teamwork.loss"] = "hole"
    if transformer is not None:
        extra["teamwork.transformer"] = Path(transformer).name
    if init is not None:
        info = init_adapter(den.model, init, layout.names, coordination)
        extra["teamwork.init"] = f"{Path(init).name} ({info.metadata.get('teamwork.train_steps', '?')} steps)"
    out = Path(out)
    base_name = base or "embedded"

    def save(model: TeamDenoiser, step: int) -> None:
        save_adapter(
            model.model,
            out,
            layout.names,
            base_model=base_name,
            profile=profile.name,
            title=title or f"teamwork {layout.name}",
            architecture=base_name,  # modelspec.architecture = <base_model>/teamwork, as the reference writes it
            resolution=resolution,
            extra={"teamwork.train_steps": str(step), **extra},
            teammate_image_ids=image_ids,
            attn_allow=attn_allow,
        )

    cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        warmup=warmup,
        grad_accum=grad_accum,
        clip=clip,
        seed=seed,
        checkpoint_every=checkpoint_every,
        mixed_precision=mixed_precision,
    )
    return train(
        den, loss, cfg, out.with_name(out.name + ".state.pt"), resume=resume, on_checkpoint=save, progress=progress
    )
