"""`teamwork finetune`: folder data, heterogeneous samples, checkpoints, exact resume, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_png
from safetensors import safe_open

from teamwork_cli.cli.app import main
from teamwork_cli.training import data
from teamwork_cli.training.finetune import draw_active


@pytest.fixture()
def dataset(tmp_path):
    """Three samples; the second lacks normals (heterogeneous data)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(3):
        d = root / f"s{i}"
        d.mkdir(parents=True)
        write_png(d / "image.png", rng.random((20, 20, 3)))
        write_png(d / "diffuse.png", rng.random((20, 20, 3)))
        if i != 1:
            write_png(d / "normals.png", np.dstack([rng.random((20, 20, 2)) * 0.2 + 0.4, np.ones((20, 20))]))
    return root


def _args(dataset, base, out, steps, *extra):
    return ["finetune", "--channels", "image.in,diffuse.out,normals.out", "--data", str(dataset), "--base", str(base),
            "-o", str(out), "--steps", str(steps), "--batch-size", "2", "--resolution", "16", "--rank", "2",
            "--checkpoint-every", "2", "--mixed-precision", "no", *extra]


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


@pytest.mark.parametrize("bad, message", [
    (["--channels", "image.in,Diffuse.out"], "must look like"),
    (["--channels", "image.in,image.in,diffuse.out"], "listed twice"),
    (["--channels", "image.in,diffuse.in"], "no output teammate"),
    (["--preset", "nope"], "available"),
])
def test_bad_channels(tmp_path, dataset, tiny_base, capsys, bad, message):
    args = ["finetune", *bad, "--data", str(dataset), "--base", str(tiny_base), "-o", str(tmp_path / "o.st")]
    assert main(args) == 2  # bad usage, found before the data or the model loads
    err = capsys.readouterr().err
    assert err.startswith("Error:") and message in err


def test_dropout_keeps_an_output():
    g = torch.Generator().manual_seed(0)
    available = torch.ones(64, 4, dtype=torch.bool)
    is_output = torch.tensor([False, True, True, True])
    active = draw_active(available, is_output, 0.9, g)
    assert (active & is_output).any(dim=1).all()
    assert (active <= available).all()


def test_views_larger_than_the_pool_and_mixed_sizes(tmp_path):
    """Training crops above the pool size upsample; maps of one sample at two resolutions stay aligned."""
    from teamwork_cli.training.data import FolderSource, build_pool, svbrdf_views

    pool = build_pool(2, size=32)
    views = svbrdf_views(pool, 2, 48, torch.Generator().manual_seed(0))
    assert views["diffuse"].shape == (2, 3, 48, 48)
    d = tmp_path / "s0"
    d.mkdir()
    ramp = np.linspace(0, 1, 32)[None, :, None] * np.ones((32, 32, 3))
    write_png(d / "image.png", ramp)
    write_png(d / "diffuse.png", ramp[::2, ::2])  # the same surface at half the resolution
    batch = FolderSource(tmp_path, ["image", "diffuse"], 16)(1, torch.Generator().manual_seed(1))
    assert (batch["image"] - batch["diffuse"]).abs().mean() < 0.03


def test_auto_precision_avoids_emulated_bf16(monkeypatch):
    """On a CPU without native bf16 (emulated: 73x slower than fp32 on an AVX2 EPYC) auto means fp32."""
    import teamwork_cli.core.devices as devices
    import teamwork_cli.core.distributed as distributed
    from teamwork_cli.training.loop import resolve_mixed_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(distributed, "cpu_only", lambda: True)
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.auto_dtype(cpu) is None and resolve_mixed_precision() == "no"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.auto_dtype(cpu) == torch.bfloat16 and resolve_mixed_precision() == "bf16"
    monkeypatch.setattr(distributed, "cpu_only", lambda: False)  # training on a GPU
    assert resolve_mixed_precision() == "bf16"


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


