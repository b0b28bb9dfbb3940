"""Tiny random-weight diffusers pipelines of each supported family, for tests and benchmarks.

Built from config (no download): real component classes, a few channels wide, saved with `save_pretrained`
so that `load_hub_denoiser` loads them by path exactly like a downloaded pipeline.  Tokenizers are made
offline from a 26-letter vocabulary (transformers 5 builds tokenizers.json-backed CLIP and T5 tokenizers
from a vocabulary in memory; the Qwen tokenizers of FLUX.2-klein and Z-Image are byte-level BPE over the same
letters, with a minimal chat template).
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

FAMILIES = ("sd3", "sdxl", "sd2", "flux", "flux2", "zimage")
_LETTERS = string.ascii_lowercase


# Bare denoisers, a few channels wide, for tests of layers, profiles and attention: each kind's config, which
# `tiny_model` overrides per call.  The pipelines below start from the same configs.
TINY_MODELS: dict[str, tuple[str, dict]] = {
    "sd3": (
        "SD3Transformer2DModel",
        dict(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            caption_projection_dim=16,
            pooled_projection_dim=8,
        ),
    ),
    "flux": (
        "FluxTransformer2DModel",
        dict(
            patch_size=1,
            in_channels=4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            pooled_projection_dim=8,
            axes_dims_rope=(2, 2, 4),
        ),
    ),
    "flux2": (
        "Flux2Transformer2DModel",
        dict(
            patch_size=1,
            in_channels=4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            timestep_guidance_channels=16,
            axes_dims_rope=(2, 2, 2, 2),
            guidance_embeds=False,
        ),
    ),
    "zimage": (
        "ZImageTransformer2DModel",
        dict(
            in_channels=4,
            dim=32,
            n_layers=1,
            n_refiner_layers=1,
            n_heads=2,
            n_kv_heads=2,
            cap_feat_dim=16,
            axes_dims=[4, 6, 6],
            axes_lens=[64, 32, 32],
        ),
    ),
    "unet": (  # SD2 / SDXL's conditional UNet (SDXL adds its text-time embedding in the call)
        "UNet2DConditionModel",
        dict(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=8,
            attention_head_dim=2,
            norm_num_groups=4,
        ),
    ),
    "unet2d": (  # the embedded base's class, with attention at its second level
        "UNet2DModel",
        dict(
            sample_size=8,
            in_channels=3,
            out_channels=3,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
            attention_head_dim=4,
        ),
    ),
}


def tiny_model(kind: str, seed: int | None = 0, **changes):
    """A new random-weight denoiser of `kind` (a TINY_MODELS key) in eval mode, seeded with `seed` (None: the
    global generator as it stands); `changes` override its config."""
    import diffusers

    if kind not in TINY_MODELS:
        raise ValueError(f"kind must be one of {', '.join(TINY_MODELS)}; got {kind!r}")
    cls, config = TINY_MODELS[kind]
    if seed is not None:
        torch.manual_seed(seed)
    return getattr(diffusers, cls)(**{**config, **changes}).eval()


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


def _qwen_tokenizer():
    from transformers import Qwen2Tokenizer

    # Byte-level BPE without merges: every letter, the space and newline bytes (G, C with a dot above) and the
    # template's punctuation are tokens; "<|endoftext|>" pads, as in Qwen's own tokenizer.
    chars = [*_LETTERS, "\u0120", "\u010a", "<", ">", "|", "/", "_"]
    vocab = {c: i for i, c in enumerate(chars)}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab.update({s: len(chars) + i for i, s in enumerate(specials)})
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], model_max_length=512)
    tok.add_special_tokens({"additional_special_tokens": specials[1:]})
    # Qwen's chat layout, without its thinking blocks (the pipelines' `enable_thinking` is then ignored).
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def _qwen3(width: int, layers: int, causal_lm: bool):
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    cfg = Qwen3Config(
        vocab_size=48,  # > the 36 tokens of _qwen_tokenizer
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=512,
        pad_token_id=33,
        eos_token_id=33,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    return (Qwen3ForCausalLM if causal_lm else Qwen3Model)(cfg).eval()


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
        transformer = tiny_model(
            "sd3",
            None,
            sample_size=16,
            num_layers=2,
            joint_attention_dim=32,
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
        transformer = tiny_model(
            "flux", None, in_channels=16, joint_attention_dim=32, pooled_projection_dim=16, guidance_embeds=True
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
    if family == "flux2":
        return _tiny_flux2(D)
    if family == "zimage":
        return _tiny_zimage(D)
    if family == "sdxl":
        unet = tiny_model(
            "unet",
            None,
            sample_size=16,
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
    unet = tiny_model("unet", None, sample_size=16, cross_attention_dim=16)
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


def _tiny_flux2(D):
    """FLUX.2-klein: Qwen3 text encoder (prompt = its layers 9, 18 and 27 stacked: 28 layers, 3 x 16 wide), the
    FLUX.2 VAE (latents patchified 2x2: 4 x 4 channels) and a transformer of 1 double + 1 single block."""
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
    ).eval()
    transformer = tiny_model("flux2", None, in_channels=16, joint_attention_dim=48)
    scheduler = D.FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return D.Flux2KleinPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=_qwen3(16, 28, causal_lm=True),
        tokenizer=_qwen_tokenizer(),
        is_distilled=True,
    )


def _tiny_zimage(D):
    """Z-Image: Qwen3 text encoder (its second-to-last layer), the Flux-style VAE, a transformer of 1 main layer
    and 1 noise / 1 context refiner layer."""
    transformer = tiny_model("zimage", None, all_patch_size=(2,), all_f_patch_size=(1,), axes_lens=[512, 64, 64])
    scheduler = D.FlowMatchEulerDiscreteScheduler(shift=3.0)
    return D.ZImagePipeline(
        transformer=transformer,
        vae=_vae(4, True),
        scheduler=scheduler,
        text_encoder=_qwen3(16, 2, causal_lm=False),
        tokenizer=_qwen_tokenizer(),
    )


def save_tiny_pipeline(family: str, folder: str | Path) -> Path:
    folder = Path(folder)
    tiny_pipeline(family).save_pretrained(folder)
    return folder
