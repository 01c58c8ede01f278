"""Distil a diffusion policy checkpoint into a one-step consistency policy.

    robot-memory distill-policy --teacher models/diffusion_pick_place \\
        --data data/demos --out out/consistency_run

A consistency model maps any point of the teacher's sampling trajectory to its
end (Song et al. 2023), so one network evaluation gives an action chunk. The
student keeps the teacher's UNet and starts from its weights; its consistency
function is the Latent Consistency Model parameterization (Luo et al. 2023) on
the teacher's own DDIM grid (:mod:`robot_memory.policy.modeling_consistency`).

How it is trained, and why: consistency distillation's fixed point is
f(x_t, t) = the end the teacher's ODE solver reaches from x_t. Bootstrapped
distillation (Consistency Policy, Prasad et al. 2024: match an EMA target one
DDIM step later) reaches it only through the chain of the 9 grid links, and on
a 2-core CPU budget it did not: after 3,000 steps (6 min) its one-step chunks
were 0.035 (normalized MSE) from the teacher's DDIM 10 chunks and picked 0 of
50 objects. Here the fixed point is the target itself: the teacher's DDIM 10
is solved once for ``--repeats`` noise draws per training window (about 2 min
for 121k solutions), and the student learns f(x_T, T) = that end, and
f(x_mid, mid) = that end for the state the trajectory passes at the 2-step
sampler's second time. One stage, no target network; progressive distillation
would need a training per halving (10 -> 5 -> 3 -> 2 -> 1).

What the student's network outputs (``--prediction``): the chunk itself
(``sample``, the default), not the teacher's noise. Read through the noise,
x0 = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t) multiplies the network's error
by sqrt((1 - abar_t) / abar_t) = 7.1 at the first grid time (t = 90; 0.76 at
t = 40): an epsilon student's one-step chunks were 4x farther from the
teacher's in position than its two-step ones, and picked 16 of 50 objects.
Predicting the sample, one step picks 48 of 50 (docs/policy.md).

The checkpoint (EMA weights, the teacher's config with ``sampler =
consistency``, ``prediction_type`` and ``--sample-steps`` (1 by default), the
teacher's normalizer) goes to ``OUT/checkpoint`` for the policy node
(``sampler:=consistency``) and ``eval-policy --sampler consistency``; its
success is measured closed loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from robot_memory.learning.dataset import load_episodes
from robot_memory.learning.training import lr_factor, training_record
from robot_memory.learning.training_windows import TrainingWindows
from robot_memory.policy.checkpoint import load_checkpoint, save_checkpoint
from robot_memory.policy.modeling_consistency import ConsistencyScheduler
from robot_memory.policy.modeling_diffusion import DiffusionPolicyModel


class Distiller:
    def __init__(
        self,
        teacher_folder: Path,
        data: Path,
        total_steps: int,
        batch_size: int = 128,
        seed: int = 0,
        learning_rate: float = 2e-4,
        ema_decay: float = 0.995,
        sample_steps: int = 1,
        init: Path | None = None,
        prediction: str = "sample",
    ) -> None:
        torch.manual_seed(seed)
        teacher = load_checkpoint(teacher_folder)
        if teacher.config.sampler == "consistency":
            raise ValueError(f"{teacher_folder} is distilled already; give its diffusion teacher")
        extra = {
            **teacher.config.extra,
            "consistency_grid_steps": teacher.config.num_inference_steps,
        }
        extra["distilled_from"] = str(teacher_folder)
        self.teacher_config = teacher.config
        self.config = replace(
            teacher.config,
            sampler="consistency",
            num_inference_steps=sample_steps,
            prediction_type=prediction,
            extra=extra,
        )
        self.normalizer = teacher.normalizer
        windows = TrainingWindows.build(list(load_episodes(data)), self.config)
        self.windows = windows
        self.obs = torch.as_tensor(self.normalizer.normalize_obs(windows.obs), dtype=torch.float32)
        self.actions = torch.as_tensor(
            self.normalizer.normalize_action(windows.actions), dtype=torch.float32
        )
        self.obs_index = torch.as_tensor(windows.obs_index)
        self.action_index = torch.as_tensor(windows.action_index)
        self.teacher = teacher.model.eval().requires_grad_(False)
        start = teacher.model.state_dict()
        if init is not None:  # go on from an earlier distillation of this teacher
            earlier = load_checkpoint(init)
            if earlier.config.sampler != "consistency":
                raise ValueError(f"--init {init} is not a consistency checkpoint")
            if earlier.config.prediction_type != prediction:
                raise ValueError(
                    f"--init {init} predicts {earlier.config.prediction_type}, "
                    f"not {prediction}: give --prediction {earlier.config.prediction_type}"
                )
            start = earlier.model.state_dict()
        self.student = DiffusionPolicyModel(self.config)
        self.student.load_state_dict(start)
        self.ema = DiffusionPolicyModel(self.config).requires_grad_(False)
        self.ema.load_state_dict(start)
        self.cm = ConsistencyScheduler(self.config)
        self.optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=learning_rate, weight_decay=self.config.weight_decay
        )
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.ema_decay = ema_decay
        self.step = 0
        self.log: list[dict] = []

    @torch.no_grad()
    def teacher_trajectories(self, repeats: int, chunk: int = 2048, progress: bool = True):
        """The teacher's DDIM solution for ``repeats`` noise draws per window:
        (window, start noise, the state at the 2-step sampler's second time,
        the end), in one buffer; solved once, in chunks, with a progress bar."""
        from robot_memory.policy.modeling_diffusion import make_scheduler

        scheduler = make_scheduler(self.teacher_config, "ddim")
        scheduler.set_timesteps(self.cm.grid_steps)
        mid = self.cm.timesteps(2)[1]
        windows = torch.arange(len(self.obs_index)).repeat(repeats)
        c = self.config
        starts, mids, ends = [], [], []
        bar = tqdm(total=len(windows), desc="teacher DDIM", unit="solution", disable=not progress)
        for k in range(0, len(windows), chunk):
            rows = windows[k : k + chunk]
            cond = self.teacher.global_cond(self.obs[self.obs_index[rows]])
            x = torch.randn(len(rows), c.horizon, c.action_dim)
            starts.append(x)
            for t in scheduler.timesteps:
                if int(t) == mid:
                    mids.append(x)
                eps = self.teacher.unet(x, t, cond)
                x = scheduler.step(eps, t, x).prev_sample
            ends.append(x)
            bar.update(len(rows))
        bar.close()
        self.buffer = (windows, torch.cat(starts), torch.cat(mids), torch.cat(ends))
        self.mid = mid

    def train_step(self) -> float:
        """Consistency at the sampler's times, on the teacher's own trajectories:
        f(x_T, T) and f(x_mid, mid) are the end the teacher's DDIM reaches from
        there (the fixed point bootstrapped consistency distillation aims at)."""
        windows, starts, mids, ends = self.buffer
        pick = torch.randint(0, len(windows), (self.batch_size,))
        cond = self.student.global_cond(self.obs[self.obs_index[windows[pick]]])
        target = ends[pick]
        loss = 0.0
        for x, at in ((starts[pick], self.cm.grid[-1]), (mids[pick], self.mid)):
            t = torch.full((self.batch_size,), at, dtype=torch.long)
            pred = self.cm.consistency(self.student.unet, x, t, cond)
            loss = loss + torch.nn.functional.mse_loss(pred, target)
        lr = self.learning_rate * lr_factor(self.step, 100, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.optimizer.step()
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.student.parameters(), strict=True):
                e.lerp_(p, 1.0 - self.ema_decay)
        self.step += 1
        value = float(loss.detach())
        self.log.append({"step": self.step, "loss": value, "lr": lr})
        return value


def distill(
    teacher: Path,
    data: Path,
    out: Path,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
    repeats: int = 4,
    sample_steps: int = 1,
    init: Path | None = None,
    prediction: str = "sample",
) -> Path:
    """Distil; returns the checkpoint folder."""
    if threads:
        torch.set_num_threads(threads)
    d = Distiller(
        teacher, data, steps, batch_size, seed,
        sample_steps=sample_steps, init=init, prediction=prediction,
    )  # fmt: skip
    d.teacher_trajectories(repeats, progress=progress)
    print(
        f"distill-policy: teacher {teacher} (DDIM {d.cm.grid_steps}), "
        f"{d.windows.episodes} episodes, {len(d.windows.obs_index)} windows, "
        f"{steps} steps of {batch_size}"
    )
    start = time.monotonic()
    smooth = None
    bar = tqdm(total=steps, desc="distill", unit="step", disable=not progress)
    while d.step < steps:
        loss = d.train_step()
        smooth = loss if smooth is None else 0.98 * smooth + 0.02 * loss
        bar.update(1)
        if d.step % 20 == 0:
            bar.set_postfix(loss=f"{smooth:.5f}")
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "distill_log.json").write_text(json.dumps(d.log))
    info = training_record(
        d.windows, data, steps, batch_size, seed, smooth, start,
        method="consistency distillation (LCM parameterization) on the teacher's DDIM "
        "trajectories",
        teacher=str(teacher),
        init=str(init) if init else None,
        teacher_solutions=len(d.buffer[0]),
        prediction=prediction,
        repeats=repeats,
    )  # fmt: skip
    folder = save_checkpoint(out / "checkpoint", d.ema, d.normalizer, info)
    print(f"distill-policy: wrote {folder} (loss {smooth:.5f})")
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="robot-memory distill-policy", description=__doc__.split("\n")[0]
    )
    p.add_argument("--teacher", type=Path, required=True, help="diffusion checkpoint folder")
    p.add_argument("--data", type=Path, default=Path("data/demos"), help="episode dataset folder")
    p.add_argument("--out", type=Path, default=Path("out/consistency_run"), help="run folder")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument(
        "--repeats", type=int, default=4, help="teacher solutions (noise draws) per window"
    )
    p.add_argument("--init", type=Path, default=None, help="start from this consistency checkpoint")
    p.add_argument(
        "--sample-steps",
        type=int,
        choices=(1, 2),
        default=1,
        help="network evaluations per chunk the checkpoint samples with by default "
        "(both are trained; closed loop, one step picked 48/50, two 48/50: docs/policy.md)",
    )
    p.add_argument(
        "--prediction",
        choices=("sample", "epsilon"),
        default="sample",
        help="what the student's network outputs: the chunk itself (default), or the "
        "teacher's noise (x0 = (x - sqrt(1 - abar) eps) / sqrt(abar) amplifies its error "
        "7.1x at the first grid time: one step picked 16/50 so)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.repeats < 1:
        print("distill-policy: --steps, --batch-size and --repeats must be >= 1", file=sys.stderr)
        return 2
    try:
        distill(
            args.teacher, args.data, args.out, args.steps, args.batch_size, args.seed,
            args.threads, repeats=args.repeats, sample_steps=args.sample_steps,
            init=args.init, prediction=args.prediction,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        print(f"distill-policy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
