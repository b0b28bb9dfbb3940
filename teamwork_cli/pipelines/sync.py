"""Synchronising the trajectories of overlapping windows between sampler steps (used by `windows.sample_windows`).

Windows are stacked as x: [windows, rows, C, h, w] (rows: the images' output teammates), and `cells`
([windows, h, w], long) names the canvas cell (flat index y * W + x) each window cell covers, so a window may
wrap around the canvas or even cover a cell twice (a canvas smaller than the window, tiled).

"average": MultiDiffusion (Bar-Tal et al. 2023, "MultiDiffusion: Fusing Diffusion Paths for Controlled Image
Generation", section 3). Every canvas cell becomes the weighted mean of the windows' values there, the
closed-form solution of their least-squares fusion step with per-pixel weights W_i, and every window takes its
crop of that fused canvas J.

"syncsde": SyncSDE (Lee, Lee & Han 2025, "SyncSDE: A Probabilistic Framework for Diffusion Synchronization",
CVPR, arXiv 2503.21555). The score of a trajectory in the joint splits into its own score and a correlation term,
    grad_k log p(x^k | x^other) = grad_k log p(x^k) + grad_k log p(x^other | x^k)    (Bayes),
so each window keeps the model's own prediction and only the correlation has to be modelled, per task, with one
strength lambda. For wide images (the paper's panorama application, the case closest to ours) it ties each patch
to the previous one on their overlap M by a Gaussian of their difference. In the authors' released pipeline
(hjl1013/SyncSDE, syncsde/pipelines/pipeline_wide_image.py: DDIM, eta = 0) that is, after each step of patch j,
    x^j_{t-1} <- x^j_{t-1} - gamma_t (1/lambda) (t/T) M * (x^j_t - x^{j-1}_t),
    gamma_t = sqrt(abar_{t-1} / abar_t) - sqrt((1 - abar_{t-1}) / (1 - abar_t)).
With the noise-to-signal ratio s_t = sqrt((1 - abar_t) / abar_t) (the VE sigma: Euler's sigma; sigma / (1 - sigma)
for flow models), in the scale-free coordinates x_t / sqrt(abar_t) gamma_t becomes (1 - s_{t-1} / s_t): the
update is the Euler step of the probability-flow ODE with the Gaussian correlation
    p(x^{j-1} | x^j) = N(x^j, lambda (T / t) s_t^2 I) on M,
a tie as wide as the current noise, loosened by T / t as the trajectories approach the data.

What is implemented: that correlation, with every window tied to the fused canvas J of all windows (the
MultiDiffusion mean, a window's own crop included) instead of to its predecessor in a chain:
    x^k_next <- x^k_next - f_t (x^k_next - crop_k(J_next)),   f_t = min(1, strength (t/T) (1 - s_next / s_t)),
with strength = 1 / lambda and t/T the step's timestep over the first one. Cells that only one window covers
have J = x^k and do not move, so the tie acts on the overlaps only, as M does; and since J weights a window's
cells by its blending ramp, a window's border cells are pulled towards its neighbours' confident centres.
strength -> infinity is MultiDiffusion (f_t = 1), strength 0 independent windows. Why not the paper's chain: on a
2D grid and on a torus a chain ties some windows, cell by cell, to predecessors that never met (around a loop the
last window is wholly copied from two unrelated trajectories), and its hard-masked copy leaves an edge at the
inner border of M unless many small steps let the model smooth it over. With the shipped synthesize team (4 steps,
32-pixel windows, 16 of overlap, strength 5) the chain left visible seams every half window and across the wrap
(mean |row difference| across the wrap seam 0.25, inside 0.12); tied to J, 0.10 and 0.09.
Two smaller departures, both first-order equivalent to the released step: the difference is taken after the
model's step (operator splitting: own score, then correlation), which stays defined at the first step of flow
models (s_t infinite at pure noise, where the x_t form divides by a zero signal scale) and needs no
per-scheduler coefficients; and f_t is clamped to 1, so the large steps of few-step samplers never overshoot.
The released wide-image script's default is 1 / lambda = 5 for 50 DDIM steps; with 4 steps that saturates the
clamp at every step (it is then "average"), so `sample_windows` defaults to strength 1.
"""

from __future__ import annotations

import math

from torch import Tensor

from teamwork_cli.models.denoiser import TeamDenoiser

SYNCS = ("none", "average", "syncsde")


def average_windows(x: Tensor, cells: Tensor, weights: Tensor, num_cells: int) -> Tensor:
    """MultiDiffusion's fusion: x [windows, rows, C, h, w] -> every window's crop of the canvas's weighted mean.

    cells: [windows, h, w] flat canvas cells, < num_cells; weights: [h, w], positive (`windows.window_weights`)."""
    n, rows, c, h, w = x.shape
    flat = cells.reshape(-1)
    vals = (x * weights).permute(1, 2, 0, 3, 4).reshape(rows, c, -1)
    num = x.new_zeros(rows, c, num_cells).index_add_(2, flat, vals)
    den = x.new_zeros(num_cells).index_add_(0, flat, weights.expand(n, h, w).reshape(-1))
    mean = num / den
    return mean[:, :, flat].view(rows, c, n, h, w).permute(2, 0, 1, 3, 4)


def syncsde_windows(x: Tensor, cells: Tensor, weights: Tensor, num_cells: int, fraction: float) -> Tensor:
    """SyncSDE's correlation step (module docstring): every window `fraction` of the way to its crop of the fused
    canvas; fraction 1 is `average_windows`, 0 leaves x."""
    if fraction <= 0:
        return x
    fused = average_windows(x, cells, weights, num_cells)
    return fused if fraction >= 1 else x - fraction * (x - fused)


def noise_to_signal(denoiser: TeamDenoiser, t: float) -> float:
    """The step's noise-to-signal ratio (VE sigma): sigma / (1 - sigma) for flow models (infinite at pure noise),
    sqrt((1 - abar_t) / abar_t) for DDPM-family ones."""
    if getattr(denoiser, "prediction_type", None) == "flow":
        sigma = float(t) / denoiser.num_train_timesteps
        return math.inf if sigma >= 1 else max(sigma, 0.0) / (1 - sigma)
    abar = float(denoiser.scheduler.alphas_cumprod[int(round(float(t)))])
    return math.sqrt((1 - abar) / abar)


def syncsde_fraction(denoiser: TeamDenoiser, timesteps: Tensor, i: int, strength: float) -> float:
    """f_t = min(1, strength (t/T) (1 - s_next / s_t)) for step i (module docstring); s_next = 0 after the last."""
    t, first = float(timesteps[i]), float(timesteps[0])
    now = noise_to_signal(denoiser, t)
    nxt = noise_to_signal(denoiser, float(timesteps[i + 1])) if i + 1 < len(timesteps) else 0.0
    if math.isinf(now):
        ratio = 1.0 if math.isinf(nxt) else 0.0
    else:
        ratio = nxt / now if now > 0 else 1.0
    return min(1.0, strength * (t / first) * max(0.0, 1.0 - ratio))
