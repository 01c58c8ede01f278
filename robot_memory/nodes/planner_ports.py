"""The planner's memory and skill ports over topics (rclpy-free: the node wires them).

:class:`RosMemoryPort` and :class:`RosSkillPort` implement
:class:`~robot_memory.planner.world.MemoryPort` and
:class:`~robot_memory.planner.world.SkillPort` for :class:`PlanExecutor`,
which runs on the planner node's worker thread. They never touch rclpy
themselves: the node hands them a ``publish`` function and a clock, and feeds
them what its subscriptions receive (``on_*``, on the executor thread). The
worker blocks on a :class:`threading.Condition` until the matching message
arrives or the timeout passes; :meth:`cancel` (node shutdown) wakes it at once.

* memory: ``scene_graph()`` is the latest ``/memory/scene_graph``; ``query()``
  publishes a ``MemoryQuery`` with a unique id and waits for the
  ``/memory/answer`` that echoes it; ``refresh()`` waits for a graph whose
  ``stamp`` (the newest observation folded in, node time: sim time under
  ``use_sim_time``) is newer than the call; ``clear()`` publishes on
  ``/memory/reset`` and waits for the emptied graph.
* skills: ``run(goal)`` publishes the goal and waits for the ``/policy/status``
  with ``goal_id == goal.id`` in ``succeeded`` / ``failed``; silence for
  ``timeout_s`` is a failure ("timeout").
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from robot_memory.planner.world import SkillOutcome
from robot_memory.schemas import (
    MemoryAnswer,
    MemoryQuery,
    PolicyGoalMsg,
    PolicyStatusMsg,
    SceneGraphMsg,
    dump_payload,
)

Publish = Callable[[str], None]


class _Waiter:
    """A condition the worker waits on; ``cancel`` ends every wait (shutdown)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.cancelled = False

    def wait_for(self, predicate: Callable[[], object], timeout_s: float) -> object:
        """``predicate()``'s value once truthy (lock held), or a falsy one after
        ``timeout_s`` (wall clock) or a cancel."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                value = predicate()
                left = deadline - time.monotonic()
                if value or self.cancelled or left <= 0:
                    return value
                self.cond.wait(min(left, 0.5))

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()


class RosMemoryPort:
    def __init__(
        self,
        publish_query: Publish,
        publish_reset: Publish | None,
        now: Callable[[], float],
        query_timeout_s: float = 5.0,
        refresh_timeout_s: float = 5.0,
    ) -> None:
        self._publish_query = publish_query
        self._publish_reset = publish_reset
        self._now = now
        self.query_timeout_s = query_timeout_s
        self.refresh_timeout_s = refresh_timeout_s
        self._w = _Waiter()
        self._graph: SceneGraphMsg | None = None
        self._answers: dict[str, MemoryAnswer] = {}
        self._pending: set[str] = set()
        self.counters: dict[str, int] = {"queries": 0, "query_timeouts": 0, "refresh_timeouts": 0}

    # -- fed by the node (executor thread) ---------------------------------------
    def on_scene_graph(self, graph: SceneGraphMsg) -> None:
        with self._w.cond:
            self._graph = graph
            self._w.cond.notify_all()

    def on_answer(self, answer: MemoryAnswer) -> None:
        with self._w.cond:
            if answer.id in self._pending:  # answers to other askers are not ours
                self._answers[answer.id] = answer
                self._w.cond.notify_all()

    def cancel(self) -> None:
        self._w.cancel()

    # -- MemoryPort (worker thread) ------------------------------------------------
    def scene_graph(self) -> SceneGraphMsg | None:
        with self._w.cond:
            return self._graph

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        qid = f"{query.id[:90]}-{uuid.uuid4().hex[:8]}"
        with self._w.cond:
            self._pending.add(qid)
        self.counters["queries"] += 1
        self._publish_query(dump_payload(query.model_copy(update={"id": qid})))
        answer = self._w.wait_for(lambda: self._answers.get(qid), self.query_timeout_s)
        with self._w.cond:
            self._pending.discard(qid)
            self._answers.pop(qid, None)
        if not isinstance(answer, MemoryAnswer):
            self.counters["query_timeouts"] += 1
            return MemoryAnswer(
                id=query.id, kind=query.kind, ok=False, error="timeout: no /memory/answer"
            )
        return answer.model_copy(update={"id": query.id})

    def refresh(self) -> SceneGraphMsg | None:
        since = self._now()

        def fresh() -> SceneGraphMsg | None:
            g = self._graph
            return g if g is not None and g.stamp > since else None

        graph = self._w.wait_for(fresh, self.refresh_timeout_s)
        if graph is None:
            self.counters["refresh_timeouts"] += 1
        return graph if isinstance(graph, SceneGraphMsg) else None

    def clear(self) -> None:
        """Ask memory to forget (``/memory/reset``) and wait for the emptied graph."""
        if self._publish_reset is None:
            raise NotImplementedError("this memory port cannot clear memory")
        with self._w.cond:
            before = self._graph.seq if self._graph is not None else -1
        self._publish_reset("")
        self._w.wait_for(
            lambda: (
                self._graph is not None and self._graph.seq > before and not self._graph.objects
            ),
            self.refresh_timeout_s,
        )


class RosSkillPort:
    def __init__(self, publish_goal: Publish, timeout_s: float = 60.0) -> None:
        self._publish_goal = publish_goal
        self.timeout_s = timeout_s
        self._w = _Waiter()
        self._final: dict[str, PolicyStatusMsg] = {}
        self._goal_id = ""

    def on_status(self, status: PolicyStatusMsg) -> None:
        with self._w.cond:
            if status.goal_id != self._goal_id:
                return
            if status.state in ("succeeded", "failed"):
                self._final[status.goal_id] = status
            self._w.cond.notify_all()

    def cancel(self) -> None:
        self._w.cancel()

    def run(self, goal: PolicyGoalMsg) -> SkillOutcome:
        """Publish ``goal``; its final status, or failed "timeout" after
        ``timeout_s`` without one (or "cancelled" on shutdown)."""
        with self._w.cond:
            self._goal_id = goal.id
            self._final.pop(goal.id, None)
        self._publish_goal(dump_payload(goal))
        status = self._w.wait_for(lambda: self._final.get(goal.id), self.timeout_s)
        with self._w.cond:
            self._goal_id = ""
        if isinstance(status, PolicyStatusMsg):
            return SkillOutcome(status.state, status.reason)
        if self._w.cancelled:
            return SkillOutcome("failed", "cancelled")
        return SkillOutcome("failed", "timeout")


__all__ = ["RosMemoryPort", "RosSkillPort"]
