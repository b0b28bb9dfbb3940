"""`teamwork finetune`: folder and procedural data, checkpoints, exact resume, one-step adapters, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from teamwork_cli.cli.app import main


def _args(dataset, base, out, steps, *extra):
    return [
        "finetune",
        "--channels",
        "image.in,diffuse.out,normals.out",
        "--data",
        str(dataset),
        "--base",
        str(base),
        "-o",
        str(out),
        "--steps",
        str(steps),
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
        *extra,
    ]


def _tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_finetune_writes_published_format(tmp_path, dataset, tiny_base, capsys):
    out = tmp_path / "a.safetensors"
    assert main(_args(dataset, tiny_base, out, 3)) == 0
    tensors, meta = _tensors(out)
    assert meta["modelspec.type"] == "teamwork"
    assert meta["teamwork.teammates"] == "image.in,diffuse.out,normals.out"
    assert meta["teamwork.train_steps"] == "3"
    assert (
        meta["modelspec.architecture"] == f"{tiny_base}/teamwork" == f"{meta['base_model']}/teamwork"
    )  # as the reference
    downs = [k for k in tensors if k.endswith(".adapter.down")]
    assert downs and all(tensors[k].shape[0] == 3 and tensors[k].shape[2] == 2 for k in downs)
    assert any(tensors[k].abs().sum() > 0 for k in tensors if k.endswith(".adapter.up"))  # it trained
    assert str(out) in capsys.readouterr().out


def test_killed_run_resumes_exactly(tmp_path, dataset, tiny_base):
    full, part = tmp_path / "full.safetensors", tmp_path / "part.safetensors"
    assert main(_args(dataset, tiny_base, full, 6)) == 0
    # "kill" after the checkpoint at step 4: run a 4-step job, then resume the same 6-step job
    assert main(_args(dataset, tiny_base, part, 4)) == 0
    assert main([*_args(dataset, tiny_base, part, 6), "--resume"]) == 0
    (a, meta_a), (b, meta_b) = _tensors(full), _tensors(part)
    assert meta_a["teamwork.train_steps"] == meta_b["teamwork.train_steps"] == "6"
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_resume_without_state_fails(tmp_path, dataset, tiny_base, capsys):
    code = main([*_args(dataset, tiny_base, tmp_path / "x.safetensors", 2), "--resume"])
    assert code == 1 and "no training state" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--channels", "image.in,Diffuse.out"], "must look like"),
        (["--channels", "image.in,image.in,diffuse.out"], "listed twice"),
        (["--channels", "image.in,diffuse.in"], "no output teammate"),
        (["--preset", "nope"], "available"),
    ],
)
def test_bad_channels(tmp_path, dataset, tiny_base, capsys, bad, message):
    args = ["finetune", *bad, "--data", str(dataset), "--base", str(tiny_base), "-o", str(tmp_path / "o.st")]
    assert main(args) == 2  # bad usage, found before the data or the model loads
    err = capsys.readouterr().err
    assert err.startswith("Error:") and message in err


def test_init_continues_from_an_adapter(tmp_path, dataset, tiny_base, capsys):
    first, cont = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(_args(dataset, tiny_base, first, 3)) == 0
    assert main([*_args(dataset, tiny_base, cont, 1), "--init", str(first), "--lr", "0"]) == 0
    (a, _), (b, meta) = _tensors(first), _tensors(cont)
    assert meta["teamwork.init"] == "a.safetensors (3 steps)"
    for k in a:  # with lr 0 the continued adapter is the initial one
        torch.testing.assert_close(a[k], b[k])
    capsys.readouterr()
    args = _args(dataset, tiny_base, tmp_path / "c.safetensors", 1, "--init", str(first))
    code = main([*args[: args.index("--rank") + 1], "4", *args[args.index("--rank") + 2 :]])
    assert code == 1 and "another --rank" in capsys.readouterr().err
    code = main([*_args(dataset, tiny_base, tmp_path / "d.safetensors", 1), "--init", str(first), "--no-coordination"])
    assert code == 1 and "coordination on" in capsys.readouterr().err


def test_resume_keeps_the_precision_the_run_started_with(tmp_path, dataset, tiny_base, monkeypatch):
    from teamwork_cli.training import loop as train

    out = tmp_path / "p.safetensors"
    args = [a for a in _args(dataset, tiny_base, out, 2) if a not in ("--mixed-precision", "no")]
    monkeypatch.setattr(train, "resolve_mixed_precision", lambda: "bf16")  # a machine with native bf16
    assert main(args) == 0
    assert train.stored_precision(out.with_name(out.name + ".state.pt")) == "bf16"
    monkeypatch.setattr(train, "resolve_mixed_precision", lambda: "no")  # resumed elsewhere
    args[args.index("--steps") + 1] = "4"
    assert main([*args, "--resume"]) == 0
    assert train.stored_precision(out.with_name(out.name + ".state.pt")) == "bf16"


def test_one_step_adapter_is_recorded_and_sampled_deterministically(tmp_path, dataset, tiny_base, capsys):
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    out = tmp_path / "one.safetensors"
    assert main([*_args(dataset, tiny_base, out, 2), "--one-step", "--lr", "1e-2"]) == 0
    assert _tensors(out)[1]["teamwork.objective"] == "one-step"
    assert main(["info", str(out)]) == 0 and "one-step" in capsys.readouterr().out
    pipe = TeamPipeline.load(out, base=str(tiny_base), device="cpu", dtype="fp32")
    assert pipe.one_step
    photo = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    calls = []
    a = pipe({"image.in": photo}, steps=4, seed=0, callback=lambda i, n: calls.append((i, n)))
    b = pipe({"image.in": photo}, steps=1, seed=7)
    assert calls == [(1, 1)]  # one pass, whatever --steps says
    for k in a:  # no noise: the seed changes nothing
        torch.testing.assert_close(a[k], b[k])
    # A diffusion adapter of the same base does depend on the seed.
    diff = tmp_path / "diff.safetensors"
    assert main([*_args(dataset, tiny_base, diff, 2), "--lr", "1e-2"]) == 0
    assert _tensors(diff)[1]["teamwork.objective"] == "diffusion"
    pipe = TeamPipeline.load(diff, base=str(tiny_base), device="cpu", dtype="fp32")
    c, d = pipe({"image.in": photo}, seed=0), pipe({"image.in": photo}, seed=7)
    assert not pipe.one_step and not torch.allclose(c["diffuse.out"], d["diffuse.out"])


def test_one_step_start_is_recorded_and_reads_its_input(tmp_path, dataset, tiny_base, capsys):
    """--start diffuse.out=image.in: diffuse starts from the photo; with coordination off that is the only way the
    photo can reach it, so the output follows the photo with the start and ignores it without."""
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    out, plain = tmp_path / "start.safetensors", tmp_path / "plain.safetensors"
    common = ["--one-step", "--lr", "1e-2", "--no-coordination"]
    assert (
        main([*_args(dataset, tiny_base, out, 2), *common, "--start", "diffuse.out=image.in", "--start-level", "0.2"])
        == 0
    )
    meta = _tensors(out)[1]
    assert meta["teamwork.one_step_start"] == "diffuse.out=image.in" and float(meta["teamwork.one_step_level"]) == 0.2
    capsys.readouterr()
    assert main(["info", str(out)]) == 0 and "diffuse.out=image.in at level 0.2" in capsys.readouterr().out
    assert main([*_args(dataset, tiny_base, plain, 2), *common]) == 0
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    pipe = TeamPipeline.load(out, base=str(tiny_base), device="cpu", dtype="fp32")
    assert pipe.one_step_start == ({"diffuse.out": "image.in"}, 0.2)
    assert not torch.allclose(pipe({"image.in": a})["diffuse.out"], pipe({"image.in": b})["diffuse.out"])
    torch.testing.assert_close(pipe({"image.in": a})["normals.out"], pipe({"image.in": b})["normals.out"])
    pipe = TeamPipeline.load(plain, base=str(tiny_base), device="cpu", dtype="fp32")
    assert pipe.one_step_start == ({}, 1.0)
    torch.testing.assert_close(pipe({"image.in": a})["diffuse.out"], pipe({"image.in": b})["diffuse.out"])


def test_bad_usage_fails_before_training(tmp_path, dataset, tiny_base, capsys):
    out = tmp_path / "x.safetensors"
    cases = [
        (["--start", "diffuse.out=image.in"], 2, "add --one-step"),
        (["--one-step", "--start", "diffuse.out=normals.out"], 2, "must be OUTPUT=INPUT teammates"),
        (["--one-step", "--start", "diffuse.out"], 2, "OUT=IN"),
        (["--one-step", "--start", "diffuse.out=image.in,diffuse.out=normals.in"], 2, "one input"),
        (["--one-step", "--start-level", "1.5"], 2, "start level must be in (0, 1]"),
        (["--optimizer", "sgd"], 2, "adamw, prodigy"),
        (["--batch-size", "0"], 2, "--batch-size: must be at least 1"),
        (["--data", "procedural:nope"], 2, "procedural:svbrdf"),
        (["--hole-fill", "blue"], 2, "grey, harmonic"),
        (["--resolution", "41"], 1, "not a multiple of"),
        (["--checkpoint-every", "0"], 2, "--checkpoint-every:"),
        (["--rank", "0"], 2, "--rank: must be at least 1"),
        (["--dropout", "1.5"], 2, "--dropout:"),
        (["--lr", "-1"], 2, "--lr: must be at least 0"),
        (["--warmup", "-1"], 2, "--warmup:"),
        (["--mixed-precision", "fp8"], 2, "--mixed-precision: must be one of auto"),
    ]
    for extra, code, message in cases:
        assert main([*_args(dataset, tiny_base, out, 1), *extra]) == code
        err = capsys.readouterr().err
        assert err.startswith("Error:") and message in err, err
    assert not out.exists()


def test_hole_loss_needs_a_mask_teammate(tmp_path, dataset, tiny_base, capsys):
    out = tmp_path / "x.safetensors"
    assert main([*_args(dataset, tiny_base, out, 1), "--hole-loss"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: hole loss needs a mask.in teammate") and "image.in, diffuse.out" in err, err
    assert not out.exists()


def test_finetune_never_overwrites_unless_asked(tmp_path, dataset, tiny_base, capsys):
    out = tmp_path / "a.safetensors"
    assert main(_args(dataset, tiny_base, out, 1)) == 0
    first = out.read_bytes()
    assert main(_args(dataset, tiny_base, out, 1)) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == first
    state = out.with_name(out.name + ".state.pt")
    state.write_bytes(b"a killed run")  # a run's state: neither silently continued nor silently dropped
    out.unlink()
    assert main(_args(dataset, tiny_base, out, 1)) == 1
    assert "--resume" in capsys.readouterr().err and not out.exists()
    assert main([*_args(dataset, tiny_base, out, 1), "--overwrite"]) == 0 and out.is_file()
    assert not state.read_bytes().startswith(b"a killed run")  # the replaced run's state went with it
    state.write_bytes(b"a killed run")
    assert main([*_args(dataset, tiny_base, out, 1), "--overwrite", "--resolution", "41"]) == 1  # fails early
    assert not state.exists()  # a later --resume cannot continue the replaced run


def test_out_is_checked_before_training(tmp_path, dataset, tiny_base, capsys, monkeypatch):
    import teamwork_cli.training.finetune as ft

    def no_data(*a, **k):
        raise AssertionError("data loaded before -o was checked")

    monkeypatch.setattr(ft, "make_source", no_data)
    folder = tmp_path / "out"
    folder.mkdir()
    assert main([*_args(dataset, tiny_base, folder, 1), "--overwrite"]) == 2  # bad usage, no training
    err = capsys.readouterr().err
    assert err.startswith("Error:") and str(folder) in err and "Hint:" in err and "Traceback" not in err, err
    assert list(folder.iterdir()) == [] and not (tmp_path / "out.state.pt").exists()
    missing = tmp_path / "nope" / "a.safetensors"
    assert main(_args(dataset, tiny_base, missing, 1)) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error:") and str(missing.parent) in err and "Hint:" in err, err


def test_adapter_file_mode_follows_umask(tmp_path, dataset, tiny_base):
    import os
    import stat

    out = tmp_path / "a.safetensors"
    assert main(_args(dataset, tiny_base, out, 1)) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_finetune_unknown_preset_lists_available(tmp_path, capsys, run):
    code, _, err = run(["finetune", "--preset", "nope", "--data", str(tmp_path), "-o", str(tmp_path / "a")], capsys)
    assert code == 2 and "svbrdf" in err and "available" in err


def test_hole_loss_run_is_recorded(tmp_path, tiny_base, capsys, monkeypatch):
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path))
    out = tmp_path / "h.safetensors"
    assert (
        main(
            [
                "finetune",
                "--preset",
                "inpaint",
                "--data",
                "procedural:inpaint",
                "--pool",
                "3",
                "--base",
                str(tiny_base),
                "-o",
                str(out),
                "--steps",
                "1",
                "--batch-size",
                "1",
                "--resolution",
                "16",
                "--rank",
                "2",
                "--mixed-precision",
                "no",
                "--hole-fill",
                "harmonic",
                "--one-step",
                "--start",
                "image.out=image.in",
                "--start-level",
                "0.1",
                "--hole-loss",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "loss" in info and "hole" in info and "image.out=image.in at level 0.1" in info


@pytest.mark.parametrize("preset,kind", [("inpaint", "inpaint"), ("shade", "scenes"), ("synthesize", "synthesize")])
def test_finetune_on_task_sources(tmp_path, tiny_base, monkeypatch, preset, kind):
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path))
    out = tmp_path / "a.safetensors"
    assert (
        main(
            [
                "finetune",
                "--preset",
                preset,
                "--data",
                f"procedural:{kind}",
                "--base",
                str(tiny_base),
                "-o",
                str(out),
                "--steps",
                "1",
                "--batch-size",
                "2",
                "--resolution",
                "16",
                "--rank",
                "2",
                "--pool",
                "3",
                "--mixed-precision",
                "no",
            ]
        )
        == 0
    )
    assert out.is_file()


def test_finetune_renders_scenes_in_fp32_under_bf16_training(tmp_path, tiny_base, monkeypatch):
    """The scene tracer runs inside the loss; the trainer's bf16 autocast must not reach it."""
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path))
    out = tmp_path / "a.safetensors"
    assert (
        main(
            [
                "finetune",
                "--preset",
                "intrinsics",
                "--data",
                "procedural:scenes",
                "--base",
                str(tiny_base),
                "-o",
                str(out),
                "--steps",
                "1",
                "--batch-size",
                "1",
                "--resolution",
                "16",
                "--rank",
                "2",
                "--mixed-precision",
                "bf16",
            ]
        )
        == 0
    )
    assert out.is_file()


