"""Start-up's heavy imports run with the cyclic collector paused, and it is back on, as it was, afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys
from importlib.machinery import SourceFileLoader

import pytest

from teamwork_cli.cli import startup


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was else gc.disable()


def test_the_collector_is_paused_inside_and_back_after(collector_on):
    frozen = gc.get_freeze_count()
    kept = [[] for _ in range(100)]  # tracked objects alive inside the pause: frozen after it
    with startup.collector_paused():
        assert not gc.isenabled()
        with startup.collector_paused():  # nested: still off when the inner one ends
            made = [{} for _ in range(100)]
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(kept) + len(made)
    gc.unfreeze()  # leave the test process as it was: its objects collectable again


def test_a_disabled_collector_stays_disabled(collector_on):
    gc.disable()
    with startup.collector_paused():
        pass
    assert not gc.isenabled()
    gc.unfreeze()


def test_a_heavy_package_imports_with_the_collector_off_and_keeps_its_loader(tmp_path, monkeypatch, collector_on):
    pkg = tmp_path / "heavy_pkg_for_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import gc\nCOLLECTING = gc.isenabled()\nfrom . import part\n")
    (pkg / "part.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n")
    (tmp_path / "light_pkg_for_test.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(startup, "HEAVY", frozenset({"heavy_pkg_for_test"}))
    for name in ("heavy_pkg_for_test", "heavy_pkg_for_test.part", "light_pkg_for_test"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    before = list(sys.meta_path)
    with startup.paused_heavy_imports():
        import heavy_pkg_for_test
        import light_pkg_for_test
    assert heavy_pkg_for_test.COLLECTING is False and heavy_pkg_for_test.part.COLLECTING is False
    assert light_pkg_for_test.COLLECTING is True  # only the heavy packages pay for the pause
    assert gc.isenabled() and sys.meta_path == before  # the finder is gone again
    assert isinstance(heavy_pkg_for_test.__loader__, SourceFileLoader)
    assert heavy_pkg_for_test.__spec__.loader is heavy_pkg_for_test.__loader__
    gc.unfreeze()


def test_the_entry_point_leaves_help_torch_free_and_the_collector_on(tmp_path):
    script = (
        "import gc, sys\n"
        "from teamwork_cli.cli.entry import main\n"
        "codes = [main(['--help']), main(['svbrdf', '--help']), main(['svbrdf', 'x.png', '-o', 'o', '--seed', '-1'])]\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print(codes, heavy, gc.isenabled(), file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "[0, 0, 2] [] True"


def test_a_command_imports_torch_through_the_pause(tmp_path):
    # `info` imports torch (the adapter reader): two pauses, the CLI's import and torch's, each finding the collector
    # on, and it is on again after.
    script = (
        "import gc, sys\n"
        "from teamwork_cli.cli import startup\n"
        "seen = []\n"
        "real = startup.collector_paused\n"
        "def spy():\n"
        "    seen.append(gc.isenabled())\n"
        "    return real()\n"
        "startup.collector_paused = spy\n"
        "from teamwork_cli.cli.entry import main\n"
        "code = main(['info', 'svbrdf'])\n"
        "print(code, 'torch' in sys.modules, seen, gc.isenabled(), file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "0 True [True, True] True"