@pytest.mark.parametrize("prediction", ["flow", "epsilon", "v_prediction"])
def test_x0_from_inverts_the_training_target(prediction):
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    from teamwork_cli.models.denoiser import TeamDenoiser

    class Den(TeamDenoiser):
        def predict(self, sample, timesteps, **cond):
            return sample

    sched = FlowMatchEulerDiscreteScheduler() if prediction == "flow" else DDPMScheduler(prediction_type=prediction)
    den = Den(torch.nn.Identity(), sched)
    den.prediction_type = "flow" if prediction == "flow" else prediction
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([10.0, 500.0, 900.0])
    x_t = den.add_noise(x0, eps, t)
    torch.testing.assert_close(den.x0_from(den.target(x0, eps, t), x_t, t), x0, atol=1e-4, rtol=1e-4)
    assert den.one_step_timestep() == (1000 if prediction == "flow" else 999)


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


def test_one_step_training_lowers_the_one_step_error(dataset, tiny_base):
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.core.layout import TeamLayout
    from teamwork_cli.models.embedded import EmbeddedDenoiser
    from teamwork_cli.training.finetune import make_source, team_loss

    layout = TeamLayout.from_names("image.in,diffuse.out,normals.out")
    den = EmbeddedDenoiser.from_pretrained(tiny_base)
    inject_adapter(den.model, layers_to_adapt(den.model), len(layout), 2)
    loss_fn = team_loss(layout, make_source(str(dataset), layout, 16), 2, one_step=True)
    opt = torch.optim.Adam([p for p in den.parameters() if p.requires_grad], lr=1e-2)

    def loss() -> torch.Tensor:
        return loss_fn(den, torch.Generator().manual_seed(0))  # the same batch every time

    with torch.no_grad():
        before = float(loss())
    for _ in range(20):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        assert float(loss()) < 0.75 * before


def test_one_step_start_is_recorded_and_reads_its_input(tmp_path, dataset, tiny_base, capsys):
    """--start diffuse.out=image.in: diffuse starts from the photo; with coordination off that is the only way the
    photo can reach it, so the output follows the photo with the start and ignores it without."""
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    out, plain = tmp_path / "start.safetensors", tmp_path / "plain.safetensors"
    common = ["--one-step", "--lr", "1e-2", "--no-coordination"]
    assert main([*_args(dataset, tiny_base, out, 2), *common, "--start", "diffuse.out=image.in",
                 "--start-level", "0.2"]) == 0
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
    cases = [(["--start", "diffuse.out=image.in"], 2, "add --one-step"),
             (["--one-step", "--start", "diffuse.out=normals.out"], 2, "must be OUTPUT=INPUT teammates"),
             (["--one-step", "--start", "diffuse.out"], 2, "OUT=IN"),
             (["--one-step", "--start", "diffuse.out=image.in,diffuse.out=normals.in"], 2, "one input"),
             (["--one-step", "--start-level", "1.5"], 2, "start level must be in (0, 1]"),
             (["--optimizer", "sgd"], 2, "adamw, prodigy"),
             (["--batch-size", "0"], 2, "--batch-size: must be at least 1"),
             (["--data", "procedural:nope"], 2, "procedural:svbrdf"), (["--hole-fill", "blue"], 2, "grey, harmonic"),
             (["--resolution", "41"], 1, "not a multiple of"), (["--checkpoint-every", "0"], 2, "--checkpoint-every:"),
             (["--rank", "0"], 2, "--rank: must be at least 1"), (["--dropout", "1.5"], 2, "--dropout:"),
             (["--lr", "-1"], 2, "--lr: must be at least 0"), (["--warmup", "-1"], 2, "--warmup:"),
             (["--mixed-precision", "fp8"], 2, "--mixed-precision: must be one of auto")]
    for extra, code, message in cases:
        assert main([*_args(dataset, tiny_base, out, 1), *extra]) == code
        err = capsys.readouterr().err
        assert err.startswith("Error:") and message in err, err
    assert not out.exists()


