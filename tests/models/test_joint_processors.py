"""The joint-attention processors against diffusers' own processors run on the concatenated sequence of one image:
the reference's definition of joint attention (fp32, 1e-5 relative)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0, JointAttnProcessor2_0
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

from teamwork_cli.adapters.model import team_context
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.hub.testing import tiny_model
from teamwork_cli.models.joint_attention import enable_joint_attention

TOL = {"rtol": 1e-5, "atol": 1e-5}


unet, flux, sd3, flux2 = (partial(tiny_model, kind) for kind in ("unet", "flux", "sd3", "flux2"))


def per_image(out: torch.Tensor, batch: TeamBatch, g: int) -> torch.Tensor:
    rows = batch.row_index[g][batch.row_index[g] >= 0]
    return out[rows].reshape(1, -1, out.shape[-1])


@torch.no_grad()
def test_unet_self_attention_is_attention_over_the_images_teammates() -> None:
    model = unet()
    attn = model.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    batch = TeamBatch.from_active([[0, 1, 2], [0, 2]], num_teammates=3)  # two images, ragged
    x = torch.randn(batch.num_rows, 16, 8)
    enable_joint_attention(model, 3)
    with team_context(model.down_blocks[0].attentions[0].transformer_blocks[0].attn1.processor.state, batch):
        out = attn(x)
    attn.set_processor(AttnProcessor2_0())
    for g in range(2):  # each image: plain self-attention over its rows' tokens, end to end
        torch.testing.assert_close(per_image(out, batch, g), attn(per_image(x, batch, g)), **TOL)


@torch.no_grad()
def test_sd3_joint_attention_is_attention_over_the_images_teammates() -> None:
    model = sd3()
    attn = model.transformer_blocks[0].attn
    batch = TeamBatch.from_active([[0, 1], [1]], num_teammates=2)
    x, c = torch.randn(batch.num_rows, 16, 16), torch.randn(batch.num_rows, 5, 16)
    state = enable_joint_attention(model, 2)
    with team_context(state, batch):
        img, txt = attn(x, c)
    attn.set_processor(JointAttnProcessor2_0())
    for g in range(2):  # every row's prompt tokens join the image's sequence (attention has no order)
        ref_img, ref_txt = attn(per_image(x, batch, g), per_image(c, batch, g))
        torch.testing.assert_close(per_image(img, batch, g), ref_img, **TOL)
        torch.testing.assert_close(per_image(txt, batch, g), ref_txt, **TOL)


@pytest.mark.parametrize("image_ids", [[0, 1, 2], [0, 10, 20]])
@torch.no_grad()
def test_flux_joint_attention_places_teammates_by_their_image_ids(image_ids) -> None:
    model = flux()
    attn = model.transformer_blocks[0].attn
    batch = TeamBatch.from_active([[0, 1, 2], [0, 2]], num_teammates=3)
    g = torch.Generator().manual_seed(0)
    n_txt, h, w = 3, 2, 3
    x = torch.randn(batch.num_rows, h * w, 16, generator=g)
    c = torch.randn(1, n_txt, 16, generator=g).expand(batch.num_rows, -1, -1)  # one prompt, every row
    txt_ids = torch.zeros(n_txt, 3)
    img_ids = torch.stack(
        torch.meshgrid(torch.zeros(1), torch.arange(float(h)), torch.arange(float(w)), indexing="ij"), -1
    )
    img_ids = img_ids.reshape(-1, 3).float()
    rope = model.pos_embed(torch.cat([txt_ids, img_ids]))
    state = enable_joint_attention(model, 3, image_ids=image_ids)
    with team_context(state, batch):
        img, txt = attn(x, c, image_rotary_emb=rope)
    attn.set_processor(FluxAttnProcessor())
    for grp in range(2):
        teams = (batch.row_index[grp] >= 0).nonzero().flatten().tolist()
        ids = [img_ids + torch.tensor([image_ids[t], 0.0, 0.0]) for t in teams]
        long_rope = model.pos_embed(torch.cat([txt_ids, *ids]))  # the reference: text, then teammates' images
        ref_img, ref_txt = attn(per_image(x, batch, grp), c[:1], image_rotary_emb=long_rope)
        torch.testing.assert_close(per_image(img, batch, grp), ref_img, **TOL)
        rows = batch.row_index[grp][batch.row_index[grp] >= 0]
        for r in rows:  # every row of the image gets the one prompt output
            torch.testing.assert_close(txt[r : r + 1], ref_txt, **TOL)


@torch.no_grad()
def test_flux_attn_allow_masks_image_edges_but_not_the_prompt() -> None:
    model = flux()
    attn = model.transformer_blocks[0].attn
    batch = TeamBatch.from_active([[0, 1]], num_teammates=2)
    x, c = torch.randn(2, 4, 16), torch.randn(1, 3, 16).expand(2, -1, -1)
    rope = model.pos_embed(torch.zeros(7, 3))
    state = enable_joint_attention(model, 2, attn_allow=[[True, False], [False, True]])
    with team_context(state, batch):
        img, txt = attn(x, c, image_rotary_emb=rope)
        y = x.clone()
        y[1] += 1.0
        img2, txt2 = attn(y, c, image_rotary_emb=rope)
    torch.testing.assert_close(img2[0], img[0])  # teammate 0 does not see teammate 1
    assert (txt2 - txt).abs().max() > 1e-4  # the shared prompt sees everyone


def _flux2_ids(h: int, w: int, n_txt: int) -> tuple[torch.Tensor, torch.Tensor]:
    from teamwork_cli.models.hub.flux2 import latent_ids

    txt = torch.zeros(n_txt, 4)
    txt[:, 3] = torch.arange(float(n_txt))  # (0, 0, 0, l), as Flux2KleinPipeline's text ids
    return txt, latent_ids(h, w, torch.device("cpu"))


@torch.no_grad()
def test_flux2_double_and_single_blocks_attend_over_the_images_teammates_at_their_t_offsets() -> None:
    """Against diffusers' FLUX.2 processors run on the reference's layout: [prompt, each teammate's image tokens],
    teammate t's ids with T = teamwork.teammate_image_ids[t] (FLUX.2's default 0, 10, 20)."""
    from diffusers.models.transformers.transformer_flux2 import Flux2AttnProcessor, Flux2ParallelSelfAttnProcessor

    model = flux2()
    double, single = model.transformer_blocks[0].attn, model.single_transformer_blocks[0].attn
    batch = TeamBatch.from_active([[0, 1, 2], [0, 2]], num_teammates=3)
    g = torch.Generator().manual_seed(0)
    n_txt, h, w = 3, 2, 3
    x = torch.randn(batch.num_rows, h * w, 16, generator=g)
    c = torch.randn(1, n_txt, 16, generator=g).expand(batch.num_rows, -1, -1)
    txt_ids, img_ids = _flux2_ids(h, w, n_txt)
    rope = model.pos_embed(torch.cat([txt_ids, img_ids]))
    state = enable_joint_attention(model, 3)
    assert double.processor.image_ids == [0, 10, 20]
    double.processor.text_len = n_txt  # set by the transformer's own call; here the blocks are called alone
    with team_context(state, batch):
        img, txt = double(x, c, image_rotary_emb=rope)
        fused = single(torch.cat([c, x], dim=1), image_rotary_emb=rope)  # the single stream: [prompt, image]
    double.set_processor(Flux2AttnProcessor())
    single.set_processor(Flux2ParallelSelfAttnProcessor())
    for grp in range(2):
        teams = (batch.row_index[grp] >= 0).nonzero().flatten().tolist()
        rows = batch.row_index[grp][batch.row_index[grp] >= 0]
        ids = [img_ids + torch.tensor([10.0 * t, 0, 0, 0]) for t in teams]
        long_rope = model.pos_embed(torch.cat([txt_ids, *ids]))
        ref_img, ref_txt = double(per_image(x, batch, grp), c[:1], image_rotary_emb=long_rope)
        torch.testing.assert_close(per_image(img, batch, grp), ref_img, **TOL)
        ref = single(torch.cat([c[:1], per_image(x, batch, grp)], dim=1), image_rotary_emb=long_rope)
        torch.testing.assert_close(per_image(fused[:, n_txt:], batch, grp), ref[:, n_txt:], **TOL)
        torch.testing.assert_close(fused[int(rows[0]) : int(rows[0]) + 1, :n_txt], ref[:, :n_txt], **TOL)
        for r in rows:  # every row of the image gets the one prompt output of the double block
            torch.testing.assert_close(txt[r : r + 1], ref_txt, **TOL)


@torch.no_grad()
def test_flux2_whole_model_one_teammate_is_the_base_and_images_never_mix() -> None:
    from teamwork_cli.models.joint_attention import disable_joint_attention, joint_attention_layers

    model = flux2()
    g = torch.Generator().manual_seed(1)
    n_txt = 5
    txt_ids, img_ids = _flux2_ids(2, 2, n_txt)

    def run(x: torch.Tensor) -> torch.Tensor:
        kw = dict(encoder_hidden_states=torch.ones(x.shape[0], n_txt, 16), txt_ids=txt_ids, img_ids=img_ids)
        return model(hidden_states=x, timestep=torch.full((x.shape[0],), 0.5), **kw).sample

    x = torch.randn(2, 4, 4, generator=g)
    base = run(x)
    state = enable_joint_attention(model, 1)
    with team_context(state, TeamBatch.from_active([[0], [0]], num_teammates=1)):
        torch.testing.assert_close(run(x), base, **TOL)
    # The reference's file markers: the double blocks' attention and the single blocks as a whole.
    assert joint_attention_layers(model) == ["transformer_blocks.0.attn", "single_transformer_blocks.0"]
    disable_joint_attention(model)
    assert joint_attention_layers(model) == [] and not model._forward_pre_hooks
    batch = TeamBatch.from_active([[0, 1], [0, 1]], num_teammates=2)
    state = enable_joint_attention(model, 2, attn_allow=[[True, False], [True, True]])
    y = torch.randn(4, 4, 4, generator=g)
    with team_context(state, batch):
        a = run(y)
        z = y.clone()
        z[batch.row_index[1]] += 1.0  # the second image only
        b = run(z)
    first = batch.row_index[0]
    torch.testing.assert_close(a[first], b[first])  # batched images never mix
    assert (a[batch.row_index[1]] - b[batch.row_index[1]]).abs().max() > 1e-3