def test_bf16_training_prints_no_library_warning(tmp_path, dataset, tiny_base, capfd, caplog):
    out = tmp_path / "a.safetensors"
    assert main([*_args(dataset, tiny_base, out, 1), "--mixed-precision", "bf16"]) == 0
    err = capfd.readouterr().err + caplog.text  # libraries' loggers: their own stderr, or pytest's log capture
    assert "should be kept in float32" not in err and "Warning" not in err


def test_resume_with_another_rank_is_bad_usage_before_any_work(tmp_path, dataset, tiny_base, capsys):
    out = tmp_path / "r.safetensors"
    assert main(_args(dataset, tiny_base, out, 2)) == 0
    capsys.readouterr()
    before = out.read_bytes()
    code = main([*_args(dataset, tiny_base, out, 4), "--resume", "--rank", "8"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("Error:") and "has rank 2" in err and "--rank" in err, err
    assert out.read_bytes() == before  # nothing trained, nothing written


def test_a_failed_state_write_leaves_no_temporary(tmp_path, monkeypatch):
    from teamwork_cli.training import loop

    def full_disk(path, data):
        Path(path).write_bytes(bytes(data[:7]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop, "_write_file", full_disk)
    target = tmp_path / "a.safetensors.state.pt"
    target.write_bytes(b"the previous state")
    with pytest.raises(OSError, match="No space left"):
        loop._atomic_save({"step": 1}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors.state.pt"]
    assert target.read_bytes() == b"the previous state"
