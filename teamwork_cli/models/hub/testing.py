"""Tiny random-weight diffusers pipelines of each supported family, for tests and benchmarks.

Built from config (no download): real component classes, a few channels wide, saved with `save_pretrained`
so that `load_hub_denoiser` loads them by path exactly like a downloaded pipeline.  Tokenizers are made
offline from a 26-letter vocabulary (transformers 5 builds tokenizers.json-backed CLIP and T5 tokenizers
from a vocabulary in memory).
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

FAMILIES = ("sd3", "sdxl", "sd2", "flux")
_LETTERS = string.ascii_lowercase


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    vocab = {c: i for i, c in enumerate(_LETTERS)}
    vocab.update({f"{c}</w>": len(_LETTERS) + i for i, c in enumerate(_LETTERS)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _t5_tokenizer():
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)] + [(c, -1.0) for c in _LETTERS]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=512)


def _clip(width: int, projection: bool, projection_dim: int = 8):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    # vocab 64 > the 54 tokens of _clip_tokenizer; eos id = "<|endoftext|>" so pooling picks the right token.
    cfg = CLIPTextConfig(
        vocab_size=64,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        bos_token_id=52,
        eos_token_id=53,
        pad_token_id=53,
    )
    torch.manual_seed(0)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()


def _t5(width: int):
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=32,
        d_model=width,
        d_ff=2 * width,
        d_kv=8,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5EncoderModel(cfg).eval()


def _vae(latent_channels: int, flow: bool):
    from diffusers import AutoencoderKL

    # Two levels: a 2x smaller latent grid.  SD3/Flux VAEs have a shift factor and no quant convs; SD/SDXL the opposite.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=1.5 if flow else 0.2,
        shift_factor=0.1 if flow else None,
        use_quant_conv=not flow,
        use_post_quant_conv=not flow,
    ).eval()


def tiny_pipeline(family: str):
    """A random-weight pipeline of `family` (one of FAMILIES)."""
    import diffusers as D

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    torch.manual_seed(0)
    if family == "sd3":
        transformer = D.SD3Transformer2DModel(
            sample_size=16,
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=32,
            caption_projection_dim=16,
            pooled_projection_dim=16,
            pos_embed_max_size=32,
        )
        return D.StableDiffusion3Pipeline(
            transformer=transformer,
            vae=_vae(4, True),
            scheduler=D.FlowMatchEulerDiscreteScheduler(shift=3.0),
            text_encoder=_clip(16, True),
            tokenizer=_clip_tokenizer(),
            text_encoder_2=_clip(16, True),
            tokenizer_2=_clip_tokenizer(),
            text_encoder_3=_t5(32),
            tokenizer_3=_t5_tokenizer(),
        )
    if family == "flux":
        transformer = D.FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            out_channels=None,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=16,
            guidance_embeds=True,
            axes_dims_rope=(2, 2, 4),
        )
        scheduler = D.FlowMatchEulerDiscreteScheduler(
            shift=3.0,
            use_dynamic_shifting=True,
            base_shift=0.5,
            max_shift=1.15,
            base_image_seq_len=256,
            max_image_seq_len=4096,
        )
        return D.FluxPipeline(
            transformer=transformer,
            vae=_vae(4, True),
            scheduler=scheduler,
            text_encoder=_clip(16, False),
            tokenizer=_clip_tokenizer(),
            text_encoder_2=_t5(32),
            tokenizer_2=_t5_tokenizer(),
        )
    unet_kw = dict(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=2,
        norm_num_groups=4,
    )
    if family == "sdxl":
        unet = D.UNet2DConditionModel(
            **unet_kw,
            cross_attention_dim=32,
            addition_embed_type="text_time",
            addition_time_embed_dim=4,
            projection_class_embeddings_input_dim=6 * 4 + 8,
        )
        scheduler = D.EulerDiscreteScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            timestep_spacing="leading",
            steps_offset=1,
        )
        return D.StableDiffusionXLPipeline(
            unet=unet,
            vae=_vae(4, False),
            scheduler=scheduler,
            text_encoder=_clip(16, False),
            tokenizer=_clip_tokenizer(),
            text_encoder_2=_clip(16, True),
            tokenizer_2=_clip_tokenizer(),
        )
    unet = D.UNet2DConditionModel(**unet_kw, cross_attention_dim=16)
    # SD2-base ships PNDM; its step takes no generator, which the loader replaces by DDIM.
    scheduler = D.PNDMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        skip_prk_steps=True,
        steps_offset=1,
        prediction_type="v_prediction",
    )
    return D.StableDiffusionPipeline(
        unet=unet,
        vae=_vae(4, False),
        scheduler=scheduler,
        text_encoder=_clip(16, False),
        tokenizer=_clip_tokenizer(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_pipeline(family: str, folder: str | Path) -> Path:
    folder = Path(folder)
    tiny_pipeline(family).save_pretrained(folder)
    return folder
