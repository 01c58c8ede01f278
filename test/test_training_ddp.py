"""Training over 2 CPU processes with DDP (torchrun, gloo), through the CLI.

``train-policy --processes 2`` re-runs itself under torchrun; the checkpoint
has the single-process format (the policy runtime loads it), the run is
seeded (two runs, the same weights), a run stopped and resumed ends where
the uninterrupted one does, and a state is resumed only with as many
processes as made it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_memory.learning.demonstrations import collect
from robot_memory.learning.training import main, train
from robot_memory.policy.checkpoint import load_checkpoint
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.runtime import PolicyRuntime

pytestmark = pytest.mark.slow
TINY = dict(down_dims=(16, 32), diffusion_step_embed_dim=16, n_groups=4, warmup_steps=5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    counts = collect(root / "demos", episodes=2, skills=("pick", "place"), progress=False)
    assert counts["successful"] >= 3, counts
    DiffusionConfig(**{**TINY, "learning_rate": 3e-3}).save(root / "tiny.json")
    return root / "demos", root / "tiny.json"


def _run(setup, out: Path, *more: str) -> int:
    demos, config = setup
    args = ["--data", str(demos), "--out", str(out), "--steps", "60", "--batch-size", "32"]
    return main([*args, "--config", str(config), "--save-every", "1000", *more])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(folder).model.state_dict()


def test_two_processes_train_a_loadable_seeded_checkpoint(setup, tmp_path):
    assert _run(setup, tmp_path / "a", "--processes", "2") == 0
    record = json.loads((tmp_path / "a/checkpoint/checkpoint.json").read_text())["training"]
    assert record["processes"] == 2 and record["batch_size"] == 32
    assert (tmp_path / "a/train_state/rng_rank1.safetensors").is_file()
    losses = [r["loss"] for r in json.loads((tmp_path / "a/train_log.json").read_text())]
    assert len(losses) == 60 and np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    runtime = PolicyRuntime(tmp_path / "a/checkpoint", device="cpu", threads=1)
    assert runtime.num_inference_steps > 0

    # seeded: a second run gives the same weights; one process (other batches) does not
    assert _run(setup, tmp_path / "b", "--processes", "2") == 0
    a, b = _weights(tmp_path / "a/checkpoint"), _weights(tmp_path / "b/checkpoint")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _run(setup, tmp_path / "one") == 0
    one = _weights(tmp_path / "one/checkpoint")
    assert not all(torch.equal(a[k], one[k]) for k in a)


def test_two_process_run_resumes_exactly_and_only_with_two(setup, tmp_path):
    assert _run(setup, tmp_path / "full", "--processes", "2") == 0
    assert _run(setup, tmp_path / "cut", "--processes", "2", "--stop-after", "25") == 0
    assert not (tmp_path / "cut/checkpoint").exists()
    state = json.loads((tmp_path / "cut/train_state/state.json").read_text())
    assert state["step"] == 25 and state["processes"] == 2

    with pytest.raises(ValueError, match="2 process"):  # in this one process
        train(setup[0], tmp_path / "cut", 60, 32, resume=True, progress=False)

    assert _run(setup, tmp_path / "cut", "--processes", "2", "--resume") == 0
    a, b = _weights(tmp_path / "full/checkpoint"), _weights(tmp_path / "cut/checkpoint")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_batch_must_split_over_the_processes(tmp_path, capsys):
    args = ["--data", str(tmp_path / "demos"), "--out", str(tmp_path / "x"), "--batch-size", "33"]
    assert main([*args, "--processes", "2"]) == 2
    assert "split evenly" in capsys.readouterr().err
