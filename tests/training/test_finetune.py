"""Fine-tuning's library side: teammate dropout, the team loss (one-step, hole loss) and hole weights."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.training.finetune import draw_active


def test_dropout_keeps_an_output():
    g = torch.Generator().manual_seed(0)
    available = torch.ones(64, 4, dtype=torch.bool)
    is_output = torch.tensor([False, True, True, True])
    active = draw_active(available, is_output, 0.9, g)
    assert (active & is_output).any(dim=1).all()
    assert (active <= available).all()


def test_one_step_training_lowers_the_one_step_error(dataset, tiny_base):
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.core.layout import TeamLayout
    from teamwork_cli.models.embedded import EmbeddedDenoiser
    from teamwork_cli.training.finetune import make_source, team_loss

    layout = TeamLayout.from_names("image.in,diffuse.out,normals.out")
    den = EmbeddedDenoiser.from_pretrained(tiny_base)
    inject_adapter(den.model, layers_to_adapt(den.model), len(layout), 2)
    loss_fn = team_loss(layout, make_source(str(dataset), layout, 16), 2, one_step=True)
    opt = torch.optim.Adam([p for p in den.parameters() if p.requires_grad], lr=1e-2)

    def loss() -> torch.Tensor:
        return loss_fn(den, torch.Generator().manual_seed(0))  # the same batch every time

    with torch.no_grad():
        before = float(loss())
    for _ in range(20):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        assert float(loss()) < 0.75 * before


def test_hole_loss_counts_only_the_hole_and_its_seam(tiny_base):
    """--hole-loss: a change of the target far from the hole leaves the loss as it is; inside the hole it does not."""
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.core.layout import TeamLayout
    from teamwork_cli.models.embedded import EmbeddedDenoiser
    from teamwork_cli.training.finetune import team_loss

    layout = TeamLayout.from_names("image.in,mask.in,image.out")
    den = EmbeddedDenoiser.from_pretrained(tiny_base)
    inject_adapter(den.model, layers_to_adapt(den.model), len(layout), 2)
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 2:6, 2:6] = 1

    def loss(target: torch.Tensor, hole: bool) -> float:
        source = lambda n, g: {"image": target, "image.in": image, "mask": mask}  # noqa: E731
        with torch.no_grad():
            return float(team_loss(layout, source, 2, one_step=True, hole_loss=hole)(den, torch.Generator()))

    far, inside = image.clone(), image.clone()
    far[..., 12:, 12:] = 1 - far[..., 12:, 12:]  # latent cells (2x2 patches) beyond the hole's one-cell seam
    inside[..., 3:5, 3:5] = 1 - inside[..., 3:5, 3:5]
    assert loss(far, True) == pytest.approx(loss(image, True), rel=1e-6)
    assert loss(far, False) != pytest.approx(loss(image, False), rel=1e-3)
    assert loss(inside, True) != pytest.approx(loss(image, True), rel=1e-3)


def test_hole_weights_fall_back_to_the_whole_image():
    """No mask (NaN) or a dropped mask teammate: the whole image counts; so does an output nothing is pasted into."""
    from teamwork_cli.core.layout import TeamLayout
    from teamwork_cli.training.finetune import hole_weights

    layout = TeamLayout.from_names("image.in,mask.in,image.out,normals.out")
    mask = torch.zeros(3, 1, 16, 16)
    mask[:, :, 0:4, 0:4] = 0.7
    mask[:, :, 8:, 8:] = 0.3  # below 0.5: not a hole, as teamwork inpaint reads masks
    mask[1] = float("nan")
    active = torch.ones(3, 4, dtype=torch.bool)
    active[2, 1] = False
    w = hole_weights(layout, mask, active, (8, 8))
    assert w.shape == (3, 4, 1, 8, 8)
    assert w[0, 2, 0, :3, :3].eq(1).all() and w[0, 2].sum() == 9  # the 2x2-cell hole and its one-cell seam
    assert w[1, 2].eq(1).all() and w[2, 2].eq(1).all()
    assert w[0, 3].eq(1).all()  # normals.out has no normals.in
