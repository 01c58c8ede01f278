"""``robot-memory say "put the red cube in the bin"``: give a running planner one
instruction and follow it to the end.

The pip-only world has no ``ros2 topic pub``; this is its stand-in for the
planner: it waits for a planner to listen on ``/planner/instruction``, sends
the instruction (JSON ``InstructionMsg``), prints every plan (and replan) as it
comes, shows ``/planner/status`` as a progress bar, and prints the answer or
the reason it failed.

Exit codes: 0 done (``succeeded`` or ``answered``), 1 ``failed`` or
``rejected``, 2 no planner found or no final status within ``--timeout``.
"""

from __future__ import annotations

import argparse
import time

import rclpy
from rclpy.node import Node
from std_msgs.msg import String
from tqdm import tqdm

from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.planner_node import STATUS_QOS
from robot_memory.nodes.qos import COMMAND
from robot_memory.planner.plan import TERMINAL_STATES, InstructionMsg, Plan, PlannerStatusMsg
from robot_memory.schemas import PayloadError, parse_payload

#: Time for the latched plan/status history of earlier instructions to arrive
#: before ours goes out (they are not ours: only what comes after counts).
SETTLE_S = 1.0


class InstructionClient(Node):
    def __init__(self) -> None:
        super().__init__("say")
        self.plans: list[Plan] = []
        self.statuses: list[PlannerStatusMsg] = []
        self.publisher = self.create_publisher(String, "/planner/instruction", COMMAND)
        self.inputs = InputBoundary(self)  # a bad message is logged, never the end of say
        self.inputs.subscribe(String, "/planner/plan", self._on_plan, STATUS_QOS)
        self.inputs.subscribe(String, "/planner/status", self._on_status, STATUS_QOS)

    def _on_plan(self, msg: String) -> None:
        try:
            self.plans.append(parse_payload(Plan, msg.data))
        except PayloadError as err:
            self.get_logger().warning(f"unreadable plan: {err}")

    def _on_status(self, msg: String) -> None:
        try:
            self.statuses.append(parse_payload(PlannerStatusMsg, msg.data))
        except PayloadError as err:
            self.get_logger().warning(f"unreadable status: {err}")

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.05)


def print_plan(plan: Plan) -> None:
    what = "replan" if plan.attempt else "plan"
    tqdm.write(f"[say] {what} {plan.id[:8]} (attempt {plan.attempt}, {plan.backend}):")
    if plan.kind == "answer":
        tqdm.write(f"    {plan.answer}")
    for i, step in enumerate(plan.steps):
        tqdm.write(f"    {i + 1}. {step.describe():28s} {step.why}")


def say(client: InstructionClient, text: str, memoryless: bool, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while client.publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print("[say] no planner is listening on /planner/instruction (start one: "
                  "robot-memory launch sim)")  # fmt: skip
            return 2
        client.spin_for(0.1)
    client.spin_for(SETTLE_S)
    n_plans, n_statuses = len(client.plans), len(client.statuses)
    msg = InstructionMsg(text=text, memoryless=memoryless)
    client.publisher.publish(String(data=msg.model_dump_json()))
    final: PlannerStatusMsg | None = None
    with tqdm(total=100, desc="task", unit="%") as bar:
        while final is None and time.monotonic() < deadline:
            client.spin_for(0.1)
            for plan in client.plans[n_plans:]:
                print_plan(plan)
            n_plans = len(client.plans)
            for status in client.statuses[n_statuses:]:
                if status.instruction != text:
                    continue
                bar.n = round(100 * status.progress)
                bar.set_postfix_str(status.message[:60])
                bar.refresh()
                if status.state in TERMINAL_STATES:
                    final = status
            n_statuses = len(client.statuses)
    if final is None:
        print(f"[say] no final status within {timeout_s:.0f} s")
        return 2
    detail = final.message if final.state in ("answered", "succeeded") else final.reason
    print(f"[say] {final.state}: {detail}")
    return 0 if final.state in ("succeeded", "answered") else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="robot-memory say", description="send one instruction to the running planner"
    )
    parser.add_argument("text", nargs="+", help="the instruction, e.g. put the red cube in the bin")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after S seconds")
    parser.add_argument(
        "--memoryless", action="store_true", help="ablation: memory cleared before each step"
    )
    args = parser.parse_args(argv)
    rclpy.init()
    client = InstructionClient()
    try:
        return say(client, " ".join(args.text), args.memoryless, args.timeout)
    except KeyboardInterrupt:
        return 130
    finally:
        client.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
