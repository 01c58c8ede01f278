"""The planner node's ``/planner/execute`` action server
(``robot_memory_interfaces/action/ExecuteInstruction``), apart from planning.

* **One instruction at a time**: a goal that arrives while one runs is refused
  by the goal callback (the node's ``refuse("busy", ...)`` counts and reports
  it), not queued and not pre-empting;
* **cancel** is accepted: for the running goal the :class:`CancelScope` is
  cancelled at once (the node's skill port cancels the running skill); a goal
  accepted but not started yet is cancelled as it starts;
* the execute callback runs the node's ``run(goal_handle)`` on an executor
  thread (a reentrant group: it blocks on memory answers and skill results
  that other threads deliver) and ends the goal: SUCCEEDED for ``succeeded``
  or ``answered``, CANCELED after a cancel request, ABORTED otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from robot_memory_interfaces.action import ExecuteInstruction

from robot_memory.nodes.planner_conversions import execute_result
from robot_memory.nodes.planner_ports import CancelScope
from robot_memory.planner.plan import Plan

ACTION_NAME = "/planner/execute"
#: run(goal_handle) -> (state, reason, last plan)
Run = Callable[[ServerGoalHandle], tuple[str, str, Plan | None]]


class InstructionServer:
    def __init__(
        self,
        node: Node,
        scope: CancelScope,
        run: Run,
        refuse: Callable[[str, str, str], None],
        crashed: Callable[[str], None],
    ) -> None:
        self.node, self.scope, self._run = node, scope, run
        self._refuse, self._crashed = refuse, crashed
        self._lock = threading.Lock()
        self._busy = False
        self.goal: ServerGoalHandle | None = None  # the running goal
        self._cancel_before_start: set[bytes] = set()
        self.server = ActionServer(
            node,
            ExecuteInstruction,
            ACTION_NAME,
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=ReentrantCallbackGroup(),
        )

    def start(self, goal_handle: ServerGoalHandle) -> bool:
        """``goal_handle`` is the running goal now; True if it was cancelled
        before it started (then the scope is cancelled too)."""
        key = bytes(goal_handle.goal_id.uuid)
        with self._lock:
            self.goal = goal_handle
            self.scope.reset()
            early = key in self._cancel_before_start
            self._cancel_before_start.discard(key)
        if early or goal_handle.is_cancel_requested:
            self.scope.cancel()
            return True
        return False

    def _on_goal(self, goal: ExecuteInstruction.Goal) -> GoalResponse:
        try:
            with self._lock:
                if not self._busy:
                    self._busy = True
                    return GoalResponse.ACCEPT
            refused = f"instruction refused while one runs: {goal.text[:200]!r}"
            self._refuse("busy", refused, goal.text)
        except Exception as exc:  # noqa: BLE001 - nothing on the wire ends the node
            self._crashed(f"goal: {exc!r}")
        return GoalResponse.REJECT

    def _on_cancel(self, goal_handle: ServerGoalHandle) -> CancelResponse:
        with self._lock:
            running = self.goal is not None and self.goal.goal_id == goal_handle.goal_id
            if not running:  # accepted, not started yet: it ends canceled at its start
                self._cancel_before_start.add(bytes(goal_handle.goal_id.uuid))
        self.node.get_logger().info("cancel requested: stopping the instruction and its skill")
        if running:
            self.scope.cancel()
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle: ServerGoalHandle) -> ExecuteInstruction.Result:
        state, reason, plan = "failed", "internal error", None
        try:
            state, reason, plan = self._run(goal_handle)
        except Exception as exc:  # noqa: BLE001 - one bad instruction must not end the node
            self._crashed(f"instruction crashed: {exc!r}")
        finally:
            with self._lock:
                self._busy, self.goal = False, None
        try:
            if goal_handle.is_cancel_requested and state == "canceled":
                goal_handle.canceled()
            elif state in ("succeeded", "answered"):
                goal_handle.succeed()
            else:
                goal_handle.abort()
        except Exception as exc:  # noqa: BLE001 - e.g. shutting down
            self.node.get_logger().warning(f"goal could not end {state}: {exc!r}")
        return execute_result(state, reason, plan)


__all__ = ["ACTION_NAME", "InstructionServer"]
