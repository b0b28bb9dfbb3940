"""Synchronised team trajectories over windows: a canvas larger than the model's native size, or one that wraps
around (tileable maps), sampled as overlapping windows.

Every window runs the whole team (all teammates at once, so its output maps stay aligned with each other and with
its crop of the inputs); the windows' trajectories start from one canvas of noise, cropped per window, and are
synchronised after every step by one of (`sync`):

- "none": independent windows, decoded one by one and blended in the overlaps at the end;
- "average": MultiDiffusion (Bar-Tal et al. 2023): each latent cell becomes the weighted mean of the windows'
  values there after every step;
- "syncsde": SyncSDE (Lee, Lee & Han, CVPR 2025, arXiv 2503.21555): each window keeps its own score and adds a
  correlation term, a Gaussian tie of its overlaps to the other windows whose width follows the noise level and
  one strength (the equations, and how they follow the paper, are in `sync.py`).

Which SyncSDE correlation. The paper models the correlation between trajectories per task; for wide images (its
panorama application, the case closest to ours) it ties each patch to the previous one by a Gaussian of their
difference on the overlap. That is the correlation used here, for all our tasks. Material maps and intrinsic
layers estimated from a photo are (nearly) functions of the photo, which overlapping windows see identically, so
two windows' maps should simply agree cell for cell where they overlap, for every teammate alike; nothing calls
for the paper's other models (a masked foreground/background relation, the transformations of its visual
anagrams). Material synthesis has no inputs, and a tileable one wants the same agreement on a torus
(`wrap=True`). Only the partner of the tie differs: each window is tied to the canvas fused from all windows
rather than to a predecessor in a chain, which on a 2D grid or a torus conditions windows on unrelated
trajectories and left seams in our few-step setting (`sync.py`).

Memory: the model sees `batch_size` windows at a time (each a full team), the codec one chunk of windows; what
spans the canvas is latent (every window's latents and clean inputs: a few latent canvases) and the decoded result.
Results do not depend on `batch_size` (up to float rounding): each window and image is its own group of the team
batch and gets its crop of the same canvas noise. Known regions (`sample_team`'s known/known_mask) are not
supported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.denoiser import TeamDenoiser, model_dtype
from teamwork_cli.pipelines.blend import _blend, _Blender
from teamwork_cli.pipelines.sampling import Callback, TeamModel, check_team, sample_one_step, sample_scheduler
from teamwork_cli.pipelines.sync import SYNCS, average_windows, syncsde_fraction, syncsde_windows

__all__ = ["SYNCS", "plan_windows", "sample_windows", "window_weights"]


def _axis(size: int, window: int, overlap: int, wrap: bool) -> list[int]:
    if wrap:  # n windows evenly round the circle; each gap <= window - overlap, also across the seam
        n = math.ceil(size / (window - overlap))
        return [round(i * size / n) for i in range(n)]
    if size <= window:
        return [0]
    n = math.ceil((size - overlap) / (window - overlap))  # first at 0, last flush with the edge, even gaps
    return [round(i * (size - window) / (n - 1)) for i in range(n)]


def plan_windows(height: int, width: int, window: int, overlap: int, *, wrap: bool) -> list[tuple[int, int]]:
    """Top-left corners (y, x), in raster order, of square windows of side `window` covering a height x width
    canvas, neighbours overlapping by at least `overlap` (any one unit: pixels or latent cells).

    wrap=False: windows stay inside the canvas and the last of each row and column is flush with its edge; a side
    no longer than the window gets one window (`sample_windows` clips it to the canvas). wrap=True: the canvas is
    a torus; windows may cross the right and bottom edges and wrap round, and neighbours overlap across the seam
    too; a side shorter than the window is tiled (the window covers it more than once).
    """
    for name, value in (("height", height), ("width", width), ("window", window)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 0 <= overlap < window:
        raise ValueError(f"overlap must be an int in [0, window - 1] = [0, {window - 1}], got {overlap!r}")
    if not isinstance(wrap, bool):
        raise ValueError(f"wrap must be True or False, got {wrap!r}")
    ys, xs = _axis(height, window, overlap, wrap), _axis(width, window, overlap, wrap)
    return [(y, x) for y in ys for x in xs]


def _ramp(n: int, overlap: int) -> Tensor:
    """1 inside, a raised-cosine taper sin^2(pi/2 (d + 1/2) / r) over the r = overlap cells nearest each end
    (d: distance to the end): it never reaches 0, and two tapers overlapping by exactly r sum to 1."""
    d = torch.minimum(torch.arange(n), torch.arange(n).flip(0)).double()
    r = max(1, overlap)
    return torch.where(d < r, torch.sin(math.pi / 2 * (d + 0.5) / r) ** 2, torch.ones(n, dtype=torch.double)).float()


def window_weights(height: int, width: int, overlap: int) -> Tensor:
    """Blending weights [height, width] of one window: a separable raised-cosine taper over `overlap` cells at
    each edge, positive everywhere (so every covered canvas cell has positive total weight)."""
    return _ramp(height, overlap)[:, None] * _ramp(width, overlap)[None, :]


def _cells(corners: list[tuple[int, int]], h: int, w: int, height: int, width: int) -> Tensor:
    """[windows, h, w] flat canvas index (y * width + x, modulo the canvas) of every window cell."""
    ys = torch.tensor([c[0] for c in corners])[:, None] + torch.arange(h)[None]
    xs = torch.tensor([c[1] for c in corners])[:, None] + torch.arange(w)[None]
    return (ys % height)[:, :, None] * width + (xs % width)[:, None, :]


class _WindowTeam:
    """All windows as one k-diffusion model(x, t): x is every window's output rows ([windows * N * n_out, ...],
    window-major, then image-major as in `TeamModel`); a call runs the team on `batch_size` windows at a time,
    each window's N images as groups of their own, with that window's clean input latents."""

    def __init__(
        self,
        denoiser: TeamDenoiser,
        num_teammates: int,
        idx_in: list[int],
        idx_out: list[int],
        clean: Tensor | None,
        n_win: int,
        n_img: int,
        latent_shape: torch.Size,
        dtype: torch.dtype,
        cond: dict | None,
        batch_size: int,
        device,
    ) -> None:
        self.denoiser, self.idx_in, self.idx_out, self.clean = denoiser, idx_in, idx_out, clean
        self.n_win, self.per_window, self.n_out = n_win, n_img, len(idx_out)
        self.n_img = n_win * n_img  # as sample_scheduler counts images: one per (window, image)
        self.batch_size, self.num_teammates, self.latent_shape = batch_size, num_teammates, latent_shape
        self.dtype, self.cond, self.device = dtype, cond, device
        self._models: dict[int, TeamModel] = {}

    def _model(self, b: int) -> TeamModel:
        if b not in self._models:
            active = torch.zeros(b * self.per_window, self.num_teammates, dtype=torch.bool)
            active[:, self.idx_in + self.idx_out] = True
            full = torch.zeros((b * self.per_window, self.num_teammates, *self.latent_shape), device=self.device)
            self._models[b] = TeamModel(
                self.denoiser, TeamBatch.from_active(active), full, self.idx_out, self.dtype, self.cond
            )
        return self._models[b]

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        rows = self.per_window * self.n_out
        preds = []
        for s in range(0, self.n_win, self.batch_size):
            e = min(s + self.batch_size, self.n_win)
            model = self._model(e - s)
            if self.clean is not None:
                model.full[:, self.idx_in] = self.clean[s:e].flatten(0, 1)
            preds.append(model(x[s * rows : e * rows], t))
        return torch.cat(preds)


def _check_team(layout: TeamLayout, inputs: dict[str, Tensor], outputs: list[str] | None) -> list[str]:
    """sample_team's checks (`sampling.check_team`), and that the inputs share one size; returns the outputs."""
    outs = check_team(layout, inputs, outputs)
    shapes = {(x.shape[0], *x.shape[-2:]) for x in inputs.values()}
    if len(shapes) > 1 or any(x.ndim != 4 for x in inputs.values()):
        raise ValueError(
            f"inputs must all be [N, 3, H, W] with one N, H and W; got "
            f"{', '.join(f'{n}: {list(x.shape)}' for n, x in inputs.items())}"
        )
    return outs