def test_hole_loss_counts_only_the_hole_and_its_seam(tiny_base):
    """--hole-loss: a change of the target far from the hole leaves the loss as it is; inside the hole it does not."""
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.core.layout import TeamLayout
    from teamwork_cli.models.embedded import EmbeddedDenoiser
    from teamwork_cli.training.finetune import team_loss

    layout = TeamLayout.from_names("image.in,mask.in,image.out")
    den = EmbeddedDenoiser.from_pretrained(tiny_base)
    inject_adapter(den.model, layers_to_adapt(den.model), len(layout), 2)
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 2:6, 2:6] = 1

    def loss(target: torch.Tensor, hole: bool) -> float:
        source = lambda n, g: {"image": target, "image.in": image, "mask": mask}  # noqa: E731
        with torch.no_grad():
            return float(team_loss(layout, source, 2, one_step=True, hole_loss=hole)(den, torch.Generator()))

    far, inside = image.clone(), image.clone()
    far[..., 12:, 12:] = 1 - far[..., 12:, 12:]  # latent cells (2x2 patches) beyond the hole's one-cell seam
    inside[..., 3:5, 3:5] = 1 - inside[..., 3:5, 3:5]
    assert loss(far, True) == pytest.approx(loss(image, True), rel=1e-6)
    assert loss(far, False) != pytest.approx(loss(image, False), rel=1e-3)
    assert loss(inside, True) != pytest.approx(loss(image, True), rel=1e-3)


def test_hole_loss_needs_a_mask_teammate(tmp_path, dataset, tiny_base, capsys):
    out = tmp_path / "x.safetensors"
    assert main([*_args(dataset, tiny_base, out, 1), "--hole-loss"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: hole loss needs a mask.in teammate") and "image.in, diffuse.out" in err, err
    assert not out.exists()


def test_hole_weights_fall_back_to_the_whole_image():
    """No mask (NaN) or a dropped mask teammate: the whole image counts; so does an output nothing is pasted into."""
    from teamwork_cli.core.layout import TeamLayout
    from teamwork_cli.training.finetune import hole_weights

    layout = TeamLayout.from_names("image.in,mask.in,image.out,normals.out")
    mask = torch.zeros(3, 1, 16, 16)
    mask[:, :, 0:4, 0:4] = 0.7
    mask[:, :, 8:, 8:] = 0.3  # below 0.5: not a hole, as teamwork inpaint reads masks
    mask[1] = float("nan")
    active = torch.ones(3, 4, dtype=torch.bool)
    active[2, 1] = False
    w = hole_weights(layout, mask, active, (8, 8))
    assert w.shape == (3, 4, 1, 8, 8)
    assert w[0, 2, 0, :3, :3].eq(1).all() and w[0, 2].sum() == 9  # the 2x2-cell hole and its one-cell seam
    assert w[1, 2].eq(1).all() and w[2, 2].eq(1).all()
    assert w[0, 3].eq(1).all()  # normals.out has no normals.in


def test_a_nan_loss_stops_training_before_it_touches_the_weights(tmp_path):
    from teamwork_cli.training.loop import TrainConfig, train

    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def loss_fn(m, g):
        calls.append(1)
        out = m(torch.ones(1, 2)).sum()
        return out * float("nan") if len(calls) == 2 else out

    cfg = TrainConfig(steps=3, batch_size=1, lr=0.1, warmup=0, checkpoint_every=100, mixed_precision="no")
    with pytest.raises(FloatingPointError, match="loss became nan at step 1"):
        train(model, loss_fn, cfg, tmp_path / "s.pt")
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # step 0 updated


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


def test_samples_without_an_output_are_skipped_up_front(tmp_path, capsys):
    for name, channels in (("s1", ("image", "diffuse")), ("s2", ("image",))):
        (tmp_path / name).mkdir()
        for c in channels:
            write_png(tmp_path / name / f"{c}.png", np.full((16, 16, 3), 0.5))
    with pytest.warns(UserWarning, match="s2"):
        src = data.FolderSource(tmp_path, ["image", "diffuse"], 16, outputs=["diffuse"])
    assert len(src) == 1


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
