"""Distil a diffusion policy checkpoint into a one-step consistency policy.

    robot-memory distill-policy --teacher models/diffusion_pick_place \\
        --data data/demos --out out/consistency_run

Consistency distillation (Song et al. 2023) in the Latent Consistency Model
form (Luo et al. 2023), as Consistency Policy (Prasad et al. 2024) does for
visuomotor policies. Why this one: it distils the shipped DDIM 10 sampler
itself (the teacher's own grid, no new noise schedule, no EDM retraining), in
one stage (progressive distillation needs one training per halving, 10 -> 5 ->
3 -> 2 -> 1), and the student starts from the teacher's weights, so a few
thousand steps on 2 CPU cores suffice.

Each step: demonstration chunks x0 with their observation windows; a grid time
t_{n+1} (the teacher's DDIM grid, 10 points of the 100 training steps); x at
t_{n+1} by the forward process; the teacher's DDIM step to t_n; loss
|| f_student(x_{n+1}, t_{n+1}) - f_target(x_n, t_n) ||^2 with the target an EMA
of the student (f at t = 0 is the identity: the boundary condition). The
checkpoint (EMA weights, the teacher's config with ``sampler = consistency``,
one step, and its normalizer) goes to ``OUT/checkpoint`` for the policy node
(``sampler:=consistency``) and ``eval-policy --sampler consistency``.
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
from robot_memory.learning.training import TrainingWindows, lr_factor
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
        learning_rate: float = 1e-4,
        target_decay: float = 0.95,
        ema_decay: float = 0.995,
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
        self.config = replace(
            teacher.config, sampler="consistency", num_inference_steps=1, extra=extra
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
        self.student = DiffusionPolicyModel(self.config)
        self.student.load_state_dict(teacher.model.state_dict())
        self.target = DiffusionPolicyModel(self.config).requires_grad_(False)
        self.target.load_state_dict(teacher.model.state_dict())
        self.ema = DiffusionPolicyModel(self.config).requires_grad_(False)
        self.ema.load_state_dict(teacher.model.state_dict())
        self.cm = ConsistencyScheduler(self.config)
        self.optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=learning_rate, weight_decay=self.config.weight_decay
        )
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.target_decay = target_decay
        self.ema_decay = ema_decay
        self.step = 0
        self.log: list[dict] = []

    def teacher_step(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, cond):
        """The teacher's DDIM step from times ``t`` to ``s`` (per row)."""
        eps = self.teacher.unet(x, t, cond)
        x0 = self.cm.predicted_sample(eps, x, t)
        if self.config.prediction_type == "sample":
            a = self.cm.alphas_cumprod[t].view(-1, 1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        a_s = self.cm.alphas_cumprod[s].view(-1, 1, 1)
        return a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps

    def train_step(self) -> float:
        batch = torch.randint(0, len(self.obs_index), (self.batch_size,))
        obs = self.obs[self.obs_index[batch]]
        x0 = self.actions[self.action_index[batch]]
        cond = self.student.global_cond(obs)
        grid = torch.as_tensor(self.cm.grid)
        n = torch.randint(1, len(grid), (self.batch_size,))
        t, s = grid[n], grid[n - 1]
        x_t = self.cm.add_noise(x0, torch.randn_like(x0), t)
        with torch.no_grad():
            x_s = self.teacher_step(x_t, t, s, cond)
            target = self.cm.consistency(self.target.unet, x_s, s, cond)
        pred = self.cm.consistency(self.student.unet, x_t, t, cond)
        loss = torch.nn.functional.mse_loss(pred, target)
        lr = self.learning_rate * lr_factor(self.step, 100, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.optimizer.step()
        with torch.no_grad():
            for model, decay in ((self.target, self.target_decay), (self.ema, self.ema_decay)):
                for e, p in zip(model.parameters(), self.student.parameters(), strict=True):
                    e.lerp_(p, 1.0 - decay)
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
) -> Path:
    """Distil; returns the checkpoint folder."""
    if threads:
        torch.set_num_threads(threads)
    d = Distiller(teacher, data, steps, batch_size, seed)
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
    info = {
        "training": {
            "method": "consistency distillation (LCM parameterization) of the DDIM sampler",
            "teacher": str(teacher),
            "steps": steps,
            "batch_size": batch_size,
            "seed": seed,
            "episodes": d.windows.episodes,
            "windows": len(d.windows.obs_index),
            "dataset": str(data),
            "target_decay": d.target_decay,
            "final_loss_smoothed": smooth,
            "seconds_this_process": round(time.monotonic() - start, 1),
            "torch_threads": torch.get_num_threads(),
        }
    }
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
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        print("distill-policy: --steps and --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        distill(
            args.teacher, args.data, args.out, args.steps, args.batch_size, args.seed, args.threads
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"distill-policy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
