"""One-step action sampling: the consistency function of a distilled policy.

A consistency model maps any point of the teacher's sampling trajectory
straight to its end, so one network evaluation turns noise into an action
chunk (Song et al. 2023, Consistency Models; Prasad et al. 2024, Consistency
Policy). The distilled network keeps the teacher's UNet and its epsilon output;
the consistency function is the Latent Consistency Model parameterization (Luo
et al. 2023), which fits a discrete DDPM schedule as it is:

    f(x, t) = c_skip(t) * x + c_out(t) * clip(x0(x, t)),
    x0(x, t) = (x - sqrt(1 - abar_t) * eps(x, t)) / sqrt(abar_t),

with c_skip(0) = 1 and c_out(0) = 0 (at t = 0 the function is the identity,
the boundary condition). The distillation that trains it is in
:mod:`robot_memory.learning.distillation`. Sampling with k steps (LCM's
multistep): f at the first grid time, then noised back to the next chosen grid
time and f again; k = 1 is one network evaluation.
"""

from __future__ import annotations

import torch
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

from robot_memory.policy.configuration_diffusion import DiffusionConfig

#: LCM's boundary scalings: sigma_data and the timestep scale.
SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0


class ConsistencyScheduler:
    """The grid of times the consistency function was distilled on (the
    teacher's DDIM grid: 0, T/g, ..., T - T/g) and the sampler over it."""

    def __init__(self, config: DiffusionConfig) -> None:
        ddpm = DDPMScheduler(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            prediction_type=config.prediction_type,
        )
        self.alphas_cumprod = ddpm.alphas_cumprod.to(torch.float32)
        self.grid_steps = int(config.extra.get("consistency_grid_steps", 10))
        if not 1 <= self.grid_steps <= config.num_train_timesteps:
            raise ValueError(f"consistency_grid_steps must be in [1, T], got {self.grid_steps}")
        stride = config.num_train_timesteps // self.grid_steps
        self.grid = [n * stride for n in range(self.grid_steps)]  # ascending, from 0
        self.clip = config.clip_sample_range if config.clip_sample else None
        self.prediction_type = config.prediction_type

    def timesteps(self, steps: int) -> list[int]:
        """``steps`` grid times, descending from the last (noise) one."""
        g = self.grid_steps
        if not 1 <= steps <= g:
            raise ValueError(f"consistency sampling takes 1 to {g} steps, not {steps}")
        return [self.grid[(g - 1) - (i * g) // steps] for i in range(steps)]

    @staticmethod
    def boundary_at(time: int) -> tuple[float, float]:
        """:meth:`boundary` at one time, as numbers."""
        scaled = time * TIMESTEP_SCALING
        return (
            SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2),
            scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5,
        )

    @staticmethod
    def boundary(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip, c_out) at times ``t``."""
        scaled = t.float() * TIMESTEP_SCALING
        c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
        c_out = scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5
        return c_skip, c_out

    def predicted_sample(self, model_out: torch.Tensor, x: torch.Tensor, t: torch.Tensor):
        """x0 from the network's output at ``t`` (epsilon or sample prediction), clipped."""
        if self.prediction_type == "sample":
            x0 = model_out
        else:
            a = self.alphas_cumprod.to(x.device)[t].view(-1, 1, 1).to(x.dtype)
            x0 = (x - (1 - a).sqrt() * model_out) / a.sqrt()
        return x0.clamp(-self.clip, self.clip) if self.clip is not None else x0

    def consistency(self, unet, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor):
        """f(x, t) for a batch (``t``: one time per row, or one 0-d time for all)."""
        x0 = self.predicted_sample(unet(x, t, cond), x, t)
        if t.ndim == 0:  # sampling: the scalings as two numbers, not eight tensor ops
            c_skip_one, c_out_one = self.boundary_at(int(t))
            return c_skip_one * x + c_out_one * x0
        c_skip, c_out = self.boundary(t)
        c_skip = c_skip.view(-1, 1, 1).to(x.dtype)
        c_out = c_out.view(-1, 1, 1).to(x.dtype)
        return c_skip * x + c_out * x0

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1).to(x0.dtype)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def sample(
        self,
        unet,
        cond: torch.Tensor,
        noise: torch.Tensor,
        steps: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """An action chunk from ``noise`` in ``steps`` network evaluations."""
        times = self.timesteps(steps)
        x = out = noise
        for i, time in enumerate(times):
            # one time for the batch, as a 0-d tensor: what the traced CPU UNet was traced with
            t = torch.tensor(time, dtype=torch.long, device=noise.device)
            out = self.consistency(unet, x, t, cond)
            if i + 1 < len(times):
                z = torch.randn(
                    noise.shape, generator=generator, device=noise.device, dtype=noise.dtype
                )
                nxt = torch.tensor(times[i + 1], dtype=torch.long, device=noise.device)
                x = self.add_noise(out, z, nxt)
        return out


__all__ = ["SIGMA_DATA", "TIMESTEP_SCALING", "ConsistencyScheduler"]
