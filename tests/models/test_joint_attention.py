"""Joint attention across teammates (the paper's Fig. 1d baseline) on a tiny SD3 transformer."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from diffusers import UNet2DConditionModel, UNet2DModel

from teamwork_cli.adapters.model import inject_adapter, team_context
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.hub.testing import tiny_model
from teamwork_cli.models.joint_attention import (
    disable_joint_attention,
    enable_joint_attention,
    joint_attention_layers,
    joint_attention_paths,
    team_attention,
)

sd3 = partial(tiny_model, "sd3", num_layers=2, pos_embed_max_size=8)


def inputs(rows: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "hidden_states": torch.randn(rows, 4, 8, 8, generator=g),
        "timestep": torch.full((rows,), 400.0),
        "encoder_hidden_states": torch.randn(rows, 5, 16, generator=g),
        "pooled_projections": torch.randn(rows, 8, generator=g),
    }


@torch.no_grad()
def test_one_teammate_per_image_is_plain_attention() -> None:
    model, x = sd3(), inputs(4)
    ref = model(**x).sample
    state = enable_joint_attention(model, num_teammates=2)
    lone = TeamBatch.from_active([[0], [1], [0], [1]], num_teammates=2)  # no image has two teammates
    with team_context(state, lone):
        torch.testing.assert_close(model(**x).sample, ref, atol=1e-5, rtol=0)
    disable_joint_attention(model)
    torch.testing.assert_close(model(**x).sample, ref)


@torch.no_grad()
def test_teammates_of_one_image_see_each_other_only() -> None:
    model, x = sd3(), inputs(4)
    state = enable_joint_attention(model, num_teammates=2)
    batch = TeamBatch.from_active(torch.ones(2, 2, dtype=torch.bool))  # rows: (t0,g0) (t0,g1) (t1,g0) (t1,g1)
    with team_context(state, batch):
        out = model(**x).sample
        y = {k: v.clone() for k, v in x.items()}
        y["hidden_states"][2] += 1.0  # change teammate 1 of image 0
        changed = model(**y).sample
    assert (changed[0] - out[0]).abs().max() > 1e-4  # its teammate in the same image reacts
    torch.testing.assert_close(changed[[1, 3]], out[[1, 3]])  # image 1 does not


def test_dense_and_ragged_paths_agree() -> None:
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(6, 2, 7, 4, generator=g) for _ in range(3))
    dense = TeamBatch.from_active(torch.ones(2, 3, dtype=torch.bool))
    ragged = TeamBatch.from_active(torch.ones(2, 3, dtype=torch.bool))
    ragged.full_teammates = frozenset()  # force the per-image loop
    torch.testing.assert_close(team_attention(q, k, v, dense), team_attention(q, k, v, ragged))


@torch.no_grad()
def test_shares_state_with_adapters_and_rejects_other_models() -> None:
    model = sd3()
    state = inject_adapter(model, None, 3, 2, communication=False)  # the paper's baseline: no coordination
    assert enable_joint_attention(model) is state
    with team_context(model, [[0, 1, 2]]):
        assert model(**inputs(3)).sample.shape == (3, 4, 8, 8)
    with pytest.raises(ValueError, match="implemented for SD3Transformer2DModel, .*; got UNet2DModel"):
        enable_joint_attention(
            UNet2DModel(
                block_out_channels=(8,),
                norm_num_groups=4,
                down_block_types=("DownBlock2D",),
                up_block_types=("UpBlock2D",),
            ),
            2,
        )
    plain = UNet2DConditionModel(
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
        cross_attention_dim=8,
    )
    with pytest.raises(ValueError, match="no attention module of UNet2DConditionModel to couple"):
        enable_joint_attention(plain, 2)


# SD3.5: an image-only second attention (attn2) beside the joint one
sd35 = partial(sd3, dual_attention_layers=(0, 1), qk_norm="rms_norm")


def test_sd35_couples_only_the_joint_attention() -> None:
    # As the reference's SD3_PLUSATTN profile: `transformer_blocks.N.attn`; SD3.5's image-only attn2 stays per row.
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    model = sd35()
    enable_joint_attention(model, num_teammates=2)
    assert joint_attention_layers(model) == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    assert joint_attention_paths(model) == joint_attention_layers(model)
    assert isinstance(model.transformer_blocks[0].attn2.processor, JointAttnProcessor2_0)
    disable_joint_attention(model)
    assert joint_attention_layers(model) == []


@torch.no_grad()
def test_sd35_outputs_follow_attn_allow() -> None:
    model, x = sd35(), inputs(4)
    ref = model(**x).sample
    batch = TeamBatch.from_active(torch.ones(2, 2, dtype=torch.bool))
    state = enable_joint_attention(model, num_teammates=2, attn_allow=[[True, False], [False, True]])
    with team_context(state, batch):  # nobody may see anybody else: plain attention
        torch.testing.assert_close(model(**x).sample, ref, atol=1e-5, rtol=1e-5)
    state = enable_joint_attention(model, num_teammates=2, attn_allow=[[True, True], [False, True]])
    y = {k: v.clone() for k, v in x.items()}
    with team_context(state, batch):
        out = model(**x).sample
        y["hidden_states"][0] += 1.0  # teammate 0 of image 0 changes
        changed = model(**y).sample
        y = {k: v.clone() for k, v in x.items()}
        y["hidden_states"][2] += 1.0  # teammate 1 of image 0 changes
        changed1 = model(**y).sample
    torch.testing.assert_close(changed[2], out[2])  # teammate 1 may not look at teammate 0
    assert (changed1[0] - out[0]).abs().max() > 1e-4  # teammate 0 looks at teammate 1
    torch.testing.assert_close(changed1[[1, 3]], out[[1, 3]])  # the other image never


def test_bad_allow_and_paths_are_refused() -> None:
    model = sd3()
    with pytest.raises(ValueError, match=r"attn_allow must be a 2x2 matrix with a true diagonal"):
        enable_joint_attention(model, 2, attn_allow=[[False, True], [True, True]])
    with pytest.raises(
        ValueError, match=r"joint attention at transformer_blocks\.0 \(JointTransformerBlock\) is not supp"
    ):
        enable_joint_attention(model, 2, paths=["transformer_blocks.0"])
    with pytest.raises(ValueError, match=r"joint attention at nowhere\.attn: not a module"):
        enable_joint_attention(model, 2, paths=["nowhere.attn"])
    with pytest.raises(ValueError, match=r"image_ids \[0\] must have one entry per teammate \(2\)"):
        enable_joint_attention(model, 2, image_ids=[0])
