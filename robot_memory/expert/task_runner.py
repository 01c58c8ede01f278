"""The scripted expert's task, step by step, ROS-free: plan a pick-and-place
from ground truth, send each move, wait until the arm arrives (or the gripper
settles), then check the result in ground truth.

:class:`ExpertTaskRunner` has no clock and no I/O: the expert node calls
``tick(now, q, truth)`` with the latest measured arm joints and ground truth,
and the runner sends moves and statuses through its :class:`ExpertSink`.
A task that names an unknown id, cannot be reached, or whose arm does not
arrive ends ``failed`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from robot_memory.expert.pick_place import ArmMove, PickPlacePlanner, Step, place_point_for
from robot_memory.robot.ik import IKError
from robot_memory.schemas import ExpertStatus, ExpertTask, GroundTruth

ARRIVAL_TOLERANCE_RAD = 0.03
ARM_TIMEOUT_MARGIN_S = 3.0
VERIFY_TIMEOUT_S = 2.0


class ExpertSink(Protocol):
    def send(self, step: Step) -> None:
        """Command ``step`` (an arm move or a gripper width)."""

    def status(self, status: ExpertStatus) -> None:
        """The task's progress or outcome changed."""

    def finished(self, ok: bool, status: ExpertStatus) -> None:
        """The task ended (``status.reason`` says why it failed)."""


class ExpertTaskRunner:
    def __init__(
        self,
        planner_for: Callable[[str], PickPlacePlanner],
        sink: ExpertSink,
        task: ExpertTask | None = None,
        not_before: float = 0.0,
    ) -> None:
        """``planner_for(scene)``: the pick-and-place planner for a scene name
        (made once, on the first task)."""
        self._planner_for, self.sink = planner_for, sink
        self.planner: PickPlacePlanner | None = None
        self.task, self.not_before = task, not_before
        self.steps: list[Step] = []
        self.step_index = 0
        self.step_started = 0.0
        self.verify_started: float | None = None
        self.status = ExpertStatus(state="idle")

    @property
    def running(self) -> bool:
        return self.status.state == "running"

    def start(self, task: ExpertTask, now: float) -> None:
        """Run ``task`` from the next ground truth newer than ``now``."""
        self.task, self.steps = task, []
        self.not_before = now + 0.1

    def tick(self, now: float, q: np.ndarray | None, truth: GroundTruth | None) -> None:
        if self.task is None or q is None or truth is None or now < self.not_before:
            return
        if not self.steps and truth.stamp < self.not_before:
            return  # wait for ground truth of the current episode
        if not self.steps and self.verify_started is None:
            self._start_task(now, q, truth)
        elif self.step_index < len(self.steps):
            self._advance(now, q)
        else:
            self._verify(now, truth)

    def finish(self, ok: bool, reason: str) -> None:
        task = self.task
        self.status = ExpertStatus(
            state="succeeded" if ok else "failed",
            object_id=task.object_id if task else "",
            place_id=task.place_id if task else "",
            phase="done",
            progress=1.0,
            reason=reason,
        )
        self.steps, self.verify_started, self.task = [], None, None
        self.sink.finished(ok, self.status)

    def _start_task(self, now: float, q: np.ndarray, truth: GroundTruth) -> None:
        task = self.task
        assert task is not None
        try:
            obj, place = truth.get(task.object_id), truth.get(task.place_id)
        except KeyError as err:
            return self.finish(False, f"unknown id {err} in the scene")
        if self.planner is None:
            self.planner = self._planner_for(truth.scene)
        try:
            self.steps = self.planner.plan(q, obj, place_point_for(place))
        except IKError as err:
            return self.finish(False, f"unreachable: {err}")
        self.step_index, self.verify_started = 0, None
        self.status = ExpertStatus(
            state="running", object_id=task.object_id, place_id=task.place_id
        )
        self._send(now)

    def _send(self, now: float) -> None:
        step = self.steps[self.step_index]
        self.step_started = now
        self.sink.send(step)
        progress = self.step_index / len(self.steps)
        self.status = self.status.model_copy(update={"phase": step.phase, "progress": progress})
        self.sink.status(self.status)

    def _advance(self, now: float, q: np.ndarray) -> None:
        step, elapsed = self.steps[self.step_index], now - self.step_started
        if isinstance(step, ArmMove):
            error = float(np.max(np.abs(q - step.final)))
            if elapsed < step.duration or error > ARRIVAL_TOLERANCE_RAD:
                if elapsed > step.duration + ARM_TIMEOUT_MARGIN_S:
                    self.finish(False, f"arm did not reach the {step.phase} pose ({error:.3f} rad)")
                return
        elif elapsed < step.settle_s:
            return
        self.step_index += 1
        if self.step_index < len(self.steps):
            self._send(now)
        else:
            self.verify_started = now

    def _verify(self, now: float, truth: GroundTruth) -> None:
        assert self.task is not None and self.verify_started is not None
        obj = truth.get(self.task.object_id)
        if obj.support == self.task.place_id:
            return self.finish(True, "")
        if now - self.verify_started > VERIFY_TIMEOUT_S:
            self.finish(False, f"{obj.id} is not in {self.task.place_id} (on {obj.support})")


__all__ = ["ExpertSink", "ExpertTaskRunner"]
