"""One-step action sampling, ROS-free: the consistency sampler of a distilled
checkpoint (chunk shape, normalization, determinism for a seed, one network
evaluation), its boundary condition, the distillation run and the checks that
keep a sampler and a checkpoint that do not fit apart (real torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_memory.learning.demonstrations import collect
from robot_memory.learning.distillation import Distiller, distill
from robot_memory.learning.training import train
from robot_memory.policy.checkpoint import load_checkpoint
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.modeling_consistency import ConsistencyScheduler
from robot_memory.policy.modeling_diffusion import make_scheduler
from robot_memory.policy.runtime import PolicyRuntime, RobotState
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.robot.panda import HOME_ARM

TINY = dict(down_dims=(16, 32), diffusion_step_embed_dim=16, n_groups=4, warmup_steps=5)
GOAL = SkillGoal("pick", np.array([0.1, 0.05, 0.025]), 0.3, "red_cube")
STATES = [RobotState(HOME_ARM.copy(), 0.08, 0.0), RobotState(HOME_ARM + 0.01, 0.08, 0.1)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(teacher, distilled, run folder): a tiny teacher trained briefly on
    fresh demonstrations, distilled for 40 steps."""
    root = tmp_path_factory.mktemp("consistency")
    demos = root / "demos"
    counts = collect(demos, episodes=1, skills=("pick", "place"), progress=False)
    assert counts["successful"] >= 1, counts
    config = DiffusionConfig(**{**TINY, "learning_rate": 3e-3})
    teacher = train(demos, root / "teacher", 40, 16, config=config, progress=False)
    student = distill(teacher, demos, root / "distilled", steps=40, batch_size=16, progress=False)
    return teacher, student, root / "distilled"


def chunk(folder: Path, seed: int, trace: bool = True, **kw) -> np.ndarray:
    runtime = PolicyRuntime(folder, device="cpu", seed=seed, trace_cpu=trace, **kw)
    actions, _ = runtime.sample_actions(runtime.observation_window(STATES, GOAL))
    return actions


def test_the_distilled_checkpoint_samples_in_one_step(checkpoints) -> None:
    teacher, student, run = checkpoints
    ckpt = load_checkpoint(student)
    assert ckpt.config.sampler == "consistency" and ckpt.config.num_inference_steps == 1
    # the student outputs the chunk itself; its teacher predicted noise
    assert ckpt.config.prediction_type == "sample"
    assert load_checkpoint(teacher).config.prediction_type == "epsilon"
    assert ckpt.config.extra["consistency_grid_steps"] == 10
    assert ckpt.info["training"]["teacher"] == str(teacher)
    log = json.loads((run / "distill_log.json").read_text())
    assert len(log) == 40 and all(np.isfinite(row["loss"]) for row in log)
    # the teacher's normalizer travels with the student
    assert np.array_equal(
        ckpt.normalizer.action_min, load_checkpoint(teacher).normalizer.action_min
    )

    for steps in (None, 2):  # the checkpoint's one step, or two
        runtime = PolicyRuntime(
            student, device="cpu", seed=1, trace_cpu=False, num_inference_steps=steps
        )
        assert runtime.sampler == "consistency" and runtime.num_inference_steps == (steps or 1)
        calls: list[int] = []
        runtime.model.unet.register_forward_hook(lambda *_, log=calls: log.append(1))
        actions, _ = runtime.sample_actions(runtime.observation_window(STATES, GOAL))
        assert len(calls) == (steps or 1)  # network evaluations per chunk
    # chunk shape, and un-normalized into the demonstrations' action range
    assert actions.shape == (ckpt.config.horizon, ckpt.config.action_dim)
    lo, hi = ckpt.normalizer.action_min, ckpt.normalizer.action_max
    assert np.all(actions >= lo - 1e-6) and np.all(actions <= hi + 1e-6)


def test_one_step_chunks_are_deterministic_for_a_seed(checkpoints) -> None:
    _, student, _ = checkpoints
    first = chunk(student, seed=7, trace=False)
    assert np.allclose(first, chunk(student, seed=7, trace=True), atol=1e-5)  # traced UNet
    assert np.allclose(first, chunk(student, seed=7, trace=False), atol=0)
    assert not np.allclose(first, chunk(student, seed=8), atol=1e-4)  # the check can fail
    two = chunk(student, seed=7, num_inference_steps=2)  # two steps: another sample
    assert two.shape == first.shape and not np.allclose(first, two, atol=1e-5)


