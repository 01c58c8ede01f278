"""One instruction through a :class:`~robot_memory.planner.executor.PlanExecutor`,
with every way it can end turned into an outcome: the executor's own result, a
cancel, a memory reset that failed, or a crash (reported, never raised: the
node serving instructions goes on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from robot_memory.planner.executor import PlanExecutor
from robot_memory.planner.plan import Plan
from robot_memory.planner.world import InstructionCanceledError, MemoryResetError


@dataclass(frozen=True)
class InstructionOutcome:
    state: str  # succeeded, answered, failed, canceled
    reason: str
    plan: Plan | None
    #: (state, reason, message) of a final status the executor did not send
    final: tuple[str, str, str] | None = None
    crash: str | None = None  # repr of the exception, when it crashed


def run_instruction(
    executor: PlanExecutor,
    text: str,
    memoryless: bool,
    last_plan: Callable[[], Plan | None],
) -> InstructionOutcome:
    """Run ``text``; ``last_plan`` gives the plan reached when it ends early."""
    try:
        result = executor.run(text, memoryless or None)
    except InstructionCanceledError:
        final = ("canceled", "canceled", "canceled by the client")
        return InstructionOutcome("canceled", "canceled", last_plan(), final)
    except MemoryResetError as err:
        final = ("failed", "memory reset failed", str(err))
        return InstructionOutcome("failed", str(err), last_plan(), final)
    except Exception as exc:  # noqa: BLE001 - reported, counted, the caller goes on
        final = ("failed", "internal error", repr(exc))
        return InstructionOutcome("failed", "internal error", last_plan(), final, repr(exc))
    return InstructionOutcome(result.state, result.reason, result.plan)


def health_counters(executor_counters: dict[str, int]) -> dict[str, int]:
    """The executor's counters under the planner's /diagnostics keys."""
    return {
        key.replace("rejected:", "plans_rejected.").replace(":", "."): value
        for key, value in executor_counters.items()
    }
