"""A keyword fallback for questions about the past that no pattern matched
(ROS-free, no model).

:func:`parse_past_question` (patterns) knows the wordings it was written for;
users say "any idea where the red cube ended up" or "how many objects sit in
the bin". When no pattern and no command matched, :func:`guess_past_question`
looks for the question's cue words (where, when / what time, how many / how
often, ever, colour / shape, after / before + bin, changed / new, what / which /
list + in / under) and for the object and container it names (an article and
up to three words ending in a thing noun), and returns the same
:class:`~robot_memory.planner.past_questions.PastQuestion` (wording
``"<kind>.guess"``) or None. It only ever reads: a wrong guess gives a wrong
answer, never a motion; the answer says which question it answered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from robot_memory.planner.past_questions import PastQuestion
from robot_memory.planner.time_words import CellClock, find_time

NOUNS = ("cube", "cylinder", "sphere", "prism", "block", "box", "ball", "mug", "cup", "bottle",
         "can", "bowl", "lid", "bin", "object", "thing", "item", "one")  # fmt: skip
_PHRASE = re.compile(r"\b(?:the|a|an|any)\s+((?:[a-z]+\s+){0,2}?(?:" + "|".join(NOUNS) + r"))\b")
CONTAINERS = ("bin", "box", "lid")
_GENERIC = ("object", "thing", "item", "one")
_QUESTION = re.compile(
    r"^(?:where|when|what|which|how|has|have|had|did|do|does|was|were|is|are|any|anything|"
    r"something|at|tell|list|name|number|can|could|find|the|please)\b"
)


def _words_only(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip(" ?.!,")


def _phrases(text: str) -> list[str]:
    return [m.group(1) for m in _PHRASE.finditer(text)]


def _subject(text: str) -> str:
    """The first named thing that is not a container nor a generic word."""
    for phrase in _phrases(text):
        noun = phrase.split()[-1]
        if noun not in CONTAINERS and noun not in _GENERIC:
            return "the " + phrase
    boxes = [p for p in _phrases(text) if p.split()[-1] in ("box", "lid")]
    return "the " + boxes[0] if boxes else ""


def _has(text: str, *words: str) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", text) for w in words)


def guess_past_question(
    text: str, now: float, clock: CellClock, restarts: Sequence[float] = ()
) -> PastQuestion | None:
    """The question the cue words point to, or None (not a question, or no
    cue). Raises TimeWordsError for a time it cannot place."""
    rest, time = find_time(_words_only(text), now, clock, restarts)
    t = _words_only(rest)  # politeness kept: "do you know of a red cube" is the question
    if not _QUESTION.match(t) and not text.strip().endswith("?"):
        return None
    subject = _subject(t)
    box = _has(t, "box", "lid", "cover", "covered", "covering", "hidden", "under")
    target, relation = ("the white box", "under") if box else ("the bin", "in")
    guess = lambda kind, **kw: PastQuestion(kind=kind, wording=f"{kind}.guess", time=time,  # noqa: E731
                                            **kw)  # fmt: skip
    if _has(t, "colour", "color", "shape") and (box or _has(t, "bin")):
        attribute = "colour" if _has(t, "colour", "color") else "shape"
        return guess("attribute", target=target, relation=relation, attribute=attribute)
    counting = _has(t, "how many", "how often", "number of", "frequently", "count")
    moving = _has(t, "moved", "moves", "move", "shifted", "lifted", "picked", "touched", "carried")
    if counting and moving and subject:
        return guess("count_moves", subject=subject)
    if counting and _has(t, "bin"):
        return guess("count_contents", target="the bin", relation="in")
    if _has(t, "after", "before") and _has(t, "bin") and subject:
        return guess("order", subject=subject, target="the bin", after=_has(t, "after"))
    if _has(t, "ever", "know of", "seen before") and subject:
        return guess("ever_seen", subject=subject.replace("the ", "", 1))
    if _has(t, "when", "what time") and subject:
        return guess("last_seen", subject=subject)
    if (
        _has(t, "changed", "change", "different", "new", "happened")
        or (_has(t, "anything", "something") and moving)
        or _has(t, "not where")
    ):
        return guess("changes")
    if _has(t, "where", "location", "locate", "find", "position") and subject:
        return guess("where_was", subject=subject)  # no time: where it is now
    if _has(t, "what", "which", "list") and _has(t, "in", "inside", "under", "on", "covered"):
        return guess("contents", target=target, relation=relation)
    return None
