"""The default labeller: crop features -> a small MLP -> a category (numpy only).

The classifier is trained by ``robot-memory train-labeller`` on objects the
project renders in its own cells (``robot_memory/learning/labeller_data.py``)
and shipped in ``models/object_labeller/``:

    config.json         format, classes, feature names, normalizer, layer sizes, sha256
    model.safetensors   the weights (layers.<i>.weight / .bias, float32)
    README.md           the model card

Inference is a few small matrix products in numpy (no torch import on the
perception path); loading checks the format, the weights' hash and that the
feature names are the ones this code computes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from robot_memory.paths import model_path
from robot_memory.perception.labelling.base import UNKNOWN, Label, ObjectCrop
from robot_memory.perception.labelling.crop_features import FEATURE_NAMES, crop_features

FORMAT = "robot_memory.object_labeller"
VERSION = 1
DEFAULT_LABELLER = "object_labeller"


class LabellerModelError(RuntimeError):
    """A labeller model folder that is missing, corrupt or made for other features."""


@dataclass(frozen=True)
class FeatureClassifier:
    """An MLP over standardized features: ReLU hidden layers, softmax output."""

    classes: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: tuple[np.ndarray, ...]  # (out, in) per layer, torch's layout
    biases: tuple[np.ndarray, ...]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, classes) probabilities of (N, features) rows."""
        x = (np.atleast_2d(features).astype(np.float32) - self.mean) / self.std
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ w.T + b
            if i < len(self.weights) - 1:
                x = np.maximum(x, 0.0)
        x = x - x.max(axis=1, keepdims=True)
        e = np.exp(x)
        return e / e.sum(axis=1, keepdims=True)


def load_classifier(folder: str | Path | None = None) -> tuple[FeatureClassifier, dict]:
    """The classifier in ``folder`` (default ``models/object_labeller``) and its config."""
    folder = Path(folder) if folder is not None else model_path(DEFAULT_LABELLER)
    config_file, weights_file = folder / "config.json", folder / "model.safetensors"
    if not (config_file.is_file() and weights_file.is_file()):
        raise LabellerModelError(
            f"no labeller model in {folder} (need config.json and model.safetensors); "
            "train one with `robot-memory train-labeller`"
        )
    config = json.loads(config_file.read_text())
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise LabellerModelError(
            f"{config_file}: format {config.get('format')!r} v{config.get('version')}, "
            f"expected {FORMAT!r} v{VERSION}"
        )
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    if digest != config.get("weights_sha256"):
        raise LabellerModelError(f"{weights_file}: sha256 {digest[:12]}... does not match config")
    if tuple(config["feature_names"]) != FEATURE_NAMES:
        raise LabellerModelError(
            f"{folder} was trained on other features than this code computes; retrain it"
        )
    tensors = load_file(str(weights_file))
    layers = len(config["hidden"]) + 1
    try:
        weights = tuple(tensors[f"layers.{i}.weight"] for i in range(layers))
        biases = tuple(tensors[f"layers.{i}.bias"] for i in range(layers))
    except KeyError as exc:
        raise LabellerModelError(f"{weights_file}: missing tensor {exc}") from exc
    classifier = FeatureClassifier(
        classes=tuple(config["classes"]),
        mean=np.asarray(config["feature_mean"], np.float32),
        std=np.maximum(np.asarray(config["feature_std"], np.float32), 1e-6),
        weights=weights,
        biases=biases,
    )
    if weights[-1].shape[0] != len(classifier.classes) or weights[0].shape[1] != len(FEATURE_NAMES):
        raise LabellerModelError(f"{weights_file}: layer shapes do not fit the config")
    return classifier, config


class FeatureLabeller:
    """Categories from crop features; answers :data:`UNKNOWN` below ``min_confidence``."""

    def __init__(self, folder: str | Path | None = None, min_confidence: float = 0.4):
        if not 0.0 <= min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in [0, 1), got {min_confidence}")
        self.classifier, self.config = load_classifier(folder)
        self.categories = self.classifier.classes
        self.min_confidence = min_confidence

    def label(self, crop: ObjectCrop) -> Label:
        if len(crop.points) < 3:
            return Label(UNKNOWN, 0.0, "features")
        p = self.classifier.probabilities(crop_features(crop))[0]
        best = int(np.argmax(p))
        category = self.categories[best] if p[best] >= self.min_confidence else UNKNOWN
        scores = {c: float(s) for c, s in zip(self.categories, p, strict=True)}
        return Label(category, float(p[best]), "features", scores)

    def close(self) -> None:
        pass
