"""Train the diffusion policy on an episode dataset: seeded, resumable, with a
progress bar and the loss.

    robot-memory train-policy --data data/demos --out out/policy_run
    robot-memory train-policy --data data/demos --out out/policy_run --resume

The run folder holds ``train_state/`` (weights, EMA, optimizer, RNG: all
safetensors + JSON) written every ``--save-every`` steps, ``train_log.json``
and, at the end, ``checkpoint/`` (EMA weights, config, normalizer) for the
policy node and ``eval-policy``. ``--resume`` continues from ``train_state/``
bit for bit (same batches, same noise).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from robot_memory.distributed.process_group import ProcessGroup, join, launch, leave, under_torchrun
from robot_memory.learning.dataset import load_episodes
from robot_memory.learning.training_windows import TrainingWindows
from robot_memory.policy.checkpoint import save_checkpoint
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.modeling_diffusion import DiffusionPolicyModel, parameter_count
from robot_memory.policy.processor_diffusion import Normalizer


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = opt.state_dict()
    tensors = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            tensors[f"{idx}.{key}"] = torch.as_tensor(value).clone()
    return tensors, {"param_groups": state["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class _Loss(torch.nn.Module):
    """The model's training loss as ``forward``: what DDP wraps (its gradient
    hooks are armed by ``forward``)."""

    def __init__(self, model: DiffusionPolicyModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.model.compute_loss(obs, actions)


class Trainer:
    """One process's training; with a distributed ``group`` (torchrun), each of
    its processes draws ``batch_size / world_size`` windows with its own random
    stream and DDP averages the gradients, so a step sees ``batch_size``
    windows as in one process; every process holds the same weights, EMA and
    optimizer state, and rank 0 saves them."""

    def __init__(
        self,
        config: DiffusionConfig,
        windows: TrainingWindows,
        normalizer: Normalizer,
        total_steps: int,
        batch_size: int = 128,
        seed: int = 0,
        group: ProcessGroup | None = None,
    ) -> None:
        self.group = group or ProcessGroup()
        if batch_size % self.group.world_size:
            raise ValueError(
                f"--batch-size {batch_size} does not split over {self.group.world_size} processes"
            )
        torch.manual_seed(seed)
        self.config = config
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.local_batch = batch_size // self.group.world_size
        self.normalizer = normalizer
        device = torch.device(self.group.device)
        self.obs = torch.as_tensor(
            normalizer.normalize_obs(windows.obs), dtype=torch.float32, device=device
        )
        self.actions = torch.as_tensor(
            normalizer.normalize_action(windows.actions), dtype=torch.float32, device=device
        )
        self.obs_index = torch.as_tensor(windows.obs_index)
        self.action_index = torch.as_tensor(windows.action_index)
        self.model = DiffusionPolicyModel(config).to(device)
        self.ema = DiffusionPolicyModel(config).to(device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.loss: torch.nn.Module = _Loss(self.model)
        if self.group.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # the same initial weights everywhere (DDP also broadcasts rank 0's);
            # from here on each process's own batches and noise
            torch.manual_seed(seed + 7919 * self.group.rank)
            ids = [self.group.local_rank] if device.type == "cuda" else None
            self.loss = DistributedDataParallel(self.loss, device_ids=ids)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.step = 0
        self.log: list[dict] = []

    def _set_lr(self) -> float:
        lr = self.config.learning_rate * lr_factor(
            self.step, self.config.warmup_steps, self.total_steps
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self) -> float:
        batch = torch.randint(0, len(self.obs_index), (self.local_batch,))
        obs = self.obs[self.obs_index[batch].to(self.obs.device)]
        actions = self.actions[self.action_index[batch].to(self.actions.device)]
        lr = self._set_lr()
        loss = self.loss(obs, actions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                e.lerp_(p, 1.0 - decay)
            for e, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                e.copy_(b)
        self.step += 1
        loss = loss.detach()
        if self.group.distributed:  # the step's loss over every process's windows
            torch.distributed.all_reduce(loss)
            loss /= self.group.world_size
        value = float(loss)
        self.log.append({"step": self.step, "loss": value, "lr": lr})
        return value

    # -- resumable state --------------------------------------------------
    def save_state(self, folder: Path) -> None:
        """Rank 0 writes the weights, EMA, optimizer and ``state.json``; every
        process its own random state (``rng.safetensors`` is rank 0's)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.group.distributed:
            self._check_replicas()
        rng = {"torch_rng": torch.get_rng_state()}
        if self.obs.device.type == "cuda":
            rng["cuda_rng"] = torch.cuda.get_rng_state(self.obs.device)
        save_file(rng, str(folder / _rng_file(self.group.rank)))
        if self.group.leader:
            save_file(_cpu(self.model.state_dict()), str(folder / "model.safetensors"))
            save_file(_cpu(self.ema.state_dict()), str(folder / "ema.safetensors"))
            opt_tensors, opt_meta = _flatten_optimizer(self.optimizer)
            save_file(_cpu(opt_tensors), str(folder / "optimizer.safetensors"))
            meta = {
                "step": self.step,
                "total_steps": self.total_steps,
                "batch_size": self.batch_size,
                "processes": self.group.world_size,
                "optimizer": opt_meta,
                "config": self.config.to_dict(),
                "normalizer": self.normalizer.to_dict(self.config),
                "log": self.log,
            }
            tmp = folder / "state.json.tmp"
            tmp.write_text(json.dumps(meta))
            tmp.replace(folder / "state.json")
        if self.group.distributed:  # nobody reads a half-written state
            torch.distributed.barrier()

    def _check_replicas(self) -> None:
        """Every process must hold the same weights (DDP's contract): compare
        per-tensor sums across processes, bit for bit; raise if they drifted."""
        sums = torch.stack([p.detach().double().sum() for p in self.model.parameters()])
        every = [torch.empty_like(sums) for _ in range(self.group.world_size)]
        torch.distributed.all_gather(every, sums)
        if any(not torch.equal(every[0], other) for other in every[1:]):
            raise RuntimeError(f"DDP processes hold different weights at step {self.step}")

    def load_state(self, folder: Path) -> None:
        meta = json.loads((folder / "state.json").read_text())
        if meta["config"] != self.config.to_dict():
            raise ValueError(f"{folder} was trained with another config; start a new run")
        if int(meta.get("processes", 1)) != self.group.world_size:
            raise ValueError(
                f"{folder} was trained with {meta.get('processes', 1)} process(es); resume it "
                f"with as many (--processes), not {self.group.world_size}"
            )
        device = self.obs.device
        self.model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)))
        self.ema.load_state_dict(load_file(str(folder / "ema.safetensors"), device=str(device)))
        self.optimizer.load_state_dict(
            _unflatten_optimizer(
                load_file(str(folder / "optimizer.safetensors"), device=str(device)),
                meta["optimizer"],
            )
        )
        rng = load_file(str(folder / _rng_file(self.group.rank)))
        torch.set_rng_state(rng["torch_rng"])
        if "cuda_rng" in rng:
            torch.cuda.set_rng_state(rng["cuda_rng"], device)
        self.step = int(meta["step"])
        self.log = list(meta["log"])


