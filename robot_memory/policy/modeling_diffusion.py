"""The diffusion policy network and its samplers.

A conditional 1D temporal UNet (Chi et al., Diffusion Policy) whose residual
blocks are FiLM-modulated by the diffusion step embedding and the flattened
observation window. Noise schedules and samplers are ``diffusers``'
DDPMScheduler (training, and the 100-step baseline) and DDIMScheduler
(few-step inference); a distilled checkpoint samples in one step
(:mod:`robot_memory.policy.modeling_consistency`).
"""

from __future__ import annotations

import itertools
import math

import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from torch import nn

from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.modeling_consistency import ConsistencyScheduler


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            torch.arange(half, device=t.device, dtype=torch.float32)
            * (-math.log(10000) / (half - 1))
        )
        args = t.float()[:, None] * freqs[None, :]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, c_out),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks; FiLM (per-channel scale and bias) from the condition between."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.conv1 = Conv1dBlock(c_in, c_out, kernel_size, n_groups)
        self.conv2 = Conv1dBlock(c_out, c_out, kernel_size, n_groups)
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.c_out = c_out

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        scale, bias = self.cond_encoder(cond).unsqueeze(-1).chunk(2, dim=1)
        out = self.conv2(scale * out + bias)
        return out + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Input (B, T, action_dim) noisy actions; output the predicted noise, same shape."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        c = config
        dsed = c.diffusion_step_embed_dim
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(dsed), nn.Linear(dsed, 4 * dsed), nn.Mish(), nn.Linear(4 * dsed, dsed)
        )
        cond_dim = dsed + c.obs_dim * c.n_obs_steps
        dims = (c.action_dim, *c.down_dims)
        pairs = list(itertools.pairwise(dims))

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, c.kernel_size, c.n_groups)

        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            down = nn.Conv1d(c_out, c_out, 3, 2, 1) if not last else nn.Identity()
            self.down.append(nn.ModuleList([block(c_in, c_out), block(c_out, c_out), down]))
        mid = c.down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(pairs[1:]):
            up = nn.ConvTranspose1d(c_in, c_in, 4, 2, 1)  # every level below the top was halved
            self.up.append(nn.ModuleList([block(2 * c_out, c_in), block(c_in, c_in), up]))
        d0 = c.down_dims[0]
        self.final = nn.Sequential(
            Conv1dBlock(d0, d0, c.kernel_size, c.n_groups), nn.Conv1d(d0, c.action_dim, 1)
        )

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor):
        x = x.transpose(1, 2)  # (B, C, T)
        if timestep.dim() == 0:
            timestep = timestep.expand(x.shape[0])
        # the sinusoidal embedding is computed in float32; the layers after it
        # run in the network's dtype (float16 on CUDA with half precision)
        step = self.step_encoder[0](timestep).to(global_cond.dtype)
        cond = torch.cat([self.step_encoder[1:](step), global_cond], dim=-1)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, cond)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final(x).transpose(1, 2)


def make_scheduler(config: DiffusionConfig, sampler: str | None = None):
    """The diffusers noise scheduler for ``sampler`` (default: the config's); the
    consistency sampler of a distilled checkpoint (modeling_consistency)."""
    kind = sampler or config.sampler
    if kind == "consistency":
        return ConsistencyScheduler(config)
    cls = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}[kind]
    return cls(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        clip_sample=config.clip_sample,
        clip_sample_range=config.clip_sample_range,
        prediction_type=config.prediction_type,
    )


class DiffusionPolicyModel(nn.Module):
    """The UNet plus the training loss and the sampling loop (normalized space)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = ConditionalUnet1D(config)
        self.train_scheduler = make_scheduler(config, "ddpm")

    def global_cond(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, n_obs_steps, obs_dim) normalized observations -> (B, cond)."""
        return obs.flatten(start_dim=1)

    def compute_loss(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """DDPM loss: MSE between the true and the predicted noise (or sample)."""
        noise = torch.randn_like(actions)
        t = torch.randint(
            0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device
        )
        noisy = self.train_scheduler.add_noise(actions, noise, t)
        pred = self.unet(noisy, t, self.global_cond(obs))
        target = noise if self.config.prediction_type == "epsilon" else actions
        return nn.functional.mse_loss(pred, target)

    @torch.no_grad()
    def sample(
        self,
        obs: torch.Tensor,
        scheduler=None,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Denoise an action chunk (B, horizon, action_dim) for normalized ``obs``."""
        c = self.config
        scheduler = scheduler or make_scheduler(c)
        steps = num_inference_steps or c.num_inference_steps
        cond = self.global_cond(obs)
        x = torch.randn(
            (obs.shape[0], c.horizon, c.action_dim),
            generator=generator,
            device=obs.device,
            dtype=obs.dtype,
        )
        if isinstance(scheduler, ConsistencyScheduler):
            return scheduler.sample(self.unet, cond, x, steps, generator)
        scheduler.set_timesteps(steps)
        for t in scheduler.timesteps:
            eps = self.unet(x, t.to(obs.device), cond)
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
        return x


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ConditionalUnet1D", "DiffusionPolicyModel", "make_scheduler", "parameter_count"]
