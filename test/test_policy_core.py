"""The diffusion policy core, ROS-free: dataset, training, checkpoints, normalizer,
sampler, skill monitor and statistics (plain pytest, real torch training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_memory.learning.dataset import DatasetError, load_episodes, read_meta, validate_steps
from robot_memory.learning.demonstrations import collect
from robot_memory.learning.evaluation import wilson_interval
from robot_memory.learning.training import train
from robot_memory.paths import model_path
from robot_memory.policy.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.kinematics import IKError
from robot_memory.policy.modeling_diffusion import DiffusionPolicyModel
from robot_memory.policy.processor_diffusion import Normalizer, NormalizerError
from robot_memory.policy.runtime import PolicyRuntime, RobotState
from robot_memory.policy.skill_goal import RELEASE_TCP_HEIGHT, SkillGoal
from robot_memory.policy.skill_monitor import FAILED, RUNNING, SUCCEEDED, SkillMonitor
from robot_memory.robot.panda import HOME_ARM

TINY = dict(down_dims=(16, 32), diffusion_step_embed_dim=16, n_groups=4, warmup_steps=5)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("policy") / "demos"
    counts = collect(out, episodes=2, skills=("pick", "place"), progress=False)
    assert counts["successful"] >= 3, counts
    return out


def test_a_second_cell_is_collected_into_the_same_dataset(tmp_path: Path) -> None:
    """Resuming keys on (cell, skill, seed): the household's seed 0 is not the
    tabletop's, and collecting it again is a resume (nothing new)."""
    out = tmp_path / "demos"
    first = collect(out, episodes=1, skills=("pick",), progress=False)
    second = collect(out, episodes=1, skills=("pick",), scene="household", progress=False)
    again = collect(out, episodes=1, skills=("pick",), scene="household", progress=False)
    assert first["written"] == 1 and second["written"] + second["ik_errors"] == 1
    assert (again["written"], again["kept"]) == (0, second["written"])  # this cell's, kept
    meta = read_meta(out)
    sources = {e["source"] for e in meta["episodes"]}
    assert "expert:tabletop" in sources and sources <= {"expert:tabletop", "expert:household"}
    assert meta["source"] == "expert:in-process:tabletop+expert:in-process:household"


def test_demonstrations_follow_the_dataset_format(demos: Path) -> None:
    meta = read_meta(demos)
    assert meta["fps"] == 10.0 and len(meta["episodes"]) == 4
    episodes = list(load_episodes(demos))
    assert {e.info.skill for e in episodes} == {"pick", "place"}
    for ep in episodes:
        n = len(ep)
        assert 30 < n < 150  # a few seconds at 10 Hz
        assert np.allclose(np.diff(ep.steps["time"]), 0.1, atol=1e-6)
        # the commanded gripper closes during pick and opens during place
        grip = ep.steps["action_gripper_width"]
        if ep.info.skill == "pick":
            assert grip[0] > 0.07 and grip[-1] < 0.01
            # the hand ends above the object it grasped
            assert ep.steps["tcp_position"][-1, 2] > ep.info.target_position[2] + 0.1
        else:
            assert grip[0] < 0.01 and grip[-1] > 0.07


def test_dataset_rejects_bad_episodes(demos: Path) -> None:
    ep = next(load_episodes(demos))
    steps = dict(ep.steps)
    steps["joint_positions"] = steps["joint_positions"].copy()
    steps["joint_positions"][3, 2] = np.nan
    with pytest.raises(DatasetError, match="non-finite"):
        validate_steps(steps)
    steps = dict(ep.steps)
    del steps["tcp_yaw"]
    with pytest.raises(DatasetError, match="missing"):
        validate_steps(steps)


def test_tiny_training_run_loss_falls_and_resume_is_exact(demos: Path, tmp_path: Path) -> None:
    config = DiffusionConfig(**{**TINY, "learning_rate": 3e-3})
    full = train(demos, tmp_path / "full", steps=160, batch_size=32, config=config, progress=False)
    losses = [row["loss"] for row in json.loads((tmp_path / "full/train_log.json").read_text())]
    assert np.mean(losses[-20:]) < 0.75 * np.mean(losses[:20])

    # interrupted at 70 and resumed: the same weights as the uninterrupted run
    train(
        demos,
        tmp_path / "cut",
        160,
        32,
        config=config,
        progress=False,
        stop_after=70,
        save_every=1000,
    )
    resumed = train(demos, tmp_path / "cut", 160, 32, resume=True, progress=False)
    a = load_checkpoint(full).model.state_dict()
    b = load_checkpoint(resumed).model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _trained_checkpoint(demos: Path, tmp_path: Path) -> Path:
    return train(
        demos,
        tmp_path / "run",
        steps=10,
        batch_size=16,
        config=DiffusionConfig(**TINY),
        progress=False,
    )


