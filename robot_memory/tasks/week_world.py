"""A week in the cell, at the level memory sees it (ROS-free).

People add, remove, move, swap and cover objects, and put them in or take them
out of the bin, while the robot looks away; the robot puts things in the bin
when told. After each action the robot looks (a camera above the table: depth
rendered from the true boxes, so permanence sees free space and occlusion as
the geometry says; the objects it can see, with a few millimetres of noise).
Between days the memory process restarts (its store reopened), as a stack does
overnight. Every action is logged as ground truth (:class:`TruthEvent`: who,
what, from where to where, when), which questions and their answers are made
from (:mod:`robot_memory.tasks.week_questions`).

Time is compressed: a day is ``day_length_s`` of the robot's clock, and the
questions' "yesterday" uses the same :class:`~robot_memory.planner.time_words.CellClock`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_memory.cell import CellConfig, load_cell
from robot_memory.memory import SceneMemory
from robot_memory.memory.events import SkillSpan
from robot_memory.perception.observations import CameraView, ObjectObservation, ObservationFrame

#: Objects people bring to the cell (label, size [m], rgb).
CATALOGUE = (
    ("red cube", (0.05, 0.05, 0.05), (0.9, 0.1, 0.1)),
    ("green cube", (0.05, 0.05, 0.05), (0.1, 0.8, 0.1)),
    ("blue cylinder", (0.044, 0.044, 0.07), (0.1, 0.1, 0.9)),
    ("yellow block", (0.04, 0.08, 0.05), (0.9, 0.9, 0.1)),
    ("orange sphere", (0.05, 0.05, 0.05), (1.0, 0.5, 0.0)),
    ("purple prism", (0.05, 0.05, 0.05), (0.55, 0.2, 0.75)),
)
COVER = ("white box", (0.11, 0.11, 0.09), (0.95, 0.95, 0.95))
ACTIONS = ("move", "put_in", "take_out", "cover", "uncover", "add", "remove", "swap", "robot")
DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # optical z along world -z
SPOT_X, SPOT_Y = (-0.35, 0.35), (-0.32, 0.2)  # free table spots (not the bin)


@dataclass
class TruthObject:
    tid: int  # ground-truth id (not memory's)
    label: str
    size: tuple[float, float, float]
    rgb: tuple[float, float, float]
    position: np.ndarray
    inside: str | int | None = None  # "bin" or the cover's tid
    present: bool = True


@dataclass(frozen=True)
class TruthEvent:
    stamp: float
    day: int
    actor: str  # person | robot | system
    kind: str  # added removed moved put_in taken_out covered uncovered restart
    tid: int | None = None
    label: str = ""
    from_position: tuple[float, float, float] | None = None
    to_position: tuple[float, float, float] | None = None
    target: str | int | None = None  # the bin, or the cover's tid


@dataclass
class WeekConfig:
    seed: int = 0
    days: int = 5
    actions_per_day: int = 45
    day_length_s: float = 1000.0
    first_objects: int = 4  # on the table when the week starts
    noise_m: float = 0.003  # observation noise (centroid) [m]


@dataclass
class WeekLog:
    config: WeekConfig
    truth: list[TruthEvent] = field(default_factory=list)
    objects: dict[int, TruthObject] = field(default_factory=dict)
    restarts: list[float] = field(default_factory=list)  # stamps of memory's first update after
    sightings: dict[int, float] = field(default_factory=dict)  # tid -> last stamp in view
    end: float = 0.0  # the stamp of the week's last look


def render_top_view(stamp: float, boxes: list[tuple[np.ndarray, np.ndarray]],
                    table: tuple[np.ndarray, np.ndarray],
                    depth: np.ndarray | None = None) -> CameraView:  # fmt: skip
    """A camera 1.2 m above the table looking down; depth ray-cast from the
    boxes (or ``depth`` as given: one already rendered of the same boxes)."""
    h, w, focal = 120, 160, 110.0
    k = np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1.0]])
    view = CameraView("top", stamp, k, np.array([0.0, 0.0, 1.2]), DOWN, np.zeros((h, w)))
    if depth is not None:
        view.depth = depth
        return view
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u - k[0, 2]) / focal, (v - k[1, 2]) / focal, np.ones_like(u)], axis=-1)
    dirs = rays.reshape(-1, 3) @ view.rotation().T
    depth = np.full(len(dirs), np.inf)
    safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    for lo, hi in [table, *boxes]:
        t1, t2 = (lo - view.position) / safe, (hi - view.position) / safe
        near, far = np.minimum(t1, t2).max(axis=1), np.maximum(t1, t2).min(axis=1)
        hit = (near <= far) & (far > 0)
        depth = np.where(hit, np.minimum(depth, np.maximum(near, 0)), depth)
    view.depth = np.where(np.isfinite(depth), depth, 0.0).reshape(h, w).astype(np.float32)
    return view


class WeekWorld:
    """The true cell and what happens in it; :meth:`run` drives a memory
    through the week (``open_memory()`` makes one, again after each restart)."""

    def __init__(self, config: WeekConfig, cell: CellConfig | None = None) -> None:
        self.config, self.cell = config, cell or load_cell()
        self.rng = np.random.default_rng(config.seed)
        self.log = WeekLog(config)
        self.t = 0.0
        self._next_tid = 1
        self._rendered: tuple[bytes, np.ndarray] | None = None  # (boxes, their depth)

    # -- the true world ------------------------------------------------------------
    @property
    def objects(self) -> dict[int, TruthObject]:
        return self.log.objects

    def _present(self, where: str | None = "table", covered: bool = False) -> list[TruthObject]:
        out = []
        for o in self.objects.values():
            if not o.present or o.label == COVER[0]:
                continue
            if where == "table" and o.inside is not None and not isinstance(o.inside, int):
                continue  # in the bin
            if where == "bin" and o.inside != "bin":
                continue
            if not covered and isinstance(o.inside, int):
                continue
            out.append(o)
        return out

    def _cover(self) -> TruthObject | None:
        return next((o for o in self.objects.values() if o.label == COVER[0]), None)

    def _spot(self, size: tuple[float, float, float]) -> np.ndarray:
        taken = [o.position[:2] for o in self.objects.values() if o.present and o.inside is None]
        for _ in range(200):
            xy = np.array([self.rng.uniform(*SPOT_X), self.rng.uniform(*SPOT_Y)])
            if all(np.linalg.norm(xy - p) > 0.13 for p in taken):
                return np.array([*xy, size[2] / 2])
        raise RuntimeError("no free spot on the table")

    def _bin_spot(self, size: tuple[float, float, float]) -> np.ndarray | None:
        """A free spot in the bin (things in it lie side by side), or None: full."""
        place = self.cell.place("bin")
        lo, hi = place.bbox_min[:2] + 0.035, place.bbox_max[:2] - 0.035
        taken = [o.position[:2] for o in self.objects.values() if o.present and o.inside == "bin"]
        for _ in range(100):
            xy = self.rng.uniform(lo, hi)
            if all(np.linalg.norm(xy - p) > 0.065 for p in taken):
                return np.array([*xy, size[2] / 2])
        return None

    def _event(self, actor: str, kind: str, o: TruthObject | None, frm=None, to=None, target=None):
        day = int(self.t // self.config.day_length_s)
        as_tuple = lambda p: None if p is None else tuple(round(float(v), 4) for v in p)  # noqa: E731
        self.log.truth.append(TruthEvent(self.t, day, actor, kind, None if o is None else o.tid,
                                         "" if o is None else o.label, as_tuple(frm), as_tuple(to),
                                         target))  # fmt: skip

    def _add(self, label: str, size, rgb, actor: str = "person") -> TruthObject:
        o = TruthObject(self._next_tid, label, tuple(size), tuple(rgb), self._spot(size))
        self._next_tid += 1
        self.objects[o.tid] = o
        self._event(actor, "added", o, to=o.position)
        return o

    def _move_to(self, o: TruthObject, to: np.ndarray, actor: str, inside=None) -> None:
        frm = o.position.copy()
        was = o.inside
        o.position, o.inside = to, inside
        if was == "bin" and inside != "bin":
            self._event(actor, "taken_out", o, frm, to, "bin")
        if inside == "bin" and was != "bin":
            self._event(actor, "put_in", o, frm, to, "bin")
        self._event(actor, "moved", o, frm, to)

    # -- actions -------------------------------------------------------------------
    def act(self, kind: str) -> bool:
        """One action of ``kind`` if the cell allows it now; False if not."""
        table, in_bin = self._present("table"), self._present("bin")
        cover = self._cover()
        pick = lambda xs: xs[int(self.rng.integers(len(xs)))]  # noqa: E731
        if kind == "move" and table:
            o = pick(table)
            self._move_to(o, self._spot(o.size), "person")
        elif kind in ("put_in", "robot") and table:
            o = pick(table)
            spot = self._bin_spot(o.size)
            if spot is None:
                return False
            self._move_to(o, spot, "robot" if kind == "robot" else "person", "bin")
        elif kind == "take_out" and in_bin:
            o = pick(in_bin)
            self._move_to(o, self._spot(o.size), "person")
        elif kind == "cover" and table and cover is not None and cover.inside is None:
            if any(isinstance(o.inside, int) for o in self.objects.values()):
                return False  # the box already covers something
            o = pick(table)
            frm = cover.position.copy()
            cover.position = np.array([o.position[0], o.position[1], cover.size[2] / 2])
            o.inside = cover.tid
            self._event("person", "moved", cover, frm, cover.position)
            self._event("person", "covered", o, target=cover.tid)
        elif kind == "uncover" and cover is not None:
            hidden = [o for o in self.objects.values() if o.present and o.inside == cover.tid]
            if not hidden:
                return False
            for o in hidden:
                o.inside = None
                self._event("person", "uncovered", o, target=cover.tid)
            frm = cover.position.copy()
            cover.position = self._spot(cover.size)
            self._event("person", "moved", cover, frm, cover.position)
        elif kind == "add":
            here = {o.label for o in self.objects.values() if o.present}
            new = [c for c in CATALOGUE if c[0] not in here and c[0] not in self._gone_for_good()]
            if not new:
                return False
            self._add(*pick(new))
        elif kind == "remove" and len(table) > 2:
            o = pick(table)
            o.present = False
            self._event("person", "removed", o, frm=o.position)
        elif kind == "swap" and len(table) >= 2:
            a, b = (table[i] for i in self.rng.choice(len(table), 2, replace=False))
            pa, pb = a.position.copy(), b.position.copy()
            za, zb = a.size[2] / 2, b.size[2] / 2
            self._move_to(a, np.array([pb[0], pb[1], za]), "person")
            self._move_to(b, np.array([pa[0], pa[1], zb]), "person")
        else:
            return False
        return True

    def _gone_for_good(self) -> set[str]:
        """A removed object does not come back (a new one would be another object)."""
        return {o.label for o in self.objects.values() if not o.present}

    # -- what the robot sees ---------------------------------------------------------
    def look(self, stamp: float) -> ObservationFrame:
        table = (self.cell.table.bbox_min, self.cell.table.bbox_max)
        boxes, seen = [], []
        for o in self.objects.values():
            if not o.present:
                continue
            half = np.asarray(o.size) / 2
            boxes.append((o.position - half, o.position + half))
            if isinstance(o.inside, int):
                continue  # under the box: hidden
            c = o.position + self.rng.normal(0.0, self.config.noise_m, 3)
            lo, hi = c - half, c + half
            xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], 5), np.linspace(lo[1], hi[1], 5))
            top = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, hi[2])])
            color, shape = o.label.split()[0], o.label.split()[-1]
            seen.append(ObjectObservation(c, lo, hi, color, o.rgb, shape, o.label, 0.9, "top",
                                          stamp, top, len(top)))  # fmt: skip
            self.log.sightings[o.tid] = stamp
        key = b"".join(a.tobytes() + b.tobytes() for a, b in boxes)
        if self._rendered is None or self._rendered[0] != key:  # nothing moved: same depth
            self._rendered = (key, render_top_view(stamp, boxes, table).depth)
        view = render_top_view(stamp, [], table, depth=self._rendered[1])
        return ObservationFrame(view, seen)

    # -- the week ------------------------------------------------------------------
    def run(
        self, open_memory: Callable[[], SceneMemory], persist: bool = True, close: bool = True
    ) -> WeekLog:
        """The whole week; ``persist`` False: the restarted memory starts empty
        (the ablation without persistence). ``close`` False leaves the last
        day's memory open as :attr:`memory` (to ask it questions "now")."""
        cfg = self.config
        for label, size, rgb in CATALOGUE[: cfg.first_objects]:
            self._add(label, size, rgb)
        self._add(*COVER)
        memory = open_memory()
        step = cfg.day_length_s / (cfg.actions_per_day + 2)
        for day in range(cfg.days):
            if day > 0:
                memory.close()
                memory = open_memory() if persist else _fresh(open_memory)
                self.t = day * cfg.day_length_s
                self._event("system", "restart", None)
                self.log.restarts.append(self.t + 0.5)
            self.t = day * cfg.day_length_s + 0.5
            self._looks(memory)
            done = 0
            while done < cfg.actions_per_day:
                self.t = day * cfg.day_length_s + (done + 1) * step
                kind = ACTIONS[int(self.rng.integers(len(ACTIONS)))]
                start = self.t
                if not self.act(kind):
                    continue
                if kind == "robot":
                    tid = self.log.truth[-1].tid
                    memory.note_skill(SkillSpan("place", self._memory_id(memory, tid), "bin",
                                                start - 1.0, start + 1.0))  # fmt: skip
                done += 1
                self.t += 1.5
                self._looks(memory)
        self.log.end = self.t - 0.1  # the last look's last frame
        self.memory: SceneMemory | None = None
        if close:
            memory.close()
        else:
            self.memory = memory
        return self.log

    def _looks(self, memory: SceneMemory) -> None:
        for i in range(3):
            memory.update(self.look(self.t + 0.1 * i))
        self.t += 0.3

    def _memory_id(self, memory: SceneMemory, tid: int | None) -> int | None:
        """Memory's object for a true one: the same label, nearest to where it was."""
        if tid is None:
            return None
        truth = self.objects[tid]
        same = [o for o in memory.objects(include_absent=True) if o.label == truth.label]
        if not same:
            return None
        return min(same, key=lambda o: float(np.linalg.norm(o.centroid - truth.position))).id


def _fresh(open_memory: Callable[[], SceneMemory]) -> SceneMemory:
    memory = open_memory()
    memory.reset()
    return memory
