"""Policy checkpoints: safetensors weights + JSON config + JSON normalizer.

A checkpoint is a folder (never a pickle)::

    checkpoint.json      format, version, what produced it (steps, data, time), weights sha256
    config.json          DiffusionConfig
    normalizer.json      min/max per named feature
    model.safetensors    the EMA weights of the network

Loading checks the format version, the weights' hash, the normalizer against
the config and the tensor names/shapes against the network (strict).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.modeling_diffusion import DiffusionPolicyModel
from robot_memory.policy.processor_diffusion import Normalizer

FORMAT = "robot_memory.diffusion_policy"
VERSION = 1
FILES = ("checkpoint.json", "config.json", "normalizer.json", "model.safetensors")


class CheckpointError(RuntimeError):
    """A checkpoint folder that is missing, incomplete, corrupt or incompatible."""


@dataclass
class PolicyCheckpoint:
    model: DiffusionPolicyModel
    config: DiffusionConfig
    normalizer: Normalizer
    info: dict


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(
    folder: str | Path,
    model: DiffusionPolicyModel,
    normalizer: Normalizer,
    info: dict | None = None,
) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config
    normalizer.check(config)
    weights = folder / "model.safetensors"
    state = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()
    }
    save_file(state, str(weights), metadata={"format": FORMAT, "version": str(VERSION)})
    config.save(folder / "config.json")
    normalizer.save(folder / "normalizer.json", config)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "weights_sha256": _sha256(weights),
        "parameters": sum(v.numel() for v in state.values()),
        **(info or {}),
    }
    (folder / "checkpoint.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> PolicyCheckpoint:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no checkpoint folder at {folder}")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a complete checkpoint: missing {missing}")
    manifest = json.loads((folder / "checkpoint.json").read_text())
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{folder}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise CheckpointError(
            f"{folder}: checkpoint version {manifest.get('version')}, this code reads {VERSION}"
        )
    weights = folder / "model.safetensors"
    if manifest.get("weights_sha256") != _sha256(weights):
        raise CheckpointError(f"{weights} does not match the hash in checkpoint.json (corrupt?)")
    try:
        config = DiffusionConfig.load(folder / "config.json")
        normalizer = Normalizer.load(folder / "normalizer.json", config)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder}: {exc}") from exc
    model = DiffusionPolicyModel(config)
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not fit the configured network: {exc}") from exc
    model.to(device).eval()
    return PolicyCheckpoint(model, config, normalizer, manifest)


__all__ = ["CheckpointError", "PolicyCheckpoint", "load_checkpoint", "save_checkpoint"]