def test_save_and_load_give_identical_actions(demos: Path, tmp_path: Path) -> None:
    folder = _trained_checkpoint(demos, tmp_path)
    first = load_checkpoint(folder)
    copy = save_checkpoint(tmp_path / "copy", first.model, first.normalizer, {"note": "copy"})
    goal = SkillGoal("pick", np.array([0.1, 0.05, 0.025]), 0.3, "red_cube")
    states = [RobotState(HOME_ARM.copy(), 0.08, 0.0), RobotState(HOME_ARM + 0.01, 0.08, 0.1)]
    outputs = []
    for path, trace in ((folder, False), (copy, False), (copy, True)):
        runtime = PolicyRuntime(path, device="cpu", seed=7, trace_cpu=trace)
        actions, _ = runtime.sample_actions(runtime.observation_window(states, goal))
        outputs.append(actions)
    for other in outputs[1:]:
        assert np.allclose(outputs[0], other, atol=1e-5)
    assert outputs[0].shape == (first.config.horizon, first.config.action_dim)
    assert np.all(np.isfinite(outputs[0]))
    # another seed gives another sample: the comparison above can fail
    runtime = PolicyRuntime(copy, device="cpu", seed=8)
    other_seed, _ = runtime.sample_actions(runtime.observation_window(states, goal))
    assert not np.allclose(outputs[0], other_seed, atol=1e-5)


def test_a_sample_ik_cannot_reach_is_drawn_again_up_to_ik_attempts() -> None:
    runtime = PolicyRuntime(str(model_path()), device="cpu", seed=3, ik_attempts=3)
    goal = SkillGoal("pick", np.array([0.1, 0.05, 0.025]), 0.3, "red_cube")
    states = [RobotState(HOME_ARM.copy(), 0.08, 0.0), RobotState(HOME_ARM + 0.01, 0.08, 0.1)]
    real, seen = runtime.kinematics.joint_targets, []

    def out_of_reach(misses: int):
        """Fault injection: the real IK, after ``misses`` samples refused."""

        def joint_targets(q, positions, yaws, **kwargs):
            seen.append(np.array(positions))
            if len(seen) <= misses:
                raise IKError("injected: out of reach")
            return real(q, positions, yaws, **kwargs)

        return joint_targets

    runtime.kinematics.joint_targets = out_of_reach(2)
    chunk = runtime.predict(states, goal)
    assert len(seen) == 3 and runtime.ik_resamples == 2
    assert not np.allclose(seen[0], seen[1])  # each attempt is a new sample
    assert np.allclose(chunk.tcp_positions, seen[2][: len(chunk.tcp_positions)])
    seen.clear()
    runtime.kinematics.joint_targets = out_of_reach(3)
    with pytest.raises(IKError):
        runtime.predict(states, goal)
    assert len(seen) == 3  # ik_attempts samples, then the skill fails
    with pytest.raises(ValueError):
        PolicyRuntime(str(model_path()), device="cpu", ik_attempts=0)


