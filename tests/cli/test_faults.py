"""Fault injection across the commands: a full disk, signals at several points, a killed finetune resumed, bombs
and pipes, a batch with a failing middle input. In each, no temporary or partial file is left."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

from teamwork_cli.cli.app import main

FINETUNE = [
    "finetune",
    "--channels",
    "image.in,diffuse.out,normals.out",
    "--batch-size",
    "2",
    "--resolution",
    "16",
    "--rank",
    "2",
    "--checkpoint-every",
    "2",
    "--mixed-precision",
    "no",
]


def _finetune(data, base, out, steps, *extra):
    return [*FINETUNE, "--data", str(data), "--base", str(base), "-o", str(out), "--steps", str(steps), *extra]


def _tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _leftovers(folder):
    """Hidden temporaries (.<name>.tmp-*) and anything else a failed write could leave."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp-" in p.name or ".part-" in p.name)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder on a filesystem with about 4 KB free: a small tmpfs where one can be mounted (root on Linux),
    else a folder whose writers fail mid-file with ENOSPC (the writers' temp files are written, then the error)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode == 0:
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        (folder / "filler").write_bytes(b"\0" * (free - 4096))
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
        return
    from teamwork_cli.materials import files
    from teamwork_cli.training import loop

    real_publish = files.publish

    def publish(p, write, overwrite):
        def failing(tmp):
            write(tmp)
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

        return real_publish(p, failing if folder in p.parents else write, overwrite)

    real_write = loop._write_file

    def write_file(path, data):
        real_write(path, data)
        if folder in path.parents:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "publish", publish)
    monkeypatch.setattr(loop, "_write_file", write_file)
    (folder / "filler").write_bytes(b"")
    yield folder


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging: a read that blocks (a pipe) is interrupted by SIGALRM."""

    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _photos(folder, write_png, names=("a", "b", "c"), size=32):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    return [write_png(folder / f"{n}.png", rng.random((size, size, 3))) for n in names]


def test_full_disk_leaves_no_map_and_no_temporary(
    tmp_path, full_disk, tiny_base, tiny_svbrdf_adapter, capsys, write_png
):
    _photos(tmp_path / "in", write_png, ("a", "b"), size=64)
    args = ["svbrdf", tmp_path / "in", "-o", full_disk, "--adapter", tiny_svbrdf_adapter, "--base", tiny_base]
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "2 of 2 inputs failed" in err
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # all of an input's maps or none


def test_full_disk_during_finetune_leaves_no_state_or_adapter_temporary(
    tmp_path, full_disk, dataset, tiny_base, capsys
):
    code = main(_finetune(dataset, tiny_base, full_disk / "a.safetensors", 2))
    assert code == 1 and "No space left on device" in capsys.readouterr().err
    assert _leftovers(full_disk) == [] and not (full_disk / "a.safetensors").exists()


@pytest.mark.parametrize("point", ["model pass", "map write"])
def test_sigterm_at_several_points_of_svbrdf_removes_everything_staged(
    tmp_path, point, tiny_base, tiny_svbrdf_adapter, capsys, write_png, monkeypatch
):
    from teamwork_cli.materials import files
    from teamwork_cli.tasks import svbrdf

    def terminate(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs here
        raise AssertionError("SIGTERM was not taken")

    if point == "model pass":
        monkeypatch.setattr(svbrdf, "estimate", terminate)
    else:
        real = files.link_new
        calls = []

        def link_new(tmp, p):  # the third map: two are in place, the others staged
            calls.append(p)
            return terminate() if len(calls) == 3 else real(tmp, p)

        monkeypatch.setattr(files, "link_new", link_new)
    _photos(tmp_path / "in", write_png, ("a",))
    out = tmp_path / "out"
    code = main(
        [str(a) for a in ["svbrdf", tmp_path / "in", "-o", out, "--adapter", tiny_svbrdf_adapter, "--base", tiny_base]]
    )
    assert code == 143 and "Error: terminated" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_sigterm_while_finetune_saves_its_state_leaves_no_temporary(tmp_path, dataset, tiny_base, capsys, monkeypatch):
    from teamwork_cli.training import loop

    real = loop._write_file

    def write_file(path, data):
        real(path, data)  # the temporary is complete on disk when the signal comes
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

    monkeypatch.setattr(loop, "_write_file", write_file)
    out = tmp_path / "o" / "a.safetensors"
    out.parent.mkdir()
    assert main(_finetune(dataset, tiny_base, out, 4)) == 143
    assert "terminated" in capsys.readouterr().err
    assert _leftovers(out.parent) == [] and not out.exists()


def test_finetune_killed_mid_run_resumes_to_the_unbroken_result(tmp_path, dataset, tiny_base):
    full, part = tmp_path / "full.safetensors", tmp_path / "part.safetensors"

    def teamwork(*args):  # every run in its own process, as a user's would be (same threads, same kernels)
        return [sys.executable, "-m", "teamwork_cli", *args]

    subprocess.run(teamwork(*_finetune(dataset, tiny_base, full, 12)), check=True, capture_output=True)
    proc = subprocess.Popen(
        teamwork(*_finetune(dataset, tiny_base, part, 12)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = part.with_name(part.name + ".state.pt")
    t0 = time.monotonic()
    while not state.exists() and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no handler runs: whatever it was writing stays as it was
    proc.wait()
    if proc.returncode == 0:  # it finished first (a fast machine): the resume below is then a no-op run
        part.unlink()
    subprocess.run(teamwork(*_finetune(dataset, tiny_base, part, 12), "--resume"), check=True, capture_output=True)
    a, b = _tensors(full), _tensors(part)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert _leftovers(tmp_path) == []


def test_bombs_and_pipes_are_their_inputs_errors_and_the_batch_goes_on(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, write_png
):
    a, b, c = _photos(tmp_path / "in", write_png)
    raw = bytearray(b.read_bytes())
    raw[16:24] = (30000).to_bytes(4, "big") * 2  # the header claims 30000 x 30000
    b.write_bytes(bytes(raw))
    os.mkfifo(tmp_path / "d.png")  # named on the command line (a folder's listing skips what is not a file)
    with deadline(60):
        code = main(
            [
                str(x)
                for x in [
                    "svbrdf",
                    tmp_path / "in",
                    tmp_path / "d.png",
                    "-o",
                    tmp_path / "out",
                    "--adapter",
                    tiny_svbrdf_adapter,
                    "--base",
                    tiny_base,
                ]
            ]
        )
    err = capsys.readouterr().err
    assert code == 1 and "claims 30000x30000" in err and "not a regular file" in err and "2 of 4 inputs failed" in err
    assert sorted({p.name.split("_")[0] for p in (tmp_path / "out").iterdir()}) == ["a", "c"]


@pytest.mark.parametrize("where", ["mask", "shade buffer", "finetune sample"])
def test_a_named_pipe_is_refused_without_blocking(tmp_path, where, dataset, tiny_base, capsys, write_png):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    img = write_png(tmp_path / "img.png", np.full((16, 16, 3), 0.5))
    args = {
        "mask": ["inpaint", img, "--mask", fifo, "-o", tmp_path / "o"],
        "shade buffer": ["shade", "--albedo", img, "--normals", fifo, "-o", tmp_path / "s.png"],
    }.get(where)
    if args is None:
        os.replace(fifo, dataset / "s0" / "diffuse.png")
        args = _finetune(dataset, tiny_base, tmp_path / "f.safetensors", 2)
    with deadline(60):
        code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code in (1, 2) and "not a regular file" in err


def test_a_corrupt_middle_input_fails_alone(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, write_png):
    a, b, c = _photos(tmp_path / "in", write_png)
    b.write_bytes(b.read_bytes()[:60])  # truncated after its header
    code = main(
        [
            str(x)
            for x in [
                "svbrdf",
                tmp_path / "in",
                "-o",
                tmp_path / "out",
                "--adapter",
                tiny_svbrdf_adapter,
                "--base",
                tiny_base,
            ]
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "b.png" in err and "1 of 3 inputs failed; the others were written" in err
    assert sorted({p.name.split("_")[0] for p in (tmp_path / "out").iterdir()}) == ["a", "c"]
    assert _leftovers(tmp_path / "out") == []