def _rng_file(rank: int) -> str:
    return "rng.safetensors" if rank == 0 else f"rng_rank{rank}.safetensors"


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def training_record(
    windows: TrainingWindows,
    data: Path,
    steps: int,
    batch_size: int,
    seed: int,
    smooth: float | None,
    start: float,
    **more: object,
) -> dict:
    """What a checkpoint's ``checkpoint.json`` says about the run that made it
    (``start``: its ``time.monotonic()``; ``more``: the run's own fields first)."""
    return {
        "training": {
            **more,
            "steps": steps,
            "batch_size": batch_size,
            "seed": seed,
            "episodes": windows.episodes,
            "windows": len(windows.obs_index),
            "dataset": str(data),
            "final_loss_smoothed": smooth,
            "seconds_this_process": round(time.monotonic() - start, 1),
            "torch_threads": torch.get_num_threads(),
        }
    }


def train(
    data: Path,
    out: Path,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    resume: bool = False,
    save_every: int = 500,
    config: DiffusionConfig | None = None,
    threads: int | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    device: str = "cpu",
) -> Path:
    """Train; returns the final checkpoint folder. ``stop_after`` ends the
    process's work early at that step (the state is saved; used to test resume).
    Under torchrun this is one process of a DDP run (rank 0 prints and saves)."""
    if threads:
        torch.set_num_threads(threads)
    group = join(device)
    try:
        return _train(data, out, steps, batch_size, seed, resume, save_every, config,
                      progress, stop_after, group)  # fmt: skip
    finally:
        leave(group)


