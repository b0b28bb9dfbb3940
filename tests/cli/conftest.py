"""Fixtures of the command tests: running `teamwork` in-process and listing what it wrote."""

from __future__ import annotations

import pytest

from teamwork_cli.cli.app import main


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.split(), err


def _written(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="session")
def run():
    """run(args, capsys) -> (exit code, stdout, stderr) of `teamwork ARGS`."""
    return _run


@pytest.fixture(scope="session")
def cli():
    """cli(capsys, *args) -> (exit code, stdout split into the files it lists, stderr) of `teamwork ARGS`; args may
    be paths."""
    return _cli


@pytest.fixture(scope="session")
def written():
    """written(folder) -> the sorted names of the files in folder."""
    return _written
