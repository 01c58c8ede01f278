"""report.md of a demo run (ROS-free): instruction, plans, status timeline,
result against ground truth, timings and the files written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robot_memory.planner.plan import Plan, PlannerStatusMsg


@dataclass
class DemoRecord:
    instruction: str = ""
    seed: int = 0
    target: str = ""  # ground-truth id of the object moved
    target_memory_id: int | None = None
    place: str = "bin"
    hidden_at_home: list[str] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    statuses: list[tuple[float, PlannerStatusMsg]] = field(default_factory=list)  # wall t
    phases: list[tuple[float, str]] = field(default_factory=list)  # wall t, what
    planner_state: str = ""
    planner_reason: str = ""
    truth_ok: bool = False
    truth_detail: str = ""
    wall_s: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.planner_state == "succeeded" and self.truth_ok


def write_report(record: DemoRecord, path: Path) -> Path:
    r = record
    lines = [
        "# robot_memory demo",
        "",
        f"**Instruction:** {r.instruction or '(not sent)'}",
        "",
        f"**Result:** {'SUCCESS' if r.ok else 'FAILED'}: planner `{r.planner_state or '-'}`"
        + (f" ({r.planner_reason})" if r.planner_reason else "")
        + f"; ground truth: {r.truth_detail or '-'}",
        "",
        f"Scene seed {r.seed}. Out of every camera's view with the arm at home: "
        f"{', '.join(r.hidden_at_home) or 'none'}; moved: `{r.target}` "
        f"(memory #{r.target_memory_id}) -> `{r.place}`. Wall time {r.wall_s:.1f} s.",
        "",
        "## Plans",
        "",
    ]
    for plan in r.plans:
        lines.append(f"- `{plan.id}` (attempt {plan.attempt}, {plan.backend}): {plan.describe()}")
        lines += [f"  - {note}" for note in plan.notes[:5]]
    if not r.plans:
        lines.append("- none")
    lines += ["", "## Timeline", "", "| t [s] | what |", "|---:|---|"]
    events = [(t, what) for t, what in r.phases]
    for t, s in r.statuses:
        text = f"planner `{s.state}`"
        message = s.message or s.reason
        if s.n_steps and not message.startswith("step"):
            text += f" (step {min(s.step + 1, s.n_steps)}/{s.n_steps})"
        text += f": {message}".rstrip(": ")
        events.append((t, text.replace("|", "/")))
    lines += [f"| {t:.1f} | {what} |" for t, what in sorted(events, key=lambda e: e[0])]
    lines += ["", "## Files", ""]
    lines += [f"- {name}: `{p.name}`" for name, p in r.files.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


__all__ = ["DemoRecord", "write_report"]