def _train(
    data: Path,
    out: Path,
    steps: int,
    batch_size: int,
    seed: int,
    resume: bool,
    save_every: int,
    config: DiffusionConfig | None,
    progress: bool,
    stop_after: int | None,
    group: ProcessGroup,
) -> Path:
    say = print if group.leader else (lambda *a, **k: None)
    config = config or DiffusionConfig()
    state_dir = out / "train_state"
    if resume and (state_dir / "state.json").is_file():
        saved = json.loads((state_dir / "state.json").read_text())
        config = DiffusionConfig.from_dict(saved["config"])
        steps, batch_size = int(saved["total_steps"]), int(saved["batch_size"])
    episodes = list(load_episodes(data))
    windows = TrainingWindows.build(episodes, config)
    normalizer = Normalizer.fit(windows.obs, windows.actions)
    trainer = Trainer(config, windows, normalizer, steps, batch_size, seed, group)
    if resume and (state_dir / "state.json").is_file():
        trainer.load_state(state_dir)
        trainer.normalizer = Normalizer.from_dict(saved["normalizer"], config)
        say(f"train-policy: resumed {state_dir} at step {trainer.step}/{steps}")
    say(
        f"train-policy: {windows.episodes} episodes, {len(windows.obs_index)} windows, "
        f"{parameter_count(trainer.model) / 1e6:.2f} M parameters, {steps} steps of {batch_size}"
        + (
            f" ({group.world_size} processes x {trainer.local_batch}, DDP)"
            if group.distributed
            else ""
        )
        + f" on {group.device}"
    )
    start = time.monotonic()
    bar = tqdm(
        total=steps, initial=trainer.step, desc="train", unit="step",
        disable=not progress or not group.leader,
    )  # fmt: skip
    smooth = None
    while trainer.step < steps:
        loss = trainer.train_step()
        smooth = loss if smooth is None else 0.98 * smooth + 0.02 * loss
        bar.update(1)
        if trainer.step % 20 == 0:
            bar.set_postfix(loss=f"{smooth:.4f}")
        if trainer.step % save_every == 0 or trainer.step == steps:
            trainer.save_state(state_dir)
        if stop_after is not None and trainer.step >= stop_after:
            trainer.save_state(state_dir)
            bar.close()
            return state_dir
    bar.close()
    folder = out / "checkpoint"
    if group.leader:
        (out / "train_log.json").write_text(json.dumps(trainer.log))
        info = training_record(
            windows, data, steps, batch_size, seed, smooth, start,
            processes=group.world_size, device=group.device.split(":")[0],
        )  # fmt: skip
        folder = save_checkpoint(folder, trainer.ema, trainer.normalizer, info)
        print(f"train-policy: wrote {folder} (loss {smooth:.4f})")
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="robot-memory train-policy", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, default=Path("data/demos"), help="episode dataset folder")
    p.add_argument("--out", type=Path, default=Path("out/policy_run"), help="run folder")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--config", type=Path, default=None, help="DiffusionConfig JSON to start from")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="DDP over N processes on this machine (torchrun; gloo on CPU, NCCL on GPUs)",
    )
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop at this step with the state saved (--resume goes on): a long run in parts",
    )
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.processes < 1:
        print("train-policy: --steps, --batch-size and --processes must be >= 1", file=sys.stderr)
        return 2
    if args.batch_size % args.processes:
        print("train-policy: --batch-size must split evenly over --processes", file=sys.stderr)
        return 2
    if args.processes > 1 and not under_torchrun():
        argv = sys.argv[1:] if argv is None else list(argv)
        return launch("robot_memory.learning.training", argv, args.processes)
    try:
        config = DiffusionConfig.load(args.config) if args.config else None
        train(
            args.data,
            args.out,
            args.steps,
            args.batch_size,
            args.seed,
            args.resume,
            args.save_every,
            config,
            args.threads,
            stop_after=args.stop_after,
            device=args.device,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"train-policy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
