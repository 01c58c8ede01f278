"""A top-down picture of a memory scene graph (ROS-free, matplotlib Agg).

Places as outlined rectangles, objects as their boxes' footprints filled with
their colour word and edged by status (visible / remembered / absent), each
labelled ``#id label``; ``on`` / ``in`` relations as arrows from the object to
what it is on or in (not to the table regions: everything stands on one).
Ground-truth positions, when given, are black crosses; a legend explains the
edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import is_color_like
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from robot_memory.schemas import SceneGraphMsg

STATUS_EDGE = {"visible": "black", "remembered": "tab:orange", "absent": "tab:red"}
STATUS_STYLE = {"visible": "-", "remembered": "--", "absent": ":"}


def _centre(lo: Sequence[float], hi: Sequence[float]) -> tuple[float, float]:
    return (lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0


def plot_scene_graph(
    graph: SceneGraphMsg,
    path: str | Path,
    title: str = "",
    truth: Mapping[str, Sequence[float]] | None = None,
    highlight: int | None = None,
) -> Path:
    """Write the picture of ``graph`` to ``path`` (PNG); ``truth`` maps names to
    true positions; ``highlight`` is a memory id drawn thicker."""
    fig = Figure(figsize=(7, 6.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    where: dict[int | str, tuple[float, float]] = {}
    for place in graph.places:
        lo, hi = place.bbox_min, place.bbox_max
        ax.add_patch(
            Rectangle(
                (lo[0], lo[1]), hi[0] - lo[0], hi[1] - lo[1], fill=False, ec="grey", lw=1, ls="-."
            )
        )
        where[place.id] = _centre(lo, hi)
        ax.text(lo[0] + 0.005, hi[1] - 0.02, place.id, fontsize=7, color="grey")
    for obj in graph.objects:
        lo, hi = obj.bbox_min, obj.bbox_max
        colour = obj.color if is_color_like(obj.color) else "lightgrey"
        width = 3.0 if obj.id == highlight else 1.2
        ax.add_patch(
            Rectangle(
                (lo[0], lo[1]),
                max(hi[0] - lo[0], 0.01),
                max(hi[1] - lo[1], 0.01),
                fc=colour,
                alpha=0.6 if obj.status != "absent" else 0.2,
                ec=STATUS_EDGE.get(obj.status, "black"),
                ls=STATUS_STYLE.get(obj.status, "-"),
                lw=width,
            )
        )
        where[obj.id] = (obj.centroid[0], obj.centroid[1])
        ax.text(
            obj.centroid[0],
            hi[1] + 0.006,
            f"#{obj.id} {obj.label}\n{obj.status}",
            fontsize=7,
            ha="center",
            va="bottom",
        )
    regions = {p.id for p in graph.places if p.kind == "table_region"}
    for rel in graph.relations:
        if rel.relation == "near" or rel.subject not in where or rel.target not in where:
            continue
        if rel.target in regions:
            continue
        (x0, y0), (x1, y1) = where[rel.subject], where[rel.target]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={"arrowstyle": "->", "color": "tab:blue", "lw": 0.8},
        )
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, rel.relation, fontsize=6, color="tab:blue")
    for pos in (truth or {}).values():
        ax.plot(pos[0], pos[1], "kx", ms=6)
    ax.set_aspect("equal")
    ax.autoscale_view()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    ax.set_xlim(x0 - 0.05, x1 + 0.05)
    ax.set_ylim(y0 - 0.05, y1 + 0.08)
    ax.set_xlabel("x [m] (table frame)")
    ax.set_ylabel("y [m]")
    ax.grid(alpha=0.3)
    handles = [
        Patch(fc="white", ec=STATUS_EDGE[k], ls=STATUS_STYLE[k], label=f"memory: {k}")
        for k in STATUS_EDGE
    ]
    handles.append(Line2D([], [], color="tab:blue", lw=0.8, label="on / in"))
    if truth:
        handles.append(Line2D([], [], color="k", marker="x", ls="", label="ground truth"))
    ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.9)
    ax.set_title(
        (title + "\n" if title else "")
        + f"memory scene graph #{graph.seq}: {len(graph.objects)} objects",
        fontsize=9,
    )
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    return path


__all__ = ["plot_scene_graph"]
