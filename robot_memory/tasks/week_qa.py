"""Questions about a simulated week, asked of the planner in-process (ROS-free).

:func:`run_seed` runs one seed's week (:mod:`robot_memory.tasks.week_world`)
and asks the offline planner the questions drawn from its ground truth
(:mod:`robot_memory.tasks.week_questions`), the same planner code the ROS node
runs, through a memory port. Conditions:

* ``full``: memory with its event log, persisted across the nightly restarts;
* ``latest_graph``: the same memory, but the planner sees only its latest scene
  graph, as ConceptGraphs or Hydra keep one (:class:`LatestGraphOnlyMemory`:
  the ``events`` query answered from the graph as it is now, no history);
* ``no_persistence``: the week run again with memory wiped at every restart;
* ``memoryless``: a memory of the current view only (the week's last look).

The questions are the same under every condition (drawn from the seed's truth).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from robot_memory.memory import SceneMemory
from robot_memory.memory.event_queries import event_kinds
from robot_memory.memory.events import COVER_WORDS, EventLog
from robot_memory.memory.query_targets import QueryError
from robot_memory.planner.offline_backend import OfflinePlanner
from robot_memory.planner.plan import PlanningError
from robot_memory.planner.time_words import CellClock
from robot_memory.planner.world import PlanningContext, World
from robot_memory.schemas import MemoryAnswer, MemoryQuery
from robot_memory.tasks.memory_port import SceneMemoryPort
from robot_memory.tasks.week_questions import WeekQuestion, check, make_questions
from robot_memory.tasks.week_truth import WeekTruth
from robot_memory.tasks.week_world import WeekConfig, WeekLog, WeekWorld

CONDITIONS = ("full", "latest_graph", "no_persistence", "memoryless")


class LatestGraphOnlyMemory(SceneMemoryPort):
    """The ablation without event memory: the planner may read the latest scene
    graph and nothing else. The ``events`` query is answered from that graph:
    each object ``appeared`` where it is now (at its first sighting), and its
    current ``in`` relation as a put-in or a cover; the history kinds are refused."""

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        if query.kind in ("history", "changed_since", "relation_history"):
            return MemoryAnswer(id=query.id, kind=query.kind, ok=False,
                                error="this memory keeps no history")  # fmt: skip
        if query.kind != "events":
            return super().query(query)
        if query.target.strip():
            return MemoryAnswer(id=query.id, kind="events", ok=False,
                                error="events: this memory has no target filter")  # fmt: skip
        graph = self.memory.snapshot()
        labels = {o.id: o.label for o in graph.objects}
        made: list[tuple[float, str, dict]] = []
        for o in graph.objects:
            if o.status != "absent":
                seen = {"object_id": o.id, "label": o.label, "to_position": tuple(o.centroid)}
                made.append((o.first_seen, "appeared", seen))
        for r in graph.relations:
            if r.relation != "in" or r.subject not in labels:
                continue
            cover = isinstance(r.target, int) and any(
                w in labels.get(r.target, "") for w in COVER_WORDS
            )
            what = {"object_id": r.subject, "label": labels[r.subject], "target": r.target}
            made.append((r.first_confirmed, "covered" if cover else "put_in", what))
        log = EventLog()  # the core's records and selection, over what the graph holds now
        for stamp, kind, fields in sorted(made, key=lambda m: m[0]):
            log.add(stamp, kind, **fields)
        try:
            kinds = event_kinds(query.text)
        except QueryError as err:
            return MemoryAnswer(id=query.id, kind="events", ok=False, error=str(err)[:300])
        rows = log.select(kinds, query.object_id, since=query.since, until=query.until)
        return MemoryAnswer(id=query.id, kind="events", ok=True,
                            results=[e.as_result() for e in rows])  # fmt: skip


@dataclass
class Asked:
    """One question and how it went."""

    seed: int
    condition: str
    kind: str
    wording: str
    question: str
    answer: str
    expected: str
    correct: bool
    latency_ms: float

    def as_row(self) -> dict:
        return dict(self.__dict__)


def run_week(config: WeekConfig, store: Path, persist: bool = True) -> tuple[WeekWorld, WeekLog]:
    """The week, memory left open at its end (``world.memory``)."""
    world = WeekWorld(config)
    log = world.run(lambda: SceneMemory(store_path=store), persist=persist, close=False)
    return world, log


def questions_for(
    log: WeekLog, per_kind: int, unseen_per_kind: int = 0
) -> tuple[float, list[WeekQuestion]]:
    now = log.end
    seed = log.config.seed
    return now, make_questions(WeekTruth(log), now, per_kind, seed, unseen_per_kind=unseen_per_kind)


def week_planner(config: WeekConfig) -> OfflinePlanner:
    """The offline planner with the week's days (one per run: its text model loads once)."""
    return OfflinePlanner(clock=CellClock(day_length_s=config.day_length_s))


