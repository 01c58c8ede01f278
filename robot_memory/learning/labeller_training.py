"""``robot-memory train-labeller``: render crops of the project's objects, train
the default labeller's classifier on them, and save it with its model card.

    robot-memory train-labeller --out models/object_labeller [--episodes 300] [--seed 0]

Episodes of both scenes are rendered (``labeller_data.py``); the last
``--held-out`` fraction of each scene's episodes is kept out of training and
scored: the card reports accuracy per category on those unseen layouts.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from robot_memory.learning.labeller_data import LabelledCrops, build_dataset
from robot_memory.perception.labelling.crop_features import FEATURE_NAMES
from robot_memory.perception.labelling.feature_labeller import FORMAT, VERSION


def make_mlp(inputs: int, hidden: list[int], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


def _linear_state(model: nn.Sequential) -> dict[str, torch.Tensor]:
    """layers.<i>.weight/bias for the i-th Linear (the numpy loader's names)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    state = {}
    for i, layer in enumerate(linears):
        state[f"layers.{i}.weight"] = layer.weight.detach().float().contiguous()
        state[f"layers.{i}.bias"] = layer.bias.detach().float().contiguous()
    return state


def train_classifier(
    data: LabelledCrops,
    train: np.ndarray,
    classes: list[str],
    hidden: list[int],
    epochs: int,
    seed: int,
) -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    """The MLP trained on rows ``train`` (class-balanced loss), and the feature normalizer."""
    torch.manual_seed(seed)
    x = data.features[train]
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    y = np.array([classes.index(c) for c in np.asarray(data.categories)[train]])
    counts = np.bincount(y, minlength=len(classes)).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(classes))
    xt, yt = torch.tensor((x - mean) / std), torch.tensor(y)
    model = make_mlp(x.shape[1], hidden, len(classes))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="train", unit="epoch", leave=False):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 256):
            batch = order[start : start + 256]
            noisy = xt[batch] + 0.05 * torch.randn(len(batch), xt.shape[1], generator=generator)
            loss = loss_fn(model(noisy), yt[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    return model, mean, std


def per_category_accuracy(
    model: nn.Sequential, data: LabelledCrops, rows: np.ndarray, classes: list[str], mean, std
) -> dict[str, dict[str, float]]:
    with torch.no_grad():
        x = torch.tensor((data.features[rows] - mean) / std)
        predicted = model(x).argmax(dim=1).numpy()
    truth = np.asarray(data.categories)[rows]
    report = {}
    for i, name in enumerate(classes):
        mine = truth == name
        if mine.any():
            report[name] = {"n": int(mine.sum()), "accuracy": float(np.mean(predicted[mine] == i))}
    report["all"] = {
        "n": len(rows),
        "accuracy": float(np.mean(np.asarray(classes)[predicted] == truth)) if len(rows) else 0.0,
    }
    return report


def save_labeller(folder: Path, model: nn.Sequential, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    save_file(_linear_state(model), str(weights), metadata={"format": FORMAT})
    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robot-memory train-labeller", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--episodes", type=int, default=300, help="episodes per scene")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction scored, not trained")
    parser.add_argument("--wrist-looks", type=int, default=3, help="wrist poses per episode")
    parser.add_argument("--hidden", default="64,64", help="hidden layer widths")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 5 or not 0.0 < args.held_out < 0.9:
        parser.error("need --episodes >= 5 and 0 < --held-out < 0.9")
    hidden = [int(w) for w in args.hidden.split(",") if w]
    scenes = {"tabletop": range(args.episodes), "household": range(args.episodes)}
    with tqdm(total=2 * args.episodes, desc="render", unit="episode") as bar:
        data = build_dataset(scenes, args.wrist_looks, progress=bar.update)
    if not len(data.features):
        print("train-labeller: no object matched in any episode", file=sys.stderr)
        return 1
    cut = int(args.episodes * (1.0 - args.held_out))
    held = data.seeds >= cut
    train, test = np.flatnonzero(~held), np.flatnonzero(held)
    classes = sorted(set(data.categories))
    model, mean, std = train_classifier(data, train, classes, hidden, args.epochs, args.seed)
    report = per_category_accuracy(model, data, test, classes, mean, std)
    for name, row in report.items():
        print(f"  {name:12s} {row['accuracy']:6.1%}  (n={row['n']})")
    config = {
        "format": FORMAT,
        "version": VERSION,
        "classes": classes,
        "feature_names": list(FEATURE_NAMES),
        "feature_mean": mean.tolist(),
        "feature_std": std.tolist(),
        "hidden": hidden,
        "trained": {
            "date": datetime.date.today().isoformat(),
            "episodes_per_scene": args.episodes,
            "train_episodes_per_scene": cut,
            "wrist_looks": args.wrist_looks,
            "rows_train": len(train),
            "rows_held_out": len(test),
            "epochs": args.epochs,
            "seed": args.seed,
        },
        "held_out_accuracy": report,
    }
    save_labeller(args.out, model, config)
    print(f"wrote {args.out} (held-out accuracy {report['all']['accuracy']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
