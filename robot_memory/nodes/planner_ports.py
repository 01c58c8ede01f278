"""The planner's memory and skill ports over ROS 2: a service client and an action client.

:class:`ServiceMemoryPort` and :class:`ActionSkillPort` implement
:class:`~robot_memory.planner.world.MemoryPort` and
:class:`~robot_memory.planner.world.SkillPort` for :class:`PlanExecutor`.
The executor calls them on the thread that runs the instruction (the action's
execute callback); they send requests and **wait on the futures there**,
while the node's other executor threads deliver the responses (the node spins
on a multi-threaded executor: see :mod:`robot_memory.nodes.planner_node`).
Waiting on a future from the thread that must deliver it would deadlock.

* memory: ``scene_graph()`` is the latest ``/memory/scene_graph`` (fed by the
  node; before the first one arrives, waited for up to ``query_timeout_s``);
  ``query()`` calls ``/memory/query`` (``QueryMemory``; the request and answer
  converted by :mod:`robot_memory.nodes.query_conversions`), resent while
  unanswered (1 s, then doubling up to 4 s: a request sent while memory
  restarts is lost), an answer with ``ok=False`` after ``query_timeout_s``
  without one; ``refresh()`` waits for a graph whose ``stamp`` is newer than
  the call; ``clear()`` calls ``/memory/reset`` (``std_srvs/Trigger``) and
  waits for the emptied graph (:class:`MemoryResetError` when memory refuses
  or does not answer).
* skills: ``run(goal)`` sends a ``RunSkill`` goal to ``/policy/run_skill``
  and waits for its result: succeeded, or failed with the policy's reason
  (``timeout`` after ``timeout_s``, when the goal is then cancelled).

Cancel: :class:`CancelScope` is the running instruction's cancel flag. Once
set, every port call raises :class:`InstructionCanceledError` (no further step,
no replan), and a skill goal that is running is cancelled on the policy
first (its result awaited up to ``cancel_timeout_s``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.action import ActionClient
from rclpy.client import Client
from rclpy.node import Node
from rclpy.task import Future
from std_srvs.srv import Trigger

from robot_memory.nodes.query_conversions import answer_from_response, query_to_request
from robot_memory.nodes.skill_conversions import skill_goal_to_msg
from robot_memory.planner.world import InstructionCanceledError, MemoryResetError, SkillOutcome
from robot_memory.schemas import MemoryAnswer, MemoryQuery, PolicyGoalMsg, SceneGraphMsg


class CancelScope:
    """One condition for every wait of the running instruction: futures
    completing and a cancel both wake it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.cancelled = False
        self._on_cancel: list[Callable[[], None]] = []

    def reset(self) -> None:
        """A new instruction: not cancelled."""
        with self.cond:
            self.cancelled = False

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            hooks = list(self._on_cancel)
            self.cond.notify_all()
        for hook in hooks:
            hook()

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` on every cancel (from the cancelling thread)."""
        self._on_cancel.append(hook)

    def notify(self, *_args: Any) -> None:
        with self.cond:
            self.cond.notify_all()

    def check(self) -> None:
        if self.cancelled:
            raise InstructionCanceledError("canceled")

    def wait_for(self, predicate: Callable[[], Any], timeout_s: float, cancellable: bool = True):
        """``predicate()`` once truthy, or its falsy value after ``timeout_s``;
        raises :class:`InstructionCanceledError` on a cancel when ``cancellable``."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                if cancellable and self.cancelled:
                    raise InstructionCanceledError("canceled")
                value = predicate()
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value
                self.cond.wait(min(left, 0.5))

    def wait_future(self, future: Future, timeout_s: float, cancellable: bool = True) -> bool:
        """True once ``future`` is done; False after ``timeout_s``."""
        future.add_done_callback(self.notify)
        return bool(self.wait_for(future.done, timeout_s, cancellable))


def wait_ready(is_ready: Callable[[], bool], scope: CancelScope, timeout_s: float) -> bool:
    """Poll a client's discovery (there is no future for it) every 50 ms."""
    deadline = time.monotonic() + timeout_s
    while not is_ready():
        scope.check()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class ServiceMemoryPort:
    QUERY_RESEND_S = 1.0  # first resend of an unanswered query; doubles up to 4 s

    def __init__(
        self,
        query_client: Client,
        reset_client: Client | None,
        now: Callable[[], float],
        scope: CancelScope,
        query_timeout_s: float = 5.0,
        refresh_timeout_s: float = 5.0,
    ) -> None:
        self.query_client, self.reset_client = query_client, reset_client
        self._now = now
        self.scope = scope
        self.query_timeout_s = query_timeout_s
        self.refresh_timeout_s = refresh_timeout_s
        self._graph: SceneGraphMsg | None = None
        self.counters: dict[str, int] = {
            "queries": 0, "query_timeouts": 0, "query_resends": 0, "refresh_timeouts": 0,
            "graph_timeouts": 0,
        }  # fmt: skip

    def on_scene_graph(self, graph: SceneGraphMsg) -> None:
        """The node's subscription hands every scene graph here."""
        with self.scope.cond:
            self._graph = graph
            self.scope.cond.notify_all()

    # -- MemoryPort (the instruction's thread) ---------------------------------------
    def scene_graph(self) -> SceneGraphMsg | None:
        """The latest graph. Before the first one (memory still starting, or
        restarted, or discovery slow on a loaded host) it is waited for, as
        long as a query would be (``query_timeout_s``); None after that."""
        with self.scope.cond:
            if self._graph is not None:
                return self._graph
        graph = self.scope.wait_for(lambda: self._graph, self.query_timeout_s)
        if graph is None:
            self.counters["graph_timeouts"] += 1
        return graph if isinstance(graph, SceneGraphMsg) else None

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        self.scope.check()
        self.counters["queries"] += 1
        client = self.query_client
        deadline = time.monotonic() + self.query_timeout_s
        if not wait_ready(client.service_is_ready, self.scope, self.query_timeout_s):
            return self._failed(query, "no /memory/query service")
        request = query_to_request(query)
        futures: list[Future] = []
        resend_s = self.QUERY_RESEND_S
        try:
            while True:
                # A query is a read: send it again while unanswered. A request
                # sent while memory restarts (the old server gone, the new one's
                # reader not matched yet) is lost without an error; resending
                # reaches the new server. The first answer wins.
                future = client.call_async(request)
                future.add_done_callback(self.scope.notify)
                futures.append(future)
                left = deadline - time.monotonic()
                done = self.scope.wait_for(
                    lambda: next((f for f in futures if f.done()), None), min(resend_s, left)
                )
                if done is not None:
                    return answer_from_response(done.result(), query)
                if time.monotonic() >= deadline:
                    return self._failed(query, "timeout: no answer from /memory/query")
                self.counters["query_resends"] += 1
                resend_s = min(2.0 * resend_s, 4.0)
        finally:
            for future in futures:
                if not future.done():
                    client.remove_pending_request(future)

    def _failed(self, query: MemoryQuery, error: str) -> MemoryAnswer:
        self.counters["query_timeouts"] += 1
        return MemoryAnswer(id=query.id, kind=query.kind, ok=False, error=error)

    def refresh(self) -> SceneGraphMsg | None:
        since = self._now()

        def fresh() -> SceneGraphMsg | None:
            g = self._graph
            return g if g is not None and g.stamp > since else None

        graph = self.scope.wait_for(fresh, self.refresh_timeout_s)
        if graph is None:
            self.counters["refresh_timeouts"] += 1
        return graph if isinstance(graph, SceneGraphMsg) else None

    def clear(self) -> None:
        """Ask memory to forget (``/memory/reset``) and wait for the emptied graph."""
        if self.reset_client is None:
            raise NotImplementedError("this memory port cannot clear memory")
        self.scope.check()
        with self.scope.cond:
            before = self._graph.seq if self._graph is not None else -1
        client = self.reset_client
        if not wait_ready(client.service_is_ready, self.scope, self.refresh_timeout_s):
            raise MemoryResetError("no /memory/reset service")
        future = client.call_async(Trigger.Request())
        if not self.scope.wait_future(future, self.refresh_timeout_s):
            client.remove_pending_request(future)
            raise MemoryResetError("timeout: no answer from /memory/reset")
        response = future.result()
        if not response.success:
            raise MemoryResetError(f"memory reset refused: {response.message}"[:300])
        self.scope.wait_for(
            lambda: (
                self._graph is not None and self._graph.seq > before and not self._graph.objects
            ),
            self.refresh_timeout_s,
        )


class ActionSkillPort:
    def __init__(
        self,
        client: ActionClient,
        scope: CancelScope,
        timeout_s: float = 60.0,
        server_timeout_s: float = 5.0,
        cancel_timeout_s: float = 2.0,
        on_feedback: Callable[[PolicyGoalMsg, str, int], None] | None = None,
    ) -> None:
        self.client = client
        self.scope = scope
        self.timeout_s = timeout_s
        self.server_timeout_s = server_timeout_s
        self.cancel_timeout_s = cancel_timeout_s
        self.on_feedback = on_feedback or (lambda goal, phase, chunks: None)
        self._lock = threading.Lock()
        self._handle: Any = None  # the running goal's ClientGoalHandle
        self.counters: dict[str, int] = {"skills": 0, "skill_timeouts": 0, "skills_cancelled": 0}
        scope.on_cancel(self.cancel_running)

    def cancel_running(self) -> None:
        """Cancel the running skill goal on the policy (any thread; returns at once)."""
        with self._lock:
            handle = self._handle
        if handle is not None:
            handle.cancel_goal_async()

    def run(self, goal: PolicyGoalMsg) -> SkillOutcome:
        """Run ``goal`` on the policy to its end: succeeded, or failed with the reason."""
        self.scope.check()
        self.counters["skills"] += 1
        if not wait_ready(self.client.server_is_ready, self.scope, self.server_timeout_s):
            return SkillOutcome("failed", "no /policy/run_skill server")

        def feedback(msg: Any) -> None:
            self.on_feedback(goal, msg.feedback.phase, int(msg.feedback.chunks))

        sent = self.client.send_goal_async(skill_goal_to_msg(goal), feedback_callback=feedback)
        if not self.scope.wait_future(sent, self.server_timeout_s, cancellable=False):
            return SkillOutcome("failed", "no answer to the skill goal")
        handle = sent.result()
        if handle is None or not handle.accepted:
            return SkillOutcome("failed", "skill goal rejected by the policy")
        with self._lock:
            self._handle = handle
        try:
            return self._wait_result(handle)
        finally:
            with self._lock:
                self._handle = None

    def _wait_result(self, handle: Any) -> SkillOutcome:
        result = handle.get_result_async()
        if self.scope.cancelled:  # cancelled while the goal was on its way
            handle.cancel_goal_async()
        try:
            done = self.scope.wait_future(result, self.timeout_s)
        except InstructionCanceledError:
            self.counters["skills_cancelled"] += 1
            self.scope.wait_future(result, self.cancel_timeout_s, cancellable=False)
            raise
        if not done:
            self.counters["skill_timeouts"] += 1
            handle.cancel_goal_async()
            return SkillOutcome("failed", "timeout")
        res = result.result().result
        if res.success:
            return SkillOutcome("succeeded", res.reason)
        reason = res.reason or res.state or "failed"
        return SkillOutcome("failed", reason if res.state != "canceled" else f"canceled: {reason}")


__all__ = [
    "ActionSkillPort",
    "CancelScope",
    "InstructionCanceledError",
    "MemoryResetError",
    "ServiceMemoryPort",
]


def planner_ports(
    node: Node,
    scope: CancelScope,
    p: dict,
    on_feedback: Callable[[PolicyGoalMsg, str, int], None],
) -> tuple[ServiceMemoryPort, ActionSkillPort]:
    """The planner node's two ports, made from its parameters ``p``."""
    from robot_memory_interfaces.action import RunSkill
    from robot_memory_interfaces.srv import QueryMemory

    memory = ServiceMemoryPort(
        node.create_client(QueryMemory, "/memory/query"),
        node.create_client(Trigger, "/memory/reset"),
        lambda: node.get_clock().now().nanoseconds * 1e-9,
        scope,
        query_timeout_s=float(p["query_timeout_s"]),
        refresh_timeout_s=float(p["refresh_timeout_s"]),
    )
    skills = ActionSkillPort(
        ActionClient(node, RunSkill, "/policy/run_skill"),
        scope,
        timeout_s=float(p["skill_timeout_s"]),
        on_feedback=on_feedback,
    )
    return memory, skills