@torch.no_grad()
def sample_windows(
    denoiser: TeamDenoiser,
    layout: TeamLayout,
    inputs: dict[str, Tensor],
    *,
    window: int,
    overlap: int,
    wrap: bool = False,
    sync: str = "syncsde",
    strength: float = 1.0,
    size: tuple[int, int] | None = None,
    num_images: int | None = None,
    outputs: list[str] | None = None,
    steps: int = 4,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    batch_size: int = 1,
    callback: Callback | None = None,
    cond: dict | None = None,
    one_step: bool = False,
    start: dict[str, str] | None = None,
    start_level: float = 1.0,
) -> dict[str, Tensor]:
    """`sample_team` over overlapping windows of the canvas: the input teammates' pixels ([N, 3, H, W] in [-1, 1]
    each; or `size` = (H, W) and `num_images` with no inputs) in, the decoded outputs at full canvas size out.

    window, overlap: the windows' side and their least overlap, in pixels; window a multiple of the denoiser's
    `pixel_multiple`, overlap of its latent cell (e.g. 8 pixels for the hub backbones' VAEs, 2 for the embedded
    model's patches), and at least one cell with wrap=True. wrap: the canvas is a torus (tileable outputs); without
    it a window no smaller than the canvas is clipped to it, and one window is exactly `sample_team`.
    sync: "none", "average" or "syncsde" (module docstring); strength: SyncSDE's 1 / lambda, >= 0 (0: no coupling,
    large: "average"; `sync.py`).
    batch_size: how many windows share a forward (and a codec call); the results do not depend on it.
    generator: one, or one per image (CPU generators), as sample_team: the canvas noise is drawn once from it
    and cropped per window. one_step, start, start_level: a one-step estimator, as sample_team: a single pass per
    window; "average" fuses the windows' estimates in latent space before decoding, the others (no trajectories
    to synchronise) blend the decoded windows.
    Every window's inputs are encoded on their own crop, so a latent codec sees what it sees at its native size.
    """
    outs = _check_team(layout, inputs, outputs)
    if sync not in SYNCS:
        raise ValueError(f"sync must be one of {', '.join(SYNCS)}; got {sync!r}")
    if not (isinstance(strength, int | float) and math.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a finite number >= 0 (SyncSDE's 1 / lambda); got {strength!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (windows per forward); got {batch_size!r}")
    if not isinstance(wrap, bool):
        raise ValueError(f"wrap must be True or False, got {wrap!r}")
    m = denoiser.pixel_multiple
    if not isinstance(window, int) or window < m or window % m:
        raise ValueError(
            f"window must be a positive multiple of {m} pixels (the denoiser's pixel_multiple); got {window!r}"
        )
    if not isinstance(overlap, int) or not 0 <= overlap < window:
        raise ValueError(f"overlap must be an int in [0, window - 1] = [0, {window - 1}] pixels; got {overlap!r}")
    device = getattr(denoiser, "execution_device", None) or next(denoiser.model.parameters()).device
    dtype = model_dtype(denoiser.model)
    in_names = list(inputs)
    if in_names:
        first = inputs[in_names[0]]
        n_img, (height, width) = first.shape[0], first.shape[-2:]
    else:
        if size is None or num_images is None:
            raise ValueError("a team with no inputs needs size=(H, W) and num_images")
        n_img, (height, width) = num_images, size
    n_out = len(outs)

    # Geometry: the codec's factor from one window of pixels, windows planned in latent cells.
    win_h, win_w = (window, window) if wrap else (min(window, height), min(window, width))
    latent_shape = denoiser.encode(torch.zeros(1, 3, win_h, win_w, device=device, dtype=dtype)).shape[1:]
    if len(latent_shape) != 3:
        raise ValueError(f"sample_windows needs a spatial latent [C, h, w]; this backbone's is {list(latent_shape)}")
    _, hl, wl = latent_shape
    f = win_h // hl
    if hl * f != win_h or wl * f != win_w:
        raise ValueError(f"the codec maps {win_w}x{win_h} pixels to {wl}x{hl} latent cells: not one integer factor")
    if height % f or width % f:
        raise ValueError(
            f"the canvas ({width}x{height} pixels) must be a multiple of {f} pixels, this denoiser's latent cell"
        )
    if overlap % f or (wrap and overlap < f):
        raise ValueError(
            f"overlap must be a multiple of {f} pixels (this denoiser's latent cell)"
            f"{', and at least one cell with wrap=True' if wrap else ''}; got {overlap}"
        )
    lat_h, lat_w, lat_overlap = height // f, width // f, overlap // f
    corners = plan_windows(lat_h, lat_w, window // f, lat_overlap, wrap=wrap)
    n_win = len(corners)
    exact = n_win == 1 and (hl, wl) == (lat_h, lat_w)  # one window, the canvas: sample_team itself
    pix_corners = [(y * f, x * f) for y, x in corners]

    def pix_cells(s: int, e: int) -> Tensor:
        """Windows s..e-1's canvas pixels ([e - s, h, w], long), made per batch: for every window at once they
        would be 8 bytes a pixel, enlarged by the overlaps (240 MB at 4096 x 4096 in 128 px windows)."""
        return _cells(pix_corners[s:e], win_h, win_w, height, width)

    def encode_windows(s: int, b: int) -> Tensor:
        """Windows s..s+b-1's crops of the inputs, encoded: [b, N, n_in, C, h, w]. Each input is cropped where
        it lies: a stacked copy of all of them would cost a canvas of pixels per input."""
        crops = torch.stack(
            [inputs[n].flatten(-2)[..., pix_cells(s, s + b).to(inputs[n].device)] for n in in_names]
        ).permute(3, 0, 1, 2, 4, 5)  # [n_in, N, 3, b, h, w] -> [b, n_in, N, 3, h, w]
        z = denoiser.encode(crops.reshape(-1, *crops.shape[3:]).to(device, dtype)).float()
        return z.unflatten(0, (b, len(in_names), n_img)).transpose(1, 2)

    idx_in = [layout.index(n) for n in in_names]
    idx_out = [layout.index(n) for n in outs]
    blend_weights = window_weights(win_h, win_w, overlap)

    if one_step and sync != "average" and not exact:
        # One pass per window and the decoded windows blended: batch by batch, each batch's inputs encoded,
        # estimated, decoded and added to the canvas before the next, so memory holds the canvas and one batch
        # rather than every window's latents.
        t_last = torch.tensor(float(denoiser.one_step_timestep()) * start_level)
        blender = _Blender(n_img * n_out, (height, width), blend_weights, n_out)
        n_batches = math.ceil(n_win / batch_size)
        for k, s in enumerate(range(0, n_win, batch_size)):
            b = min(s + batch_size, n_win) - s
            clean_b = encode_windows(s, b) if in_names else None
            x = _one_step_start(denoiser, clean_b, start, outs, in_names, (b, n_img, n_out, *latent_shape), t_last)
            team = _WindowTeam(
                denoiser, len(layout), idx_in, idx_out, clean_b, b, n_img, latent_shape, dtype, cond, b, device
            )
            est = sample_one_step(team, x.to(device).flatten(0, 2), t_last[None])
            dec = denoiser.decode(est.to(dtype)).float().unflatten(0, (b, n_img * n_out))
            blender.add(dec, pix_cells(s, s + b))
            if callback:
                callback(k + 1, n_batches)
        return blender.result(outs, n_img)

    clean = (
        torch.cat([encode_windows(s, min(batch_size, n_win - s)) for s in range(0, n_win, batch_size)])
        if in_names
        else None
    )
    lat_cells = _cells(corners, hl, wl, lat_h, lat_w).to(device)
    model = _WindowTeam(
        denoiser, len(layout), idx_in, idx_out, clean, n_win, n_img, latent_shape, dtype, cond, batch_size, device
    )
    lat_weights = window_weights(hl, wl, lat_overlap).to(device)
    num_cells = lat_h * lat_w

    def decode(latents: Tensor) -> dict[str, Tensor]:
        return _blend(
            denoiser,
            latents.unflatten(0, (n_win, n_img * n_out)),
            outs,
            n_img,
            dtype,
            pix_cells,
            blend_weights,
            (height, width),
            batch_size,
            exact,
        )

    if one_step:
        t_last = torch.tensor(float(denoiser.one_step_timestep()) * start_level)
        x = _one_step_start(denoiser, clean, start, outs, in_names, (n_win, n_img, n_out, *latent_shape), t_last)
        x = x.to(device)
        est = sample_one_step(model, x.flatten(0, 2), t_last[None], callback=callback)
        if sync == "average" and not exact:
            est = average_windows(est.unflatten(0, (n_win, n_img * n_out)), lat_cells, lat_weights, num_cells).flatten(
                0, 1
            )
        return decode(est)

    # The canvas noise, drawn once on the CPU as sample_team draws it, cropped per window.
    if isinstance(generator, Sequence):
        if len(generator) != n_img:
            raise ValueError(f"generator: a list needs one generator per image ({n_img}), got {len(generator)}")
        noise = torch.cat([torch.randn((n_out, *latent_shape[:1], lat_h, lat_w), generator=g) for g in generator])
        row_gens = [g for _ in range(n_win) for g in generator]  # window-major rows, as _WindowTeam's
    else:
        noise = torch.randn((n_img * n_out, *latent_shape[:1], lat_h, lat_w), generator=generator)
        row_gens = generator
    latents = noise.flatten(-2)[..., lat_cells.cpu()].permute(2, 0, 1, 3, 4).flatten(0, 1).to(device)
    latents = latents * getattr(denoiser.scheduler, "init_noise_sigma", 1.0)
    # One window's latents: the scheduler's resolution shift (SD3.5, Flux) sees the size the model sees.
    timesteps = denoiser.set_timesteps(steps, latents[: n_img * n_out])

    def synchronise(i: int, lat: Tensor) -> Tensor:
        if sync == "none" or exact:
            return lat
        x = lat.unflatten(0, (n_win, n_img * n_out))
        if sync == "average":
            x = average_windows(x, lat_cells, lat_weights, num_cells)
        else:
            x = syncsde_windows(
                x, lat_cells, lat_weights, num_cells, syncsde_fraction(denoiser, timesteps, i, strength)
            )
        return x.flatten(0, 1)

    latents = sample_scheduler(model, latents, timesteps, callback=callback, generator=row_gens, after_step=synchronise)
    return decode(latents)


def _one_step_start(
    denoiser: TeamDenoiser,
    clean: Tensor | None,
    start: dict[str, str] | None,
    outs: list[str],
    in_names: list[str],
    shape: tuple[int, ...],
    t_last: Tensor,
) -> Tensor:
    """A one-step pass's outputs before it, [windows, N, n_out, ...]: zero (the noise's mean), or an input's
    latents noised to t_last where `start` names one (as sample_team)."""
    x = torch.zeros(shape, device=clean.device if clean is not None else None)
    for o, i in (start or {}).items():
        if o in outs:
            if i not in in_names:
                raise ValueError(f"start: output {o} starts from input {i}, which is not given")
            src = clean[:, :, in_names.index(i)].flatten(0, 1)
            x[:, :, outs.index(o)] = denoiser.add_noise(
                src, torch.zeros_like(src), t_last.expand(src.shape[0]).to(src.device)
            ).unflatten(0, shape[:2])
    return x
