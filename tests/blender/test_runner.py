"""The add-on's runner without Blender: command lines, the stderr parser, run folders, and jobs running stand-in
scripts and the real `teamwork` command (progress through the pipe, errors, cancel)."""

from __future__ import annotations

import os
import signal
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from teamwork_cli.blender.teamwork_material import runner

TEAMWORK = Path(sys.executable).with_name("teamwork")
BAR = "\x1b[?25l\r\x1b[2Kwood.png \u2501\u2501\u2501\u2501 {done}/{total} 0:00:0{done}"  # rich's live bar on a pipe


def test_svbrdf_command_passes_the_options_that_matter(tmp_path: Path) -> None:
    argv = runner.svbrdf_command(
        "tw", tmp_path / "p.png", tmp_path / "o", tileable=True, resolution=512, adapter="mine.safetensors",
        device="cuda", seed=7, fit="none",
    )  # fmt: skip
    assert argv[:5] == ["tw", "svbrdf", str(tmp_path / "p.png"), "-o", str(tmp_path / "o")]
    text = " ".join(argv)
    for part in ("--tileable", "--resolution 512", "--adapter mine.safetensors", "--device cuda", "--seed 7"):
        assert part in text
    assert "--fit none" in text
    plain = runner.svbrdf_command("tw", Path("p.png"), Path("o"))
    assert "--resolution" not in plain and "--tileable" not in plain and "--adapter" not in plain
    assert plain[-4:] == ["--device", "auto", "--seed", "0"]
    with pytest.raises(runner.RunnerError, match="device"):
        runner.svbrdf_command("tw", Path("p.png"), Path("o"), device="gpu")
    with pytest.raises(runner.RunnerError, match="fit"):
        runner.svbrdf_command("tw", Path("p.png"), Path("o"), fit="all")


def test_intrinsics_and_synthesize_commands() -> None:
    assert runner.intrinsics_command("tw", Path("p.png"), Path("o"), resolution=64)[:6] == [
        "tw", "intrinsics", "p.png", "-o", "o", "--resolution",
    ]  # fmt: skip
    argv = runner.synthesize_command("tw", Path("o"), size=64, steps=4, tileable=True, seed=2)
    assert argv[:10] == ["tw", "synthesize", "-n", "1", "-o", "o", "--size", "64", "--steps", "4"]
    assert "--tileable" in argv and argv[argv.index("--seed") + 1] == "2"


def test_parser_reads_progress_from_redrawn_lines_and_tagged_lines_in_any_chunks() -> None:
    text = "".join(BAR.format(done=k, total=4) for k in range(5)) + "\x1b[?25h\r\x1b[1A\x1b[2K"
    text += "Warning: something odd\nError: p.png: cannot read\nHint: check the file\n"
    text += "[process 1] Error: q.png: too big\nHint: 2 of 2 inputs failed\nplain tail line"
    for size in (1, 7, len(text)):  # however the pipe splits it
        p = runner.StderrParser()
        for i in range(0, len(text), size):
            p.feed(text[i : i + size])
        p.close()
        assert p.progress == (4, 4) and p.fraction() == 1.0
        assert p.status.startswith("wood.png")
        assert p.errors() == [
            "p.png: cannot read (hint: check the file)",
            "q.png: too big (hint: 2 of 2 inputs failed)",
        ]
        assert ("Warning", "something odd") in p.messages
        assert list(p.tail) == ["plain tail line"]


def test_parser_leaves_times_paths_and_names_alone() -> None:
    p = runner.StderrParser()
    p.feed("Loading 0:00:03 from maps/01/02 IMG_7026.png\n")
    assert p.progress is None
    p.feed("photo 2 of 5\n")
    assert p.progress == (2, 5)
    assert runner.StderrParser().errors() == []


def test_new_run_folder_never_reuses_a_folder(tmp_path: Path) -> None:
    a = runner.new_run_folder(tmp_path / "base", "wood flash")
    b = runner.new_run_folder(tmp_path / "base", "wood flash")
    assert (a.name, b.name) == ("wood_flash", "wood_flash_2") and a.is_dir() and b.is_dir()
    assert runner.new_run_folder(tmp_path / "base", "../..").name == "material"
    runner.discard(a)
    assert not a.exists()


def test_maps_by_channel_groups_written_files() -> None:
    files = [Path("o/wood_flash_basecolor.png"), Path("o/wood_flash_normals.png"), Path("o/material_000_image.png")]
    assert runner.maps_by_channel([*files, Path("o/wood.gltf")]) == {
        "wood_flash": {"basecolor": files[0], "normals": files[1]},
        "material_000": {"image": files[2]},
    }


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "stand_in.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_job_collects_written_files_and_progress(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        f"""
        import sys
        for k in range(3):
            sys.stderr.write({BAR!r}.format(done=k + 1, total=3))
            sys.stderr.flush()
        print("{tmp_path / "a_basecolor.png"}")
        print("{tmp_path / "a_roughness.png"}", end="")
        """,
    )
    job = runner.Job(argv)
    assert job.wait(60) == 0
    assert job.written == [tmp_path / "a_basecolor.png", tmp_path / "a_roughness.png"]
    assert job.parser.progress == (3, 3)


def test_job_failure_without_error_line_reports_code_and_last_lines(tmp_path: Path) -> None:
    job = runner.Job(_script(tmp_path, "import sys; sys.stderr.write('Traceback\\nboom\\n'); sys.exit(3)"))
    code = job.wait(60)
    assert code == 3 and job.failure(code) == ["teamwork exited with code 3: Traceback | boom"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cancel_ends_the_process(tmp_path: Path) -> None:
    job = runner.Job(_script(tmp_path, "import time; print('started', flush=True); time.sleep(60)"))
    while not job.written:
        job.poll()
    job.cancel(grace=5)
    assert job.cancelled and job.proc.returncode == -signal.SIGTERM
    assert job.failure(job.proc.returncode) == ["cancelled"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX execute permission")
def test_find_teamwork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "bin" / "teamwork"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    with pytest.raises(runner.RunnerError, match="not an executable"):
        runner.find_teamwork(str(exe))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert runner.find_teamwork(str(exe)) == str(exe)
    assert runner.find_teamwork(str(exe.parent)) == str(exe)  # a folder holding it
    monkeypatch.setenv("PATH", str(exe.parent))
    assert runner.find_teamwork() == str(exe)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(runner.RunnerError, match="not on PATH"):
        runner.find_teamwork()


@pytest.mark.skipif(not TEAMWORK.is_file(), reason="needs the package's teamwork command in this environment")
def test_the_real_command_progress_and_errors_reach_the_parser(tmp_path: Path) -> None:
    argv = runner.synthesize_command(str(TEAMWORK), tmp_path / "o", size=16, steps=3, device="cpu")
    job = runner.Job(argv)
    assert job.wait(300) == 0, job.failure(1)
    assert job.parser.progress == (3, 3)  # the CLI's own bar, drawn on our pipe
    assert {p.name for p in job.written} >= {"material_000_basecolor.png", "material_000_normals.png"}
    job = runner.Job(runner.svbrdf_command(str(TEAMWORK), tmp_path / "missing.png", tmp_path / "x", device="cpu"))
    code = job.wait(300)
    assert code == 1
    (message,) = job.failure(code)
    assert "missing.png" in message and "(hint: " in message
    assert os.listdir(tmp_path) == ["o"]
