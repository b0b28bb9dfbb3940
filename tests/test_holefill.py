"""The harmonic hole fill and inpainting adapters trained to see it (`finetune --hole-fill harmonic`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_adapter, write_png
from PIL import Image

from teamwork_cli.cli.app import main
from teamwork_cli.core.layout import load_preset
from teamwork_cli.graphics.holefill import _cg, blank, harmonic_fill
from teamwork_cli.materials.read import read_image
from teamwork_cli.training.finetune import make_source


def hole(size: int, lo: int, hi: int) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size)
    m[..., lo:hi, lo:hi] = 1
    return m


def test_known_pixels_stay_and_harmonic_images_are_reproduced():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    ramp = torch.stack([0.2 + 0.5 * xx, 0.7 - 0.3 * yy, 0.3 + 0.2 * xx - 0.1 * yy]).unsqueeze(0)  # affine: harmonic
    m = hole(96, 20, 70)
    noisy = ramp * (1 - m) + torch.rand_like(ramp) * m  # the hole's content must not leak into the fill
    out = harmonic_fill(noisy, m)
    assert torch.equal(out * (1 - m), noisy * (1 - m))
    torch.testing.assert_close(out, ramp, atol=1e-4, rtol=0)
    const = torch.full((2, 1, 40, 40), 0.3)
    torch.testing.assert_close(harmonic_fill(const, hole(40, 5, 30)), const)


def test_coarse_to_fine_matches_the_exact_solve_and_its_maximum_principle():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 128, 128, generator=g)
    m = hole(128, 10, 100)
    exact = _cg(x, m.expand_as(x), torch.zeros_like(x), 4000, 1e-14)
    fast = harmonic_fill(x, m)  # the default 200 iterations per level
    assert (fast - exact).abs().max() < 1e-4
    inside = fast[m.expand_as(x) > 0]
    assert inside.min() >= x.min() and inside.max() <= x.max()  # a harmonic function peaks on its boundary


def test_blank_fills_and_rejects_unknown_kinds():
    x = torch.rand(1, 3, 32, 32)
    m = hole(32, 8, 24)
    assert torch.equal(blank(x, m) * m, 0.5 * m.expand_as(x))
    torch.testing.assert_close(blank(x, m, "harmonic"), harmonic_fill(x, m).clamp(0, 1))
    with pytest.raises(ValueError, match="hole fill must be one of grey, harmonic; got 'mean'"):
        blank(x, m, "mean")


def test_training_source_shows_the_harmonic_fill(tmp_path):
    src = make_source("procedural:inpaint", load_preset("inpaint"), 32, pool=3, cache=tmp_path, hole_fill="harmonic")
    data = src(2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(data["image.in"], harmonic_fill(data["image"], data["mask"]).clamp(0, 1))
    assert not torch.equal(data["image.in"], data["image"])
    with pytest.raises(ValueError, match="applies to --data procedural:inpaint only"):
        make_source("procedural:svbrdf", load_preset("svbrdf"), 32, hole_fill="harmonic")
    with pytest.raises(ValueError, match="one of grey, harmonic"):
        make_source("procedural:inpaint", load_preset("inpaint"), 32, hole_fill="blur")


def test_inpaint_uses_the_fill_its_adapter_was_trained_with(tmp_path, tiny_base, capsys, monkeypatch):
    from teamwork_cli.tasks import inpaint as task

    names = load_preset("inpaint").names
    harmonic = make_adapter(tiny_base, names, tmp_path / "h.safetensors", metadata={"teamwork.hole_fill": "harmonic"})
    grey = make_adapter(tiny_base, names, tmp_path / "g.safetensors")
    odd = make_adapter(tiny_base, names, tmp_path / "o.safetensors", metadata={"teamwork.hole_fill": "mean"})
    seen = []
    real = task.blank
    monkeypatch.setattr(task, "blank", lambda x, m, fill="grey": seen.append(fill) or real(x, m, fill))
    rng = np.random.default_rng(0)
    photo = write_png(tmp_path / "p.png", rng.random((32, 32, 3)))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    for adapter, fill in ((harmonic, "harmonic"), (grey, "grey")):
        out = tmp_path / fill
        code = main(["inpaint", str(photo), "--mask", str(tmp_path / "m.png"), "-o", str(out), "--adapter",
                     str(adapter), "--base", str(tiny_base), "--steps", "1"])
        assert code == 0 and seen[-1] == fill
        a, b = read_image(photo).pixels, read_image(out / "p_image.png").pixels
        assert np.array_equal(a[mask == 0], b[mask == 0])
    capsys.readouterr()
    code = main(["inpaint", str(photo), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "x"), "--adapter",
                 str(odd), "--base", str(tiny_base)])
    err = capsys.readouterr().err
    assert code == 1 and "teamwork.hole_fill='mean'" in err and "grey, harmonic" in err
    assert main(["info", str(harmonic)]) == 0 and "harmonic" in capsys.readouterr().out


def test_shipped_adapters_resolve_by_name(capsys):
    from teamwork_cli.models.hub.resolve import resolve_adapter, shipped_adapters

    names = shipped_adapters()
    if not names:
        pytest.skip("no shipped adapters in this checkout")
    assert resolve_adapter(names[0]).is_file()
    with pytest.raises(Exception, match="not found") as e:
        resolve_adapter("no-such-adapter")
    assert names[0] in e.value.hint


def test_hole_loss_run_is_recorded(tmp_path, tiny_base, capsys, monkeypatch):
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path))
    out = tmp_path / "h.safetensors"
    assert main(["finetune", "--preset", "inpaint", "--data", "procedural:inpaint", "--pool", "3", "--base",
                 str(tiny_base), "-o", str(out), "--steps", "1", "--batch-size", "1", "--resolution", "16",
                 "--rank", "2", "--mixed-precision", "no", "--hole-fill", "harmonic", "--one-step", "--start",
                 "image.out=image.in", "--start-level", "0.1", "--hole-loss"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "loss" in info and "hole" in info and "image.out=image.in at level 0.1" in info