def ask(
    questions: list[WeekQuestion], memory: SceneMemory, port: SceneMemoryPort,
    planner: OfflinePlanner, seed: int, condition: str,
) -> list[Asked]:  # fmt: skip
    out = []
    for q in questions:
        start = time.perf_counter()
        try:
            world = World(memory.snapshot())
            plan = planner.plan(PlanningContext(q.text, world, port))
            answer, position = plan.answer or f"(a {plan.kind} plan)", plan.answer_position
        except PlanningError as err:
            answer, position = f"rejected: {err.reason}: {err.detail}", None
        ms = (time.perf_counter() - start) * 1e3
        ok, expected = check(q, answer, position) if not answer.startswith("rejected") else (
            False, check(q, "", None)[1])  # fmt: skip
        out.append(Asked(seed, condition, q.kind, q.wording, q.text, answer, expected, ok, ms))
    return out


@dataclass
class WeekStats:
    """What one seed's week was."""

    seed: int
    truth_events: int
    memory_events: int
    objects: int
    store_bytes: int
    days: int
    week_s: float

    def as_row(self) -> dict:
        return dict(self.__dict__)


def run_seed(
    seed: int, config: WeekConfig, workdir: Path, per_kind: int,
    conditions: tuple[str, ...] = CONDITIONS, planner: OfflinePlanner | None = None,
    unseen_per_kind: int = 0,
) -> tuple[WeekStats, list[Asked]]:  # fmt: skip
    """One seed: its week (run again, wiped at each restart, only for
    ``no_persistence``), the questions of its truth, and the planner's answers
    under each condition."""
    planner = planner or week_planner(config)
    store = workdir / f"week_{seed}_{uuid.uuid4().hex[:6]}.sqlite"
    start = time.perf_counter()
    world, log = run_week(config, store)
    week_s = time.perf_counter() - start
    memory = world.memory
    assert memory is not None
    rows: list[Asked] = []
    try:
        now, questions = questions_for(log, per_kind, unseen_per_kind)
        stats = WeekStats(seed, sum(e.kind != "restart" for e in log.truth),
                          len(memory.events().entries), len(memory.objects(include_absent=True)),
                          store.stat().st_size, config.days, week_s)  # fmt: skip
        for condition in ("full", "latest_graph"):
            if condition in conditions:
                port = SceneMemoryPort(memory) if condition == "full" else LatestGraphOnlyMemory(
                    memory
                )  # fmt: skip
                rows += ask(questions, memory, port, planner, seed, condition)
        if "memoryless" in conditions:
            view = SceneMemory()  # what the robot sees now, nothing before
            for i in range(3):
                view.update(world.look(now - 0.2 + 0.1 * i))
            rows += ask(questions, view, SceneMemoryPort(view), planner, seed, "memoryless")
            view.close()
    finally:
        memory.close()
    if "no_persistence" in conditions:
        wiped = workdir / f"week_{seed}_wiped_{uuid.uuid4().hex[:6]}.sqlite"
        world, _ = run_week(config, wiped, persist=False)
        assert world.memory is not None
        try:
            rows += ask(questions, world.memory, SceneMemoryPort(world.memory), planner, seed,
                        "no_persistence")  # fmt: skip
        finally:
            world.memory.close()
    return stats, rows
