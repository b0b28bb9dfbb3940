"""Train a Teamwork adapter on any channel set (paper section 4): the loss of `teamwork finetune`.

Every image of a batch has its own set of active teammates: the channels its sample has, minus random teammate
dropout (`dropout`), so one adapter learns from heterogeneous data. Input teammates are clean at the image's
timestep; the loss covers output teammates only, with the target the base model's scheduler defines.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .adapter import TeamBatch
from .denoiser import TeamDenoiser
from .encoding import to_model
from .layout import TeamLayout

# A batch source: (batch_size, generator) -> channel -> [N, C, H, W] in [0, 1] file encoding. An image lacking a
# channel has NaN there (folder data with missing files), so its teammate is inactive.
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


def team_loss(layout: TeamLayout, source: BatchSource, batch_size: int, dropout: float = 0.0):
    """The finetuning loss as a `train.LossFn`."""
    names = layout.names
    is_output = torch.tensor([not t.is_input for t in layout.teammates])

    def loss_fn(model: TeamDenoiser, g: torch.Generator) -> Tensor:
        den = model.module if hasattr(model, "module") else model  # unwrap DDP for the codec and schedule
        data = source(batch_size, g)
        n = batch_size
        available = torch.stack([~torch.isnan(data[t.channel]).flatten(1).any(1) if t.channel in data
                                 else torch.zeros(n, dtype=torch.bool) for t in layout.teammates], 1)
        if not (available & is_output).any(dim=1).all():
            raise ValueError("every training sample needs at least one output channel of the team "
                             f"({', '.join(t.name for t in layout.outputs)})")
        active = draw_active(available, is_output, dropout, g)
        batch = TeamBatch.from_active(active)
        device = next(den.model.parameters()).device
        pixels = torch.stack([to_model(torch.nan_to_num(data[t.channel]) if t.channel in data else
                                       torch.zeros(n, 1, *next(iter(data.values())).shape[-2:]))
                              for t in layout.teammates], 1)  # [N, T, 3, H, W]
        x0 = den.encode(pixels.flatten(0, 1).to(device)).unflatten(0, (n, len(names)))
        t_img = den.draw_timesteps(n, g, device)
        eps = torch.randn(x0.shape, generator=g).to(device)
        t_full = t_img[:, None].expand(n, len(names)).flatten()
        noisy = den.add_noise(x0.flatten(0, 1), eps.flatten(0, 1), t_full).unflatten(0, (n, len(names)))
        x_in = torch.where(is_output.to(device).view(1, -1, *[1] * (x0.ndim - 2)), noisy, x0)
        target = den.target(x0.flatten(0, 1), eps.flatten(0, 1), t_full).unflatten(0, (n, len(names)))
        rows = batch.to_rows(x_in)
        pred = model(rows, t_img[batch.group_ids.to(device)], batch)
        out_rows = is_output.to(device)[batch.teammate_ids.to(device)]
        return F.mse_loss(pred[out_rows].float(), batch.to_rows(target)[out_rows].float())

    return loss_fn
