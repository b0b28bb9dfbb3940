"""Batch inference split over processes: `accelerate launch -m teamwork_cli svbrdf FOLDER -o DIR` on this CPU."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from teamwork_cli.core import distributed

MAPS = ["diffuse", "specular", "roughness", "normals", "basecolor", "metallic", "render"]


def test_shard_takes_every_pth_item():
    files = list(range(7))
    shards = [distributed.Shard(p, 3, None).take(files) for p in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(shards, [])) == files


def test_single_process_without_launcher(monkeypatch):
    for var in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert not distributed.launched()
    assert distributed.current() == distributed.Shard(0, 1, None)
    assert distributed.total(3) == 3


def _free_port() -> int:
    with socket.socket() as s:  # another job on this machine may hold accelerate's default port 29500
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_launch_splits_files(tmp_path, tiny_base, tiny_svbrdf_adapter, write_png):
    """2 CPU processes, 6 files (2 unreadable, one for each process): every good file written once, by one
    process, the failures counted over both processes, and a non-zero exit code."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a_bad.png", "b_bad.png"):  # sorted first: file 0 goes to process 0, file 1 to process 1
        (src / name).write_bytes(b"not an image")
    rng = np.random.default_rng(0)
    for k in range(4):
        write_png(src / f"p{k}.png", rng.random((24, 24, 3)))
    out = tmp_path / "out"
    accelerate = Path(sys.executable).parent / "accelerate"
    # --multi_gpu makes accelerate start one process per --num_processes through torchrun even without a GPU
    # (--cpu alone runs a single process); teamwork then joins them in a CPU (gloo) process group.
    cmd = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "teamwork_cli",
        "svbrdf",
        str(src),
        "-o",
        str(out),
        "--adapter",
        str(tiny_svbrdf_adapter),
        "--base",
        str(tiny_base),
        "--steps",
        "1",
        "--batch-size",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf")}  # no user accelerate config
    env.pop("TEAMWORK_DEBUG", None)
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0, run.stderr
    written = run.stdout.split()
    expected = sorted(str(out / f"p{k}_{m}.png") for k in range(4) for m in MAPS)
    assert sorted(written) == expected  # each listed once: no file done twice
    assert sorted(str(p) for p in out.iterdir()) == expected
    assert f"[process 0] Error: {src / 'a_bad.png'}" in run.stderr
    assert f"[process 1] Error: {src / 'b_bad.png'}" in run.stderr
    assert run.stderr.count("Hint: 2 of 6 inputs failed") == 1  # the total, from the first process only