def test_a_sampler_and_a_checkpoint_that_do_not_fit_are_refused(checkpoints) -> None:
    teacher, student, _ = checkpoints
    with pytest.raises(ValueError, match="needs a distilled checkpoint"):
        PolicyRuntime(teacher, device="cpu", sampler="consistency")
    with pytest.raises(ValueError, match="samples only with sampler consistency"):
        PolicyRuntime(student, device="cpu", sampler="ddim")
    with pytest.raises(ValueError, match="distilled already"):
        distill(student, Path("unused"), Path("unused"), steps=1)


def test_the_targets_are_the_teachers_own_ddim_solutions(checkpoints) -> None:
    """The student predicts samples, the teacher noise: the targets must come
    from the teacher's sampler (a DDIM built from the student's config would
    read the teacher's noise as a chunk), and the fixed points are what the
    teacher's own ``sample`` reaches from the same start noise."""
    teacher, _, _ = checkpoints
    demos = teacher.parent.parent / "demos"
    d = Distiller(teacher, demos, total_steps=1, prediction="sample")
    torch.manual_seed(3)
    d.teacher_trajectories(repeats=1, progress=False)
    windows, starts, _, ends = d.buffer
    rows = torch.arange(min(4, len(windows)))
    obs = d.obs[d.obs_index[windows[rows]]]
    model = load_checkpoint(teacher).model.eval()
    with torch.no_grad():
        cond = model.global_cond(obs)
        scheduler = make_scheduler(d.teacher_config, "ddim")
        scheduler.set_timesteps(d.cm.grid_steps)
        x = starts[rows].clone()
        for t in scheduler.timesteps:
            x = scheduler.step(model.unet(x, t, cond), t, x).prev_sample
    assert torch.allclose(x, ends[rows], atol=1e-5)
    wrong = make_scheduler(d.config, "ddim")  # the student's: sample prediction
    wrong.set_timesteps(d.cm.grid_steps)
    with torch.no_grad():
        y = starts[rows].clone()
        for t in wrong.timesteps:
            y = wrong.step(model.unet(y, t, cond), t, y).prev_sample
    assert not torch.allclose(y, ends[rows], atol=1e-3)  # the check can fail


def test_an_init_that_predicts_otherwise_is_refused(checkpoints) -> None:
    teacher, student, _ = checkpoints
    demos = teacher.parent.parent / "demos"
    with pytest.raises(ValueError, match="predicts sample"):
        Distiller(teacher, demos, total_steps=1, init=student, prediction="epsilon")


def test_the_consistency_function_is_the_identity_at_time_zero() -> None:
    """The boundary condition f(x, 0) = x, whatever the network says; and the
    grid the sampler walks is the teacher's DDIM grid, descending."""
    config = DiffusionConfig(**TINY, extra={"consistency_grid_steps": 10})
    cm = ConsistencyScheduler(config)
    assert cm.grid == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert cm.timesteps(1) == [90] and cm.timesteps(2) == [90, 40]
    assert cm.timesteps(10) == sorted(cm.grid, reverse=True)
    x = torch.randn(3, config.horizon, config.action_dim)
    cond = torch.zeros(3, config.obs_dim * config.n_obs_steps)

    def wild(x, t, cond):
        return torch.full_like(x, 5.0)

    assert torch.allclose(cm.consistency(wild, x, torch.zeros(3, dtype=torch.long), cond), x)
    far = cm.consistency(wild, x, torch.full((3,), 90, dtype=torch.long), cond)
    assert far.abs().max() <= config.clip_sample_range + 1e-3  # at the noise end: x0, clipped
    # one 0-d time for the batch (how the runtime samples) gives the same rows
    for time in (0, 40, 90):
        batched = cm.consistency(wild, x, torch.full((3,), time, dtype=torch.long), cond)
        single = cm.consistency(wild, x, torch.tensor(time), cond)
        assert torch.allclose(single, batched, atol=1e-6), time
    with pytest.raises(ValueError):
        cm.timesteps(11)
