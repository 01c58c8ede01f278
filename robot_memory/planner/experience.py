"""Experience memory: short reflections on past failures, persisted, retrieved for
later plans (ROS-free; the idea of ExpTeach's long-term memory, kept small).

After a failed step the executor records an :class:`Experience`: the situation
(the instruction, the skill, the object's label and shape, the target) and what
went wrong (the reason), with a one-line reflection and a **rule** from a fixed
whitelist (``RULES``) that says how to plan differently. Nothing in an
experience is executed: the offline planner applies the rule to steps on
matching objects; a VLM gets the reflections as text in its prompt.

Retrieval (:meth:`ExperienceMemory.retrieve`): an experience applies to a new
instruction when it is about an object of the same shape and colour as one the
instruction grounds to, or when the instructions are similar (cosine of their
sentence embeddings >= ``similarity_threshold``, the shipped MiniLM model).

The file is JSON (one object with a list), written atomically; a corrupt file is
moved aside with a warning, never a crash.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from robot_memory.memory.text_grounding import TextEmbedder

LOG = logging.getLogger(__name__)
FORMAT_VERSION = 1

#: What a reflection can change in a later plan.
RULES: dict[str, str] = {
    "look_before_pick": "look at the object again just before picking it (refresh its position)",
    "extra_attempt": "allow one more attempt for this object",
}


def rule_for(skill: str, reason: str) -> str:
    """The rule a failure teaches (fixed mapping, documented in docs/planner.md)."""
    if skill == "pick":
        return "look_before_pick"
    return "extra_attempt"


@dataclass
class Experience:
    instruction: str
    skill: str
    object_label: str
    object_shape: str = ""
    object_colour: str = ""
    target: str = ""
    reason: str = ""
    reflection: str = ""
    rule: str = "extra_attempt"
    count: int = 1
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; rules: {sorted(RULES)}")

    def situation(self) -> str:
        return f"{self.skill} {self.object_label} -> {self.target or '-'}: {self.reason}"

    def matches_object(self, colour: str, shape: str) -> bool:
        return bool(self.object_shape) and (
            self.object_shape == shape and (not self.object_colour or self.object_colour == colour)
        )

    def as_prompt_line(self) -> str:
        return f"- {self.reflection} (seen {self.count}x; situation: {self.situation()})"


class ExperienceMemory:
    """Reflections in memory and, when ``path`` is given, on disk."""

    def __init__(
        self,
        path: str | Path | None = None,
        embedder: TextEmbedder | None = None,
        max_entries: int = 500,
        similarity_threshold: float = 0.8,
    ) -> None:
        self.path = Path(path) if path else None
        self.embedder = embedder
        self.max_entries = max_entries
        self.similarity_threshold = similarity_threshold
        self.entries: list[Experience] = []
        if self.path is not None and self.path.exists():
            self._load()

    # -- persistence ----------------------------------------------------------
    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {data.get('format_version')!r}")
            self.entries = [Experience(**e) for e in data["experiences"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_suffix(self.path.suffix + f".corrupt-{int(time.time())}")
            LOG.warning("experience file %s unreadable (%s); moved to %s", self.path, exc, aside)
            self.path.rename(aside)
            self.entries = []

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION,
            "experiences": [asdict(e) for e in self.entries],
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".experience-")
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, self.path)

    # -- writing --------------------------------------------------------------
    def record(
        self,
        instruction: str,
        skill: str,
        object_label: str,
        reason: str,
        object_shape: str = "",
        object_colour: str = "",
        target: str = "",
    ) -> Experience:
        """Store a reflection on a failure (the same situation again counts up)."""
        rule = rule_for(skill, reason)
        for e in self.entries:
            same = (e.skill, e.object_shape, e.object_colour, e.rule) == (
                skill,
                object_shape,
                object_colour,
                rule,
            )
            if same:
                e.count += 1
                e.updated = time.time()
                e.reason = reason
                self.save()
                return e
        reflection = f"{skill} of the {object_label} failed ({reason}); next time: {RULES[rule]}"
        exp = Experience(
            instruction=instruction,
            skill=skill,
            object_label=object_label,
            object_shape=object_shape,
            object_colour=object_colour,
            target=target,
            reason=reason,
            reflection=reflection,
            rule=rule,
        )
        self.entries.append(exp)
        del self.entries[: -self.max_entries]
        self.save()
        return exp

    def clear(self) -> None:
        self.entries = []
        self.save()

    # -- reading --------------------------------------------------------------
    def retrieve(
        self, instruction: str, objects: list[tuple[str, str]] = (), k: int = 5
    ) -> list[Experience]:
        """Experiences for an instruction whose grounded objects are ``objects``
        ((colour, shape) pairs): object matches first, then similar instructions."""
        hits: list[tuple[float, Experience]] = []
        similar: dict[str, float] = {}
        if self.embedder is not None and self.entries and instruction.strip():
            texts = [e.instruction for e in self.entries]
            sims = self.embedder.similarity(instruction, texts)
            similar = {e.id: float(s) for e, s in zip(self.entries, sims, strict=True)}
        for e in self.entries:
            if any(e.matches_object(c, s) for c, s in objects):
                hits.append((2.0 + e.count * 1e-3, e))
            elif similar.get(e.id, 0.0) >= self.similarity_threshold:
                hits.append((similar[e.id], e))
        hits.sort(key=lambda h: (-h[0], -h[1].updated))
        return [e for _, e in hits[:k]]

    def rules_for(self, experiences: list[Experience], colour: str, shape: str) -> set[str]:
        """Rules of ``experiences`` that are about an object like this one."""
        return {e.rule for e in experiences if e.matches_object(colour, shape)}


__all__ = ["RULES", "Experience", "ExperienceMemory", "rule_for"]
