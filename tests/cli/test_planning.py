"""Planning before the model loads: refused inputs are their own errors, sizes over the budget are bad usage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from teamwork_cli.cli import planning
from teamwork_cli.core import memory


@pytest.fixture
def little_memory(monkeypatch):
    """The machine's memory as 1.5 GB: enough for a small photo, not for a large one."""
    room = memory.Available(int(1.5 * 1024**3), "the test's limit")
    monkeypatch.setattr(memory, "available", lambda: room)
    return room


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: planning must refuse before it."""
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    def load(*a, **k):
        raise AssertionError("the model loaded")

    monkeypatch.setattr(TeamPipeline, "load", load)


def test_processed_size_at_resolution():
    assert planning.processed_size(4000, 3000, None) == (4000, 3000)
    assert planning.processed_size(4000, 3000, 1000) == (1000, 750)


def test_pass_pixels_full_frame_or_a_window_batch():
    from teamwork_cli.pipelines.tiling import WindowOptions

    assert planning.pass_pixels(4096, 4096, None) is None
    auto = WindowOptions.automatic()
    assert planning.pass_pixels(1000, 1000, auto) is None  # under the full-frame size: one pass
    assert planning.pass_pixels(4096, 4096, auto) == 512 * 512
    assert planning.pass_pixels(4096, 4096, WindowOptions(window=1024)) == 1024 * 1024


def test_a_photo_too_large_for_memory_is_refused_before_the_model_loads_and_the_batch_goes_on(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png, little_memory, monkeypatch
):
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in/a.png", np.full((24, 24, 3), 0.5))
    write_png(tmp_path / "in/c.png", np.full((24, 24, 3), 0.5))
    # The middle photo's header claims 6000 x 6000: refused from the header, nothing of it decoded.
    big = tmp_path / "in/b.png"
    write_png(big, np.full((8, 8, 3), 0.5))
    raw = bytearray(big.read_bytes())
    raw[16:24] = (6000).to_bytes(4, "big") * 2
    big.write_bytes(bytes(raw))
    args = ["svbrdf", tmp_path / "in", "-o", tmp_path / "out", "--adapter", tiny_svbrdf_adapter]
    code, out, err = run([str(a) for a in [*args, "--base", tiny_base, "--json"]], capsys)
    assert code == 1
    assert "b.png" in err and "svbrdf at 6000x6000" in err and "1.5 GB, set by the test's limit" in err
    assert "Hint: process it smaller (--resolution N)" in err
    records = {json.loads(line)["input"].split("/")[-1]: json.loads(line) for line in out.splitlines()}
    assert "error" in records["b.png"] and records["a.png"]["files"] and records["c.png"]["files"]
    assert sorted({p.name.split("_")[0] for p in (tmp_path / "out").iterdir()}) == ["a", "c"]


def test_every_input_refused_loads_no_model(tmp_path, capsys, run, write_png, no_model, little_memory):
    photo = write_png(tmp_path / "p.png", np.full((16, 16, 3), 0.5))
    code, out, err = run(["svbrdf", str(photo), "-o", str(tmp_path / "o"), "--resolution", "8000"], capsys)
    assert code == 1 and "svbrdf at 8000x8000" in err and "1 of 1 inputs failed; nothing was written" in err
    assert not (tmp_path / "o").exists()


def test_resolution_over_the_pixel_budget_is_that_inputs_error(tmp_path, capsys, run, write_png, no_model):
    photo = write_png(tmp_path / "p.png", np.full((16, 16, 3), 0.5))
    code, _, err = run(["intrinsics", str(photo), "-o", str(tmp_path / "o"), "--resolution", "20000"], capsys)
    assert code == 1 and "20000x20000 as processed at --resolution 20000 is 400 MP, over the pixel budget" in err


def test_max_pixels_refuses_a_photo_from_its_header(tmp_path, capsys, run, write_png, no_model, monkeypatch):
    photo = write_png(tmp_path / "p.png", np.full((40, 40, 3), 0.5))
    code, _, err = run(["svbrdf", str(photo), "-o", str(tmp_path / "o"), "--max-pixels", "1000"], capsys)
    assert code == 1 and "claims 40x40 pixels" in err and "budget of 0.001 MP" in err
    monkeypatch.delenv("TEAMWORK_MAX_PIXELS", raising=False)
    assert memory.max_pixels() == memory.MAX_PIXELS  # the option was that command's only


@pytest.mark.parametrize(
    "args",
    [
        ["synthesize", "-n", "1", "--size", "30000"],
        ["synthesize", "-n", "1", "--size", "300x300", "--max-pixels", "1000"],
    ],
)
def test_synthesize_size_over_the_budget_is_bad_usage_before_the_model(tmp_path, capsys, run, args, no_model):
    code, _, err = run([*args, "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "--size" in err and "over the pixel budget" in err
    assert not (tmp_path / "o").exists()


def test_synthesize_size_over_memory_is_refused_before_the_model(tmp_path, capsys, run, no_model, little_memory):
    code, _, err = run(["synthesize", "-n", "1", "--size", "8000", "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "synthesize at 8000x8000" in err and "Error:" in err and "Traceback" not in err


def test_render_size_over_the_budget_is_bad_usage(tmp_path, capsys, run, write_png):
    (tmp_path / "m").mkdir()
    write_png(tmp_path / "m/diffuse.png", np.full((16, 16, 3), 0.5))
    code, _, err = run(["render", str(tmp_path / "m"), "--size", "30000", "-o", str(tmp_path / "r.png")], capsys)
    assert code == 2 and "--size" in err and "30000x30000 is 900 MP, over the pixel budget" in err
    assert not (tmp_path / "r.png").exists()


def test_shade_buffers_too_large_for_memory_are_refused_before_reading(tmp_path, capsys, run, write_png, little_memory):
    a = write_png(tmp_path / "a.png", np.full((16, 16, 3), 0.5))
    n = write_png(tmp_path / "n.png", np.full((16, 16, 3), 0.5))
    args = ["shade", "--albedo", a, "--normals", n, "--resolution", "9000", "-o", tmp_path / "s.png"]
    code, _, err = run([str(x) for x in args], capsys)
    assert code == 1 and "shade at 9000x9000" in err and not (tmp_path / "s.png").exists()
