"""``robot-memory say "put the red cube in the bin"``: give a running planner one
instruction and follow it to the end.

The pip-only world has no ``ros2 action send_goal``; this is its stand-in for
the planner's ``/planner/execute`` action (``ExecuteInstruction``): it waits
for the action server, sends the goal, prints every plan (and replan) the
feedback carries, shows the feedback as a progress bar (state, step), and
prints the answer or the result. **Ctrl-C cancels the goal**: the planner
cancels the running skill (the arm holds) and takes no further step; ``say``
waits for the cancel response and the goal's end, then exits 130.

Exit codes: 0 done (``succeeded`` or ``answered``), 1 ``failed``, ``rejected``
(also a goal refused because another instruction runs) or ``canceled`` by
someone else, 2 no planner server or no result within ``--timeout``, 130
cancelled with Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any
from uuid import uuid4

import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future
from robot_memory_interfaces.action import ExecuteInstruction
from tqdm import tqdm
from unique_identifier_msgs.msg import UUID

from robot_memory.nodes.planner_conversions import plan_from_msg
from robot_memory.planner.plan import Plan
from robot_memory.schemas import PayloadError

#: First resend of an unanswered goal request [s] (see :func:`send_goal`).
RESEND_S = 2.0
#: Longest wait for the cancel response and the canceled result after Ctrl-C.
CANCEL_WAIT_S = 10.0
ACTION = "/planner/execute"


class InstructionClient(Node):
    """The ``say`` node: an ExecuteInstruction client, spun by :meth:`spin_until`."""

    def __init__(self) -> None:
        super().__init__("say")
        self.client = ActionClient(self, ExecuteInstruction, ACTION)
        self.executor_ = SingleThreadedExecutor(context=self.context)
        self.executor_.add_node(self)
        self.interrupted = threading.Event()  # set by SIGINT

    def spin_until(self, predicate: Any, deadline: float, interruptible: bool = True) -> bool:
        """Spin until ``predicate()`` (True), the monotonic ``deadline`` or a
        Ctrl-C when ``interruptible`` (False)."""
        while not predicate():
            if time.monotonic() > deadline or (interruptible and self.interrupted.is_set()):
                return False
            self.executor_.spin_once(timeout_sec=0.05)
        return True


def print_plan(plan: Plan) -> None:
    what = "replan" if plan.attempt else "plan"
    tqdm.write(f"[say] {what} {plan.id[:8]} (attempt {plan.attempt}, {plan.backend}):")
    if plan.kind == "answer":
        tqdm.write(f"    {plan.answer}")
    for i, step in enumerate(plan.steps):
        tqdm.write(f"    {i + 1}. {step.describe():28s} {step.why}")


class Progress:
    """The feedback as a progress bar, each new plan printed once."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.shown: set[tuple[str, int]] = set()

    def plan(self, msg: Any) -> None:
        if not msg.id or (msg.id, msg.attempt) in self.shown:
            return
        self.shown.add((msg.id, msg.attempt))
        try:
            print_plan(plan_from_msg(msg))
        except PayloadError as err:
            tqdm.write(f"[say] unreadable plan: {err}")

    def feedback(self, msg: Any) -> None:
        fb = msg.feedback
        self.plan(fb.plan)
        step = f" {min(fb.step + 1, fb.n_steps)}/{fb.n_steps}" if fb.n_steps else ""
        self.bar.set_description_str(f"{fb.state}{step}")
        self.bar.n = round(100 * min(max(fb.progress, 0.0), 1.0))
        self.bar.set_postfix_str(fb.message[:60])
        self.bar.refresh()


def say(client: InstructionClient, text: str, memoryless: bool, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    if not client.spin_until(client.client.server_is_ready, deadline):
        if client.interrupted.is_set():
            return 130
        print(f"[say] no planner serves {ACTION} (start one: robot-memory launch sim)")
        return 2
    with tqdm(total=100, desc="sent", unit="%") as bar:
        progress = Progress(bar)
        goal = ExecuteInstruction.Goal(text=text, memoryless=memoryless)
        handle = send_goal(client, goal, progress, deadline)
        if handle is None:
            print(f"[say] the planner did not answer the goal within {timeout_s:.0f} s")
            return 2
        if not handle.accepted:
            tqdm.write("[say] rejected: the planner is busy with another instruction")
            return 1
        result: Future = handle.get_result_async()
        done = client.spin_until(result.done, deadline)
        if client.interrupted.is_set() and not done:
            return cancel(client, handle, result)
    if not done:
        print(f"[say] no result within {timeout_s:.0f} s")
        return 2
    return report(result.result().result, progress)


def send_goal(
    client: InstructionClient, goal: Any, progress: Progress, deadline: float
) -> Any | None:
    """The goal's handle once the planner answers, None at the deadline.

    A goal request can be lost without an error while DDS discovery between
    this new process and the planner is still one-sided (seen on a loaded
    host: the client sees the server, the server's reader has not matched the
    client's writer yet). Unanswered, the request is sent again with the
    **same goal id** (after 2 s, then doubling up to 8 s): the server executes
    a goal id once and refuses a repeat, so the first acceptance is the answer."""
    uuid = UUID(uuid=list(uuid4().bytes))
    sent: list[Future] = []
    resend_s, next_send = RESEND_S, time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            sent.append(client.client.send_goal_async(goal, progress.feedback, goal_uuid=uuid))
            next_send, resend_s = time.monotonic() + resend_s, min(2 * resend_s, 8.0)
        answered = [f.result() for f in sent if f.done() and f.result() is not None]
        if any(h.accepted for h in answered):
            return next(h for h in answered if h.accepted)
        if answered and (len(answered) == len(sent) or time.monotonic() >= next_send):
            return answered[0]  # refused (the first answer, and none accepted since)
        done = sum(f.done() for f in sent)
        until = min(next_send, deadline)
        client.spin_until(
            lambda n=done: sum(f.done() for f in sent) > n, until, interruptible=False
        )
    return None


def cancel(client: InstructionClient, handle: Any, result: Future) -> int:
    """Ctrl-C: cancel the goal, wait for the response and the goal's end."""
    tqdm.write("[say] Ctrl-C: cancelling the instruction")
    asked = handle.cancel_goal_async()
    deadline = time.monotonic() + CANCEL_WAIT_S
    if not client.spin_until(asked.done, deadline, interruptible=False):
        print("[say] no answer to the cancel request")
        return 130
    if not asked.result().goals_canceling:
        print("[say] the planner refused the cancel (the instruction may have ended)")
    if client.spin_until(result.done, deadline, interruptible=False):
        res = result.result().result
        print(f"[say] {res.state}: {res.reason}".rstrip(": "))
    return 130


def report(res: Any, progress: Progress) -> int:
    progress.plan(res.plan)
    detail = res.answer if res.state == "answered" else res.reason
    if res.state == "succeeded" and not detail:
        detail = "done"
    print(f"[say] {res.state}: {detail}")
    return 0 if res.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="robot-memory say",
        description=f"send one instruction to the running planner ({ACTION}); Ctrl-C cancels it",
    )
    parser.add_argument("text", nargs="+", help="the instruction, e.g. put the red cube in the bin")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after S seconds")
    parser.add_argument(
        "--memoryless", action="store_true", help="ablation: memory cleared before each step"
    )
    args = parser.parse_args(argv)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    client = InstructionClient()
    signal.signal(signal.SIGINT, lambda *_: client.interrupted.set())
    try:
        return say(client, " ".join(args.text), args.memoryless, args.timeout)
    finally:
        client.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
