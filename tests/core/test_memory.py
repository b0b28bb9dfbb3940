"""Memory planning: estimates, the memory available, the pixel budget."""

from __future__ import annotations

import pytest

from teamwork_cli.core import memory


def test_estimate_grows_with_the_canvas_and_windows_bound_the_pass():
    small, large = memory.estimate("svbrdf", 512, 512), memory.estimate("svbrdf", 4096, 4096)
    assert small.total < large.total
    windowed = memory.estimate("svbrdf", 4096, 4096, pass_pixels=512 * 512)
    assert windowed.network == memory.estimate("svbrdf", 512, 512).network  # the pass is one window batch
    assert windowed.canvas == large.canvas and windowed.total < large.total
    assert memory.estimate("svbrdf", 100, 100, pass_pixels=10**9).network == small.network * 100 * 100 // (512 * 512)


def test_estimate_names_the_allowed_tasks():
    with pytest.raises(ValueError, match="task must be one of svbrdf, intrinsics"):
        memory.estimate("paint", 10, 10)
    with pytest.raises(ValueError, match="must be positive"):
        memory.estimate("svbrdf", 0, 10)


def test_check_refuses_what_does_not_fit_and_says_why():
    plan = memory.estimate("synthesize", 8192, 8192)
    room = memory.Available(2 * 1024**3, "the test's limit")
    with pytest.raises(memory.MemoryPlanError, match=r"synthesize at 8192x8192.*2\.0 GB, set by the test's limit"):
        memory.check(plan, room)
    memory.check(memory.estimate("render", 64, 64), room)  # fits: no error


def test_available_honours_the_address_space_limit():
    import subprocess
    import sys

    code = (
        "import resource; from teamwork_cli.core import memory\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, resource.RLIM_INFINITY))\n"
        "a = memory.available(); print(a.bytes, a.limit)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) < 3 * 1024**3 and "ulimit -v" in " ".join(out[1:])


def test_max_pixels_from_option_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("TEAMWORK_MAX_PIXELS", raising=False)
    assert memory.max_pixels() == memory.MAX_PIXELS
    monkeypatch.setenv("TEAMWORK_MAX_PIXELS", "1000")
    assert memory.max_pixels() == 1000
    try:
        memory.set_max_pixels(50)
        assert memory.max_pixels() == 50
    finally:
        memory.set_max_pixels(None)
    assert memory.max_pixels() == 1000
    with pytest.raises(ValueError, match="positive number of pixels"):
        memory.set_max_pixels(0)
    monkeypatch.setenv("TEAMWORK_MAX_PIXELS", "-3")
    with pytest.raises(ValueError, match="must be a positive integer"):
        memory.max_pixels()