def test_checkpoint_errors_are_clear(demos: Path, tmp_path: Path) -> None:
    folder = _trained_checkpoint(demos, tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        load_checkpoint(tmp_path / "nowhere")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="hash"):
        load_checkpoint(folder)
    manifest = json.loads((folder / "checkpoint.json").read_text())
    manifest["version"] = 99
    (folder / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(folder)
    (folder / "normalizer.json").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(folder)


def test_normalizer_round_trip(tmp_path: Path) -> None:
    config = DiffusionConfig()
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, config.obs_dim))
    obs[:, 12] = 1.0  # a feature that never varies (skill one-hot in a pick-only set)
    act = rng.normal(size=(200, config.action_dim)) * [1, 2, 3, 0.1, 0.04]
    norm = Normalizer.fit(obs, act)
    n_obs, n_act = norm.normalize_obs(obs), norm.normalize_action(act)
    assert np.all(np.isfinite(n_obs)) and n_obs.min() >= -1 - 1e-9 and n_obs.max() <= 1 + 1e-9
    assert np.allclose(norm.unnormalize_action(n_act), act)
    norm.save(tmp_path / "normalizer.json", config)
    loaded = Normalizer.load(tmp_path / "normalizer.json", config)
    assert np.allclose(loaded.normalize_obs(obs), n_obs)
    assert np.allclose(loaded.unnormalize_action(n_act), act)
    data = json.loads((tmp_path / "normalizer.json").read_text())
    del data["action"]["gripper_width"]
    with pytest.raises(NormalizerError, match="gripper_width"):
        Normalizer.from_dict(data, config)
    with pytest.raises(NormalizerError, match="finite"):
        Normalizer(np.full(3, np.nan), np.ones(3), np.zeros(2), np.ones(2))


def test_config_validates_itself() -> None:
    with pytest.raises(ValueError, match="divisible"):
        DiffusionConfig(horizon=10, down_dims=(8, 16, 32))
    with pytest.raises(ValueError, match="n_action_steps"):
        DiffusionConfig(n_action_steps=16)
    with pytest.raises(ValueError, match="sampler"):
        DiffusionConfig(sampler="euler")
    c = DiffusionConfig(down_dims=(16, 32), n_groups=4)
    assert DiffusionConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown config keys"):
        DiffusionConfig.from_dict({**c.to_dict(), "pickle": True})


def test_ddim_and_ddpm_sample_in_the_clip_range() -> None:
    config = DiffusionConfig(**TINY)
    model = DiffusionPolicyModel(config).eval()
    obs = torch.zeros(2, config.n_obs_steps, config.obs_dim)
    gen = torch.Generator().manual_seed(0)
    for sampler, steps in (("ddim", 10), ("ddpm", 100)):
        from robot_memory.policy.modeling_diffusion import make_scheduler

        out = model.sample(obs, make_scheduler(config, sampler), steps, generator=gen)
        assert out.shape == (2, config.horizon, config.action_dim)
        assert torch.isfinite(out).all()


def test_skill_monitor_pick_and_place() -> None:
    pick = SkillMonitor(SkillGoal("pick", np.array([0.1, 0.0, 0.025]), 0.0), 0.0)
    assert pick.update(0.5, 0.08, 0.08, np.array([0.1, 0.0, 0.2])) == RUNNING
    assert pick.update(1.0, 0.05, 0.0, np.array([0.1, 0.0, 0.03])) == RUNNING  # closing
    assert pick.update(1.6, 0.049, 0.0, np.array([0.1, 0.0, 0.2])) == SUCCEEDED
    missed = SkillMonitor(SkillGoal("pick", np.array([0.1, 0.0, 0.025]), 0.0), 0.0)
    missed.update(1.0, 0.05, 0.0, np.array([0.1, 0.0, 0.03]))
    assert missed.update(1.6, 0.001, 0.0, np.array([0.1, 0.0, 0.03])) == FAILED
    assert "nothing" in missed.reason

    target = np.array([0.15, 0.35, 0.08])
    release = target + [0, 0, RELEASE_TCP_HEIGHT]
    place = SkillMonitor(SkillGoal("place", target, 0.0), 0.0)
    # opening high above the target is not a place
    assert place.update(0.5, 0.08, 0.08, release + [0, 0, 0.2]) == RUNNING
    assert place.update(1.0, 0.04, 0.0, release + [0, 0, 0.01]) == RUNNING  # lowered, holding
    assert place.update(1.5, 0.08, 0.08, release) == RUNNING  # released
    assert place.update(2.0, 0.08, 0.08, release + [0, 0, 0.06]) == SUCCEEDED
    late = SkillMonitor(SkillGoal("place", target, 0.0), 0.0)
    assert late.update(16.0, 0.0, 0.0, release + [0, 0, 0.2]) == FAILED
    assert "timed out" in late.reason


def test_wilson_interval_reference_values() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-4)
    assert wilson_interval(45, 50) == pytest.approx((0.78640, 0.95652), abs=1e-4)
    assert wilson_interval(25, 50) == pytest.approx((0.36644, 0.63356), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
