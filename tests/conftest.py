"""Shared fixtures: tiny models built from config (no download), saved to temporary folders, and the helpers many
test folders use (files, adapters, materials), each a fixture that returns the helper or the built object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from teamwork_cli.models.hub.testing import FAMILIES

TINY_UNET = dict(
    sample_size=16,
    in_channels=12,
    out_channels=12,
    block_out_channels=(8, 16),
    layers_per_block=1,
    down_block_types=("DownBlock2D",) * 2,
    up_block_types=("UpBlock2D",) * 2,
    norm_num_groups=4,
)

SVBRDF = ["image.in", "halfway.in", "diffuse.out", "specular.out", "roughness.out", "normals.out"]
TASK_PRESETS = ("intrinsics", "inpaint", "inpaint-material", "shade", "synthesize")


@pytest.fixture(autouse=True)
def _small_torch():
    torch.set_num_threads(1)  # tiny models: threads only add overhead (and CI shares the CPU)


# ---------------------------------------------------------------------------------------- tiny models


@pytest.fixture(scope="session")
def tiny_unet_config():
    """The UNet2DModel config of the tiny embedded base (a fresh dict: callers may change it)."""
    return lambda **changes: {**TINY_UNET, **changes}


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny embedded-format base model folder."""
    from teamwork_cli.models.embedded import EmbeddedDenoiser

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tinybase")
    EmbeddedDenoiser.from_config(TINY_UNET).save_pretrained(path, meta={"command": "tests"}, dtype=torch.float32)
    return path


def _randomize_up(model, scale, seed=0):
    """Give every adapter layer a random `up` (a fresh adapter is an exact no-op), reproducibly."""
    from teamwork_cli.adapters.model import adapter_layers

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in adapter_layers(model).values():
            layer.adapter.up.copy_(torch.randn(layer.adapter.up.shape, generator=g) * scale)


def _make_adapter(base_path, teammates, path, rank=4, communication=True, seed=0, metadata=None):
    """A random (non-zero) adapter for the tiny base, written in the published format (plus `metadata`)."""
    from teamwork_cli.adapters.checkpoint import save_adapter
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.models.embedded import EmbeddedDenoiser

    den = EmbeddedDenoiser.from_pretrained(base_path)
    inject_adapter(den.model, layers_to_adapt(den.model), len(teammates), rank, communication=communication)
    _randomize_up(den.model, 0.05, seed)
    save_adapter(
        den.model,
        path,
        teammates,
        base_model=str(base_path),
        title="tiny test adapter",
        profile="UNET2D",
        architecture="UNet2DModel",
        extra=metadata,
    )
    return path


@pytest.fixture(scope="session")
def randomize_up():
    """randomize_up(model, scale, seed=0): a random `up` for every adapter layer of `model`."""
    return _randomize_up


@pytest.fixture(scope="session")
def make_adapter():
    """make_adapter(base_path, teammates, path, rank=4, communication=True, seed=0, metadata=None) -> path."""
    return _make_adapter


@pytest.fixture(scope="session")
def tiny_svbrdf_adapter(tiny_base, tmp_path_factory):
    return _make_adapter(tiny_base, SVBRDF, tmp_path_factory.mktemp("adapter") / "svbrdf.safetensors")


@pytest.fixture(scope="session")
def adapters(tiny_base, tmp_path_factory):
    """preset -> a random adapter of the tiny base for the intrinsics, inpaint, shade and synthesize presets."""
    from teamwork_cli.core.layout import load_preset

    root = tmp_path_factory.mktemp("task_adapters")
    return {p: _make_adapter(tiny_base, load_preset(p).names, root / f"{p}.safetensors") for p in TASK_PRESETS}


# -------------------------------------------------------------------------------------- files and maps


def _write_png(path, array):
    """Write an HxWx3 float array in [0, 1] as an 8-bit PNG (stored values)."""
    from PIL import Image

    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="session")
def write_png():
    """write_png(path, array) -> path: an HxWx3 float array in [0, 1] as an 8-bit PNG (stored values)."""
    return _write_png


