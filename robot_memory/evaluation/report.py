"""The evaluation report: report.json, report.md, map.png and metrics.png.

``summary`` is :func:`robot_memory.evaluation.metrics.aggregate`'s dict, with
:func:`~robot_memory.evaluation.metrics.score_last_seen`'s dict under
``summary["last_seen"]`` when last-seen queries were asked. ``meta`` is free
form (bag path, durations, throughput, rejected inputs). The speed target reads
``summary["speed"]["x_real_time"]``, else ``meta["realtime_factor"]``, else
``meta["bag_duration_s"] / meta["processing_s"]``.
Figures are drawn with the Agg canvas directly (no pyplot, no global backend).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from robot_memory.evaluation.metrics import FrameScore, match_objects
from robot_memory.perception.observations import quat_to_matrix
from robot_memory.schemas import GroundTruth, GroundTruthObject, SceneGraphMsg

TARGETS = {
    "f1": 0.95,
    "loc_error_mean": 0.015,
    "duplicates": 0,
    "permanence": 1.0,
    "last_seen": 1.0,
    "realtime_factor": 5.0,
}


def _realtime_factor(summary: dict, meta: dict) -> float | None:
    speed = summary.get("speed") or {}
    if speed.get("x_real_time") is not None:
        return float(speed["x_real_time"])
    if meta.get("realtime_factor") is not None:
        return float(meta["realtime_factor"])
    bag_s, proc_s = meta.get("bag_duration_s"), meta.get("processing_s")
    if bag_s is not None and proc_s:
        return float(bag_s) / float(proc_s)
    return None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _cm(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} cm"


def target_rows(summary: dict, meta: dict) -> list[dict]:
    """The metrics with targets: name, value, shown value, target, pass (None: n/a)."""
    last_seen = summary.get("last_seen") or {}
    rtf = _realtime_factor(summary, meta)

    def row(name, value, shown, target, ok) -> dict:
        return {
            "metric": name,
            "value": value,
            "shown": shown,
            "target": target,
            "pass": None if value is None else bool(ok(value)),
        }

    return [
        row(
            "F1 (final snapshot)",
            summary.get("f1_final"),
            _pct(summary.get("f1_final")),
            f">= {_pct(TARGETS['f1'])}",
            lambda v: v >= TARGETS["f1"],
        ),
        row(
            "Localization error, mean",
            summary.get("loc_error_mean"),
            _cm(summary.get("loc_error_mean")),
            f"<= {_cm(TARGETS['loc_error_mean'])}",
            lambda v: v <= TARGETS["loc_error_mean"],
        ),
        row(
            "Duplicates (final snapshot)",
            summary.get("duplicates_final"),
            str(summary.get("duplicates_final", "n/a")),
            "0 for static objects",
            lambda v: v <= TARGETS["duplicates"],
        ),
        row(
            "Object permanence",
            summary.get("permanence_accuracy"),
            _pct(summary.get("permanence_accuracy")),
            "100 %",
            lambda v: v >= TARGETS["permanence"],
        ),
        row(
            "Last seen within 3 cm",
            last_seen.get("accuracy"),
            _pct(last_seen.get("accuracy")),
            "100 %",
            lambda v: v >= TARGETS["last_seen"],
        ),
        row(
            "Speed (x real time)",
            rtf,
            "n/a" if rtf is None else f"{rtf:.1f}x",
            f">= {TARGETS['realtime_factor']:.0f}x",
            lambda v: v >= TARGETS["realtime_factor"],
        ),
    ]


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _cell(value) -> str:
    value = _json_safe(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _markdown(summary: dict, rows: list[dict], meta: dict, final_match) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "N/A"}
    lines = ["# Memory evaluation", ""]
    if meta:
        lines += ["| Run | |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in meta.items()]
        lines += [f"| speed: {k} | {_cell(v)} |" for k, v in (summary.get("speed") or {}).items()]
        lines.append("")
    lines += ["## Targets", "", "| Metric | Value | Target | Result |", "|---|---|---|---|"]
    lines += [
        f"| {r['metric']} | {r['shown']} | {r['target']} | {verdict[r['pass']]} |" for r in rows
    ]
    lines += ["", "## Other metrics", "", "| Metric | Value |", "|---|---|"]
    lines += [
        f"| Snapshots scored | {summary.get('snapshots', 0)} |",
        f"| Precision (mean / final) | {_pct(summary.get('precision_mean'))} / "
        f"{_pct(summary.get('precision_final'))} |",
        f"| Recall (mean / final) | {_pct(summary.get('recall_mean'))} / "
        f"{_pct(summary.get('recall_final'))} |",
        f"| F1 (mean) | {_pct(summary.get('f1_mean'))} |",
        f"| Localization error p95 / max | {_cm(summary.get('loc_error_p95'))} / "
        f"{_cm(summary.get('loc_error_max'))} |",
        f"| Duplicates (max over snapshots) | {summary.get('duplicates_max', 'n/a')} |",
        f"| Relation accuracy | {_pct(summary.get('relation_accuracy'))} "
        f"({summary.get('relation_correct', 0)}/{summary.get('relation_total', 0)}) |",
        f"| Permanence | {summary.get('permanence_correct', 0)}/"
        f"{summary.get('permanence_total', 0)} |",
    ]
    lines += ["", "## Final snapshot", ""]
    lines.append(f"- matched: {', '.join(f'#{m} = {g}' for m, g, _ in final_match.pairs) or '-'}")
    lines.append(f"- missed (false negatives): {', '.join(final_match.false_negatives) or '-'}")
    fps = ", ".join(f"#{m}" for m in final_match.false_positives)
    lines.append(f"- false positives: {fps or '-'}")
    lines.append(f"- duplicates: {', '.join(f'#{m}' for m in final_match.duplicates) or '-'}")
    lines += ["", "![map](map.png)", "", "![metrics](metrics.png)", ""]
    return "\n".join(lines)


def _footprint(obj: GroundTruthObject) -> np.ndarray:
    """Top-down outline (convex hull of the box's corners, x-y)."""
    from scipy.spatial import ConvexHull

    rot = quat_to_matrix(np.asarray(obj.quaternion, dtype=float))
    half = np.asarray(obj.size, dtype=float) / 2.0
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    corners = (signs * half) @ rot.T + np.asarray(obj.position)
    xy = corners[:, :2]
    try:
        return xy[ConvexHull(xy).vertices]
    except Exception:  # noqa: BLE001 - degenerate (flat) footprint: fall back to the corners
        return xy


def _colour(word: str, fallback: str = "grey") -> str:
    """A drawable colour for a colour word (white would vanish on the page)."""
    from matplotlib.colors import is_color_like

    if word.lower() in ("white", "ivory"):
        return "0.55"
    return word if is_color_like(word) else fallback


class _Labels:
    """Places text labels, nudging each down until it clears the ones already placed."""

    def __init__(self, ax) -> None:
        self.ax = ax
        self.used: list[tuple[float, float]] = []

    def add(self, x: float, y: float, text: str, **kw) -> None:
        while any(abs(x - ux) < 0.12 and abs(y - uy) < 0.02 for ux, uy in self.used):
            y -= 0.022
        self.used.append((x, y))
        self.ax.text(x, y, text, fontsize=7, zorder=5, **kw)


def draw_map(path: Path, graph: SceneGraphMsg, truth: GroundTruth, match) -> None:
    fig = Figure(figsize=(9, 7.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = _Labels(ax)
    for place in graph.places:
        x0, y0, _ = place.bbox_min
        x1, y1, _ = place.bbox_max
        is_bin = place.kind == "container"
        ax.add_patch(
            Rectangle(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                fill=is_bin,
                facecolor="0.85",
                edgecolor="0.3" if is_bin else "0.6",
                linestyle="-" if is_bin else ":",
                zorder=0,
            )
        )
        ax.text(x0 + 0.01, y1 - 0.03, place.id, fontsize=7, color="0.4", zorder=1)
    for obj in truth.objects:
        if obj.id == "table":
            continue
        missed = obj.id in match.false_negatives
        ax.add_patch(
            Polygon(
                _footprint(obj),
                closed=True,
                fill=False,
                edgecolor="red" if missed else _colour(obj.color, "black"),
                linewidth=2.0 if obj.kind == "object" else 1.0,
                linestyle="-" if obj.kind == "object" else "--",
                zorder=2,
            )
        )
        labels.add(obj.position[0] - 0.03, obj.position[1] - 0.05, obj.label, color="0.35")
    for mem in graph.objects:
        x0, y0, _ = mem.bbox_min
        x1, y1, _ = mem.bbox_max
        alpha = {"visible": 0.6, "remembered": 0.3, "absent": 0.08}[mem.status]
        ax.add_patch(
            Rectangle(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                facecolor=_colour(mem.color),
                alpha=alpha,
                edgecolor="none",
                zorder=3,
            )
        )
        fp = mem.id in match.false_positives
        ax.plot(mem.centroid[0], mem.centroid[1], "x" if fp else "o", color="k", ms=5, zorder=4)
        labels.add(
            mem.centroid[0] + 0.03,
            mem.centroid[1] + 0.01,
            f"#{mem.id} {mem.label} ({mem.status})"
            + (", duplicate" if mem.id in match.duplicates else ""),
            color="red" if fp else "black",
        )
    by_id = {o.id: o for o in graph.objects}
    for mem_id, gt_id, _ in match.pairs:
        m, g = by_id[mem_id].centroid, truth.get(gt_id).position
        ax.plot([m[0], g[0]], [m[1], g[1]], "-", color="green", lw=1.5, zorder=4)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(
        "Top view: GT outlines (red = missed), memory boxes (o matched / x false positive), "
        "green = match",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def draw_metrics(path: Path, scores: list[FrameScore]) -> None:
    t = [s.stamp for s in scores]
    fig = Figure(figsize=(9, 8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    axes[0].plot(t, [s.precision for s in scores], label="precision")
    axes[0].plot(t, [s.recall for s in scores], label="recall")
    axes[0].plot(t, [s.f1 for s in scores], label="F1", lw=2)
    axes[0].axhline(TARGETS["f1"], color="0.5", ls=":", lw=1)
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].legend(loc="lower right", fontsize=8)
    mean_cm = [100 * float(np.mean(s.loc_errors)) if s.loc_errors else np.nan for s in scores]
    max_cm = [100 * float(np.max(s.loc_errors)) if s.loc_errors else np.nan for s in scores]
    axes[1].plot(t, mean_cm, label="mean")
    axes[1].plot(t, max_cm, label="max", alpha=0.6)
    axes[1].axhline(100 * TARGETS["loc_error_mean"], color="0.5", ls=":", lw=1)
    axes[1].set_ylabel("loc. error [cm]")
    axes[1].legend(loc="upper right", fontsize=8)
    perm = [
        s.permanence_correct / s.permanence_total if s.permanence_total else np.nan for s in scores
    ]
    rel = [s.relation_correct / s.relation_total if s.relation_total else np.nan for s in scores]
    axes[2].plot(t, perm, "o-", ms=3, label="permanence")
    axes[2].plot(t, rel, "s-", ms=3, label="relations", alpha=0.7)
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_xlabel("time [s]")
    axes[2].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(
    out_dir: Path,
    summary: dict,
    scores: list[FrameScore],
    final_graph: SceneGraphMsg,
    final_truth: GroundTruth,
    meta: dict,
) -> dict[str, Path]:
    """Write report.json, report.md, map.png and metrics.png into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = target_rows(summary, meta)
    final_match = match_objects(final_graph, final_truth)
    paths = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "map": out_dir / "map.png",
        "metrics": out_dir / "metrics.png",
    }
    doc = {
        "summary": summary,
        "targets": [{k: v for k, v in r.items() if k != "shown"} for r in rows],
        "passed": all(r["pass"] is True for r in rows),
        "series": [asdict(s) for s in scores],
        "meta": meta,
    }
    paths["json"].write_text(json.dumps(_json_safe(doc), indent=2))
    paths["markdown"].write_text(_markdown(summary, rows, meta, final_match))
    draw_map(paths["map"], final_graph, final_truth, final_match)
    draw_metrics(paths["metrics"], scores)
    return paths
