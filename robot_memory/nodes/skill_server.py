"""The policy node's ``/policy/run_skill`` action server
(``robot_memory_interfaces/action/RunSkill``), apart from the skills themselves.

Every goal is accepted; its execute callback then

1. converts it (:func:`~robot_memory.nodes.skill_conversions.skill_goal_from_msg`,
   the goal's UUID in hex as its id) and asks the node to ``start`` it. A goal
   that does not convert or that the node refuses (``PayloadError``,
   ``GroundingError``: unknown object, target out of the workspace, unknown
   skill, e-stop, no robot state, ...) ends at once: result
   ``success=false, state="rejected", reason``, goal status ABORTED; the node's
   ``reject`` hook counts it. Nothing is executed;
2. waits on the goal's :class:`GoalRun` event (``Event.wait`` in short slices:
   the execute callbacks run on the node's ``MultiThreadedExecutor`` pool,
   never on the thread of the node's timers and subscriptions) until the node
   ``finish``-es it from its control loop, its inference worker or a cancel;
3. answers with the result: ``succeeded`` (SUCCEEDED), ``failed`` (ABORTED),
   ``canceled`` after a cancel request (CANCELED) or ``canceled`` with reason
   ``preempted`` when a newer goal replaced it (ABORTED: a goal can only be
   CANCELED after a cancel request).

A cancel request for a running goal is accepted: the node's ``cancel`` hook
stops the skill at once (from the action server's callback, under the node's
lock). Feedback (``phase``, ``chunks``) is published by :meth:`GoalRun.feedback`
whenever either changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from robot_memory_interfaces.action import RunSkill

from robot_memory.nodes.skill_conversions import (
    CANCELED,
    FAILED,
    REJECTED,
    SUCCEEDED,
    skill_goal_from_msg,
    skill_result,
)
from robot_memory.policy.goal_grounding import GroundingError
from robot_memory.schemas import PayloadError, PolicyGoalMsg

ACTION_NAME = "/policy/run_skill"
WAIT_SLICE_S = 0.1  # an execute callback checks for shutdown this often
CANCEL_STATE_WAIT_S = 1.0  # longest wait for the server's CANCELING transition


@dataclass(eq=False)
class GoalRun:
    """One RunSkill goal from its execute callback to its result."""

    handle: ServerGoalHandle
    goal_id: str
    skill: str = ""
    cancel_requested: bool = False
    state: str = ""
    reason: str = ""
    chunks: int = 0
    phase: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, state: str, reason: str, chunks: int | None = None) -> None:
        """End the goal (the first call wins)."""
        if self.done.is_set():
            return
        self.state, self.reason = state, reason
        if chunks is not None:
            self.chunks = chunks
        self.done.set()

    def feedback(self, phase: str, chunks: int) -> None:
        """Publish feedback when the phase or the chunk count changed."""
        if self.done.is_set() or (phase, chunks) == (self.phase, self.chunks):
            return
        self.phase, self.chunks = phase, chunks
        self.handle.publish_feedback(RunSkill.Feedback(phase=phase, chunks=chunks))


class SkillServer:
    """``/policy/run_skill`` for ``node``: ``start(run, goal)`` starts a goal or
    raises (GroundingError / PayloadError: rejected), ``cancel(run)`` stops a
    running one, ``reject(run, error)`` counts and reports a refusal."""

    def __init__(
        self,
        node: Node,
        start: Callable[[GoalRun, PolicyGoalMsg], None],
        cancel: Callable[[GoalRun], None],
        reject: Callable[[GoalRun, Exception], None],
        callback_group: CallbackGroup | None = None,
    ) -> None:
        self._node, self._start, self._cancel, self._reject = node, start, cancel, reject
        self._runs: dict[bytes, GoalRun] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self.server = ActionServer(
            node,
            RunSkill,
            ACTION_NAME,
            execute_callback=self._execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=self._on_cancel,
            callback_group=callback_group,
        )

    def _execute(self, handle: ServerGoalHandle) -> RunSkill.Result:
        run = GoalRun(handle, bytes(handle.goal_id.uuid).hex())
        with self._lock:
            self._runs[bytes(handle.goal_id.uuid)] = run
            run.cancel_requested = run.cancel_requested or handle.is_cancel_requested
        try:
            self._begin(run)
            while not run.done.wait(WAIT_SLICE_S):
                if self._stopping:
                    run.finish(FAILED, "the policy node is shutting down")
            self._end(run)
        finally:
            with self._lock:
                self._runs.pop(bytes(handle.goal_id.uuid), None)
        return skill_result(run.state, run.reason, run.chunks)

    def _begin(self, run: GoalRun) -> None:
        try:
            goal = skill_goal_from_msg(run.handle.request, run.goal_id)
            run.skill = goal.skill
            if run.cancel_requested:
                run.finish(CANCELED, "canceled before it started")
                return
            self._start(run, goal)
        except (PayloadError, GroundingError) as err:
            run.finish(REJECTED, str(err))
            self._reject(run, err)
        except Exception as exc:  # noqa: BLE001 - no goal ends the node
            run.finish(REJECTED, f"internal error: {exc!r}"[:300])
            self._reject(run, exc)

    def _end(self, run: GoalRun) -> None:
        """Move the goal handle to the terminal state matching ``run.state``."""
        handle = run.handle
        if run.state == SUCCEEDED:
            handle.succeed()
            return
        if run.state == CANCELED and run.cancel_requested:
            # the server moves the goal to CANCELING right after our cancel callback
            deadline = time.monotonic() + CANCEL_STATE_WAIT_S
            while not handle.is_cancel_requested and time.monotonic() < deadline:
                time.sleep(0.001)
            if handle.is_cancel_requested:
                handle.canceled()
                return
        handle.abort()

    def _on_cancel(self, handle: ServerGoalHandle) -> CancelResponse:
        with self._lock:
            run = self._runs.get(bytes(handle.goal_id.uuid))
            if run is not None and run.done.is_set():
                return CancelResponse.REJECT  # already over
            if run is not None:
                run.cancel_requested = True
        if run is not None:
            self._cancel(run)
        return CancelResponse.ACCEPT

    def stop(self, timeout_s: float = 0.5) -> None:
        """Shutting down: every waiting goal ends failed; wait up to
        ``timeout_s`` for their execute callbacks to answer (before the node
        and its action server are destroyed)."""
        self._stopping = True
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.finish(FAILED, "the policy node is shutting down")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._runs:
                    return
            time.sleep(0.01)


__all__ = ["ACTION_NAME", "GoalRun", "SkillServer"]