def _make_material(
    folder: Path,
    stem: str = "brick",
    seed: int = 0,
    channels: tuple[str, ...] | None = None,
    ext: str = "png",
    size: int = 16,
) -> dict[str, Path]:
    """Random maps `folder/<stem>_<channel>.<ext>` (bare `<channel>.<ext>` if stem is ""); returns the paths."""
    from teamwork_cli.materials.write import write_map

    rng = np.random.default_rng(seed)
    n = rng.normal(size=(size, size, 3))
    n[..., 2] = np.abs(n[..., 2]) + 1.5
    values = {
        "diffuse": rng.random((size, size, 3)),
        "specular": rng.random((size, size, 3)) * 0.2,
        "roughness": rng.random((size, size)),
        "normals": n / np.linalg.norm(n, axis=-1, keepdims=True),
        "basecolor": rng.random((size, size, 3)),
        "metallic": rng.random((size, size)) > 0.5,
    }
    paths = {}
    for c in channels or ("diffuse", "specular", "roughness", "normals"):
        name = f"{stem}_{c}.{ext}" if stem else f"{c}.{ext}"
        paths[c] = write_map(folder / name, values[c].astype(np.float32), c)
    return paths


@pytest.fixture(scope="session")
def make_material():
    """make_material(folder, stem="brick", seed=0, channels=None, ext="png", size=16) -> channel -> path."""
    return _make_material


def _flat(normal=(0.0, 0.0, 1.0), depth=0.5, albedo=0.5, metallic=0.0, n=1, size=8) -> dict[str, torch.Tensor]:
    """Shading buffers (values) of a flat surface: one normal, depth, albedo and metallic everywhere."""
    return {
        "albedo": torch.full((n, 3, size, size), albedo),
        "normals": torch.tensor(normal).view(1, 3, 1, 1).expand(n, 3, size, size),
        "roughness": torch.full((n, 1, size, size), 0.6),
        "metallic": torch.full((n, 1, size, size), metallic),
        "depth": torch.full((n, 1, size, size), depth),
    }


@pytest.fixture(scope="session")
def flat():
    """flat(normal=(0, 0, 1), depth=0.5, albedo=0.5, metallic=0.0, n=1, size=8): flat shading buffers."""
    return _flat


@pytest.fixture()
def dataset(tmp_path, write_png):
    """Three finetune samples; the second lacks normals (heterogeneous data)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(3):
        d = root / f"s{i}"
        d.mkdir(parents=True)
        write_png(d / "image.png", rng.random((20, 20, 3)))
        write_png(d / "diffuse.png", rng.random((20, 20, 3)))
        if i != 1:
            write_png(d / "normals.png", np.dstack([rng.random((20, 20, 2)) * 0.2 + 0.4, np.ones((20, 20))]))
    return root


# ------------------------------------------------------------------------------- tiny hub pipelines


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """No hub access: HF_HUB_OFFLINE, an empty hub cache, and a per-test TEAMWORK_CACHE."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def sd2_folder(tmp_path_factory):
    """A tiny SD2 pipeline saved to disk."""
    from teamwork_cli.models.hub.testing import save_tiny_pipeline

    return save_tiny_pipeline("sd2", tmp_path_factory.mktemp("sd2") / "base")


def published_adapter(family, folder, teammates, path, task):
    """A random (non-zero) adapter for the pipeline at `folder`, written in the published format."""
    from teamwork_cli.adapters.checkpoint import save_adapter
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.models.hub import load_hub_denoiser

    den = load_hub_denoiser(str(folder), cache_embeds=False)
    inject_adapter(den.model, layers_to_adapt(den.model), len(teammates), 4)
    _randomize_up(den.model, 0.02)
    return save_adapter(
        den.model,
        path,
        teammates,
        base_model=str(folder),
        title=f"tiny {family} {task}",
        profile=family.upper(),
        architecture=family,
    )


@pytest.fixture(scope="session")
def hub_teams(tmp_path_factory):
    """family -> (family, pipeline folder, svbrdf adapter), each built once per session, when first asked for."""
    from teamwork_cli.models.hub.testing import save_tiny_pipeline

    built = {}

    def team(family):
        if family not in built:
            root = tmp_path_factory.mktemp(family)
            folder = save_tiny_pipeline(family, root / "base")
            built[family] = (
                family,
                folder,
                published_adapter(family, folder, SVBRDF, root / f"svbrdf_{family}.safetensors", "svbrdf"),
            )
        return built[family]

    return team


@pytest.fixture(scope="module", params=FAMILIES)
def hub_team(request, hub_teams):
    """(family, pipeline folder, svbrdf adapter in the published format with non-zero weights), per family."""
    return hub_teams(request.param)


@pytest.fixture(scope="module")
def hub_intrinsics_adapter(hub_team):
    """An intrinsics adapter (the published decomposition checkpoint's teammates) for `hub_team`'s pipeline."""
    from teamwork_cli.core.layout import load_preset

    family, folder, _ = hub_team
    return published_adapter(
        family,
        folder,
        load_preset("intrinsics").names,
        folder.parent / f"intrinsics_{family}.safetensors",
        "intrinsics",
    )
