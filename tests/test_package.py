"""The top-level package: a lazy API (`import teamwork_cli` loads no torch), every public name resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import teamwork_cli


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_package_loads_no_heavy_library():
    heavy = ("torch", "diffusers", "transformers", "numpy", "typer")
    out = _python(
        "import sys, teamwork_cli; print(teamwork_cli.__version__); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    version, loaded = (out.splitlines() + [""])[:2]
    assert version == teamwork_cli.__version__ and loaded == ""


def test_touching_a_name_imports_only_what_it_needs():
    out = _python(
        "import sys, teamwork_cli; e = teamwork_cli.TeamworkError('x', 'y'); "
        "print(e.hint, 'torch' in sys.modules, 'TeamworkError' in vars(teamwork_cli))"
    )
    assert out == "y False True"  # cached in the module after the first lookup
    assert _python("import sys, teamwork_cli; teamwork_cli.TeamBatch; print('torch' in sys.modules)") == "True"


@pytest.mark.parametrize("name", sorted(set(teamwork_cli.__all__) - {"__version__"}))
def test_every_public_name_resolves_to_its_defining_module(name):
    value = getattr(teamwork_cli, name)
    module = importlib.import_module(teamwork_cli._LAZY[name])
    assert value is getattr(module, name)
    assert getattr(value, "__module__", module.__name__) == module.__name__


def test_all_and_the_lazy_table_agree():
    assert set(teamwork_cli.__all__) == set(teamwork_cli._LAZY) | {"__version__"}
    assert len(teamwork_cli.__all__) == len(set(teamwork_cli.__all__))
    assert dir(teamwork_cli) == sorted(teamwork_cli.__all__)
    assert teamwork_cli.__version__ == "0.1.0"


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'teamwork_cli' has no attribute 'TeamPipelin'"):
        teamwork_cli.TeamPipelin  # noqa: B018
    assert not hasattr(teamwork_cli, "load_hub_denoiser")  # public only through its own module
    from teamwork_cli import TeamLayout  # `from ... import` goes through the same lookup

    assert TeamLayout.from_names("image.in,x.out").outputs[0].name == "x.out"
