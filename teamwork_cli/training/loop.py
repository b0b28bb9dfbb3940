"""One training loop for the embedded base (pretraining) and Teamwork adapters (finetuning).

Deterministic by step: the batch of optimizer step k, micro-step m, process p is drawn from a generator seeded
with (seed, k, m, p), so a run resumed from a checkpoint at step k continues exactly as an unbroken run would.
Runs single-process on a CPU, or under `accelerate launch` on several GPUs or nodes.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

LossFn = Callable[[nn.Module, torch.Generator], Tensor]


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-3  # AdamW; Prodigy uses 1.0 and finds its own step size
    optimizer: str = "adamw"  # "adamw" | "prodigy"
    schedule: str = "cosine"  # "cosine" | "constant"
    warmup: int = 50
    grad_accum: int = 1
    clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 200
    mixed_precision: str = "auto"  # "auto" | "bf16" | "fp16" | "no"

    def check(self) -> None:
        if self.optimizer not in ("adamw", "prodigy"):
            raise ValueError(f"optimizer must be one of adamw, prodigy; got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be one of cosine, constant; got {self.schedule!r}")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            raise ValueError(f"mixed_precision must be one of auto, bf16, fp16, no; got {self.mixed_precision!r}")
        for name in ("steps", "batch_size", "grad_accum", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in ("lr", "warmup", "clip"):  # lr 0 is allowed: a dry run that changes no weight
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0; got {getattr(self, name)}")


def resolve_mixed_precision() -> str:
    """`auto`: bf16 on a GPU or on a CPU that computes it natively, else no (emulated bf16 on an AVX2 CPU runs
    73x slower than fp32 in benchmarks/dtype_speed.py; docs/embedded-model.md)."""
    from teamwork_cli.core.devices import auto_dtype
    from teamwork_cli.core.distributed import cpu_only

    if not cpu_only():  # the Accelerator will train on the GPU
        return "bf16"
    return "bf16" if auto_dtype(torch.device("cpu")) is not None else "no"


def run_precision(mixed_precision: str, state_path: str | Path, resume: bool) -> str:
    """`auto` for one run: a resumed run keeps the precision it started with, whatever this machine prefers."""
    if mixed_precision != "auto":
        return mixed_precision
    return (stored_precision(state_path) if resume else None) or resolve_mixed_precision()


def stored_precision(state_path: str | Path) -> str | None:
    """The resolved mixed precision a checkpointed run used (None: no state, or one written before it was kept)."""
    path = Path(state_path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False).get("precision")


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Linear warm-up, then constant or cosine decay to 10% (Loshchilov & Hutter 2017, SGDR)."""

    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        if cfg.schedule == "constant":
            return 1.0
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return f


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(params, lr=1.0, weight_decay=cfg.weight_decay, safeguard_warmup=True, use_bias_correction=True)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _atomic_save(obj: object, path: Path) -> None:
    """torch.save through a temporary name: a full disk or a signal mid-write leaves the old state and no
    temporary behind."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # Serialised in memory first: torch.save straight to a full disk fails with an internal message
    # ("enforce fail at inline_container.cc ... unexpected pos"); a plain write fails with ENOSPC, which says it.
    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        _write_file(tmp, buf.getbuffer())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_file(path: Path, data: memoryview) -> None:
    with open(path, "wb") as f:
        f.write(data)


def saved_team(state_path: str | Path) -> tuple[int, int] | None:
    """(teammates, rank) of the adapter a training state holds, from its parameters' shapes (`down` is
    [T, in, rank]); None if it holds no adapter layer."""
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    for name, v in state.get("params", {}).items():
        if name.endswith(".adapter.down") and v.ndim == 3:
            return int(v.shape[0]), int(v.shape[2])
    return None


def train(
    model: nn.Module,
    loss_fn: LossFn,
    cfg: TrainConfig,
    state_path: str | Path,
    *,
    resume: bool = False,
    on_checkpoint: Callable[[nn.Module, int], None] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> int:
    """Optimise the trainable parameters of `model`; returns the number of optimizer steps taken in total.

    `state_path` holds the resumable state (trainable parameters, optimizer, schedule, step), written every
    `checkpoint_every` steps and at the end; `on_checkpoint(model, step)` writes the user-facing file.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    cfg.check()
    # accelerate keeps its settings process-wide; a second train() in one process (a notebook, a test) with
    # another precision would be refused. The distributed group (PartialState) is kept: only our settings reset.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    from teamwork_cli.core.distributed import cpu_only

    # The schedule counts optimizer steps, whatever the number of processes. cpu=True on a machine without an
    # accelerator, so that processes started by `accelerate launch` join one (gloo) group instead of each
    # training alone.
    state_path = Path(state_path)
    precision = run_precision(cfg.mixed_precision, state_path, resume)
    acc = Accelerator(
        mixed_precision=precision,
        gradient_accumulation_steps=cfg.grad_accum,
        step_scheduler_with_optimizer=False,
        cpu=cpu_only(),
    )
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    opt = make_optimizer([p for _, p in named], cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    step, state = 0, {}
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        params = dict(named)
        for n, v in state["params"].items():
            params[n].data.copy_(v)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
    elif resume:
        raise FileNotFoundError(f"--resume: no training state at {state_path}")
    prepared, opt, sched = acc.prepare(model, opt, sched)
    if resume and acc.scaler is not None and state.get("scaler"):  # fp16: the loss scale is part of the state
        acc.scaler.load_state_dict(state["scaler"])

    def checkpoint() -> None:
        if acc.is_main_process:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            params = {n: p.detach().cpu().clone() for n, p in named}
            scaler = acc.scaler.state_dict() if acc.scaler is not None else None
            _atomic_save(
                {
                    "params": params,
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler,
                    "step": step,
                    "config": asdict(cfg),
                    "precision": precision,
                },
                state_path,
            )
            if on_checkpoint:
                on_checkpoint(acc.unwrap_model(prepared), step)
        acc.wait_for_everyone()

    prepared.train()
    while step < cfg.steps:
        total = 0.0
        for micro in range(cfg.grad_accum):
            g = torch.Generator().manual_seed(hash((cfg.seed, step, micro, acc.process_index)) & 0x7FFF_FFFF)
            with acc.accumulate(prepared), acc.autocast():
                loss = loss_fn(prepared, g)
                if not torch.isfinite(loss.detach()):  # before the step: a NaN update would ruin the weights
                    raise FloatingPointError(
                        f"loss became {float(loss.detach())} at step {step}; lower the "
                        "learning rate, or check the training data for NaN or infinite values"
                    )
                acc.backward(loss)
                if acc.sync_gradients and cfg.clip > 0:
                    acc.clip_grad_norm_([p for _, p in named], cfg.clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
            total += float(loss.detach()) / cfg.grad_accum
        sched.step()
        step += 1
        if progress:
            progress(step, cfg.steps, total)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint()
    return step
