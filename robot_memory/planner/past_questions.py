"""Questions about the past, parsed (ROS-free, no model).

Each kind is asked in several wordings; :func:`parse_past_question` names the
wording that matched (``PastQuestion.wording``) so an evaluation can split its
accuracy by wording. The time phrase ("yesterday", "5 minutes ago", "before
the last restart") is found first (:mod:`robot_memory.planner.time_words`);
the rest must match one pattern as a whole. Kinds:

``where_was`` (X at a time), ``last_seen`` (when X was last seen),
``contents`` (what was in / under Y at a time), ``order`` (what was put in Y
right after / before X), ``count_contents`` (how many things are in Y),
``count_moves`` (how many times X was moved / lifted), ``changes`` (what changed
since a time), ``ever_seen`` (has X ever been seen), ``attribute`` (the colour or
shape of the thing that was in / under Y).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from robot_memory.planner.time_words import CellClock, TimeSpec, find_time

_X = r"(?P<x>.+?)"
_Y = r"(?P<y>.+?)"
_IN = r"(?P<rel>in|inside|into|under|underneath|beneath|below|on|covered by)"
_MOVED = r"(?:moved|lifted|lifted up|picked up|taken|carried|touched|shifted)"
_PUT = r"(?:put|placed|dropped|thrown|tossed|added)"


@dataclass(frozen=True)
class PastQuestion:
    kind: str
    wording: str  # the pattern's name: "<kind>.<n>"
    subject: str = ""  # the object asked about (noun phrase)
    target: str = ""  # the container asked about (noun phrase)
    relation: str = ""  # in | under | on
    after: bool = True  # order: right after (else right before)
    attribute: str = ""  # colour | shape
    time: TimeSpec | None = None


_THING = r"(?:thing|object|one|item)"
_A = r"(?P<a>colou?r|shape)"
_NEXT = r"(?:right |just |directly )?(?P<d>after|before)"
_INTO = r"(?:in|into|inside)"
_WHO = r"(?:you|someone|anyone|somebody)"
_N = r"(?:things|objects|items)"

PATTERNS: list[tuple[str, str]] = [
    # attribute of the thing identified by its history
    ("attribute.1", rf"what {_A} (?:was|is|had) the {_THING} (?:that was )?{_IN} {_Y}"),
    ("attribute.2", rf"what was the {_A} of the {_THING} (?:that was )?{_IN} {_Y}"),
    ("attribute.3", rf"which {_A} did the {_THING} {_IN} {_Y} have"),
    ("attribute.4", rf"(?:tell me )?the {_A} of (?:what|whatever) was {_IN} {_Y}"),
    (
        "attribute.5",
        rf"what {_A} was (?:the thing |whatever |what )?"
        rf"(?:hidden|kept|lying|sitting) {_IN} {_Y}",
    ),
    # the order of interactions
    ("order.1", rf"what did {_WHO} {_PUT} {_INTO} {_Y} {_NEXT} {_X}"),
    ("order.2", rf"what (?:was|got) {_PUT} {_INTO} {_Y} {_NEXT} {_X}"),
    ("order.3", rf"what went {_INTO} {_Y} {_NEXT} {_X}"),
    ("order.4", rf"which {_THING} (?:was|got) {_PUT} {_INTO} {_Y} {_NEXT} {_X}"),
    ("order.5", rf"what (?:came|arrived) {_INTO} {_Y} {_NEXT} {_X}"),
    ("order.6", rf"what followed {_X} {_INTO} {_Y}"),
    # counting
    ("count_contents.1", rf"how many {_N} (?:are|were|is) (?:there )?{_IN} {_Y}"),
    ("count_contents.2", rf"how many {_N} does {_Y} (?:contain|hold|have in it)"),
    ("count_contents.3", rf"count the {_N} {_IN} {_Y}"),
    ("count_contents.4", rf"what is the number of {_N} {_IN} {_Y}"),
    ("count_contents.5", rf"how many {_N} have been {_PUT} {_INTO} {_Y}"),
    ("count_moves.1", rf"how many times (?:was|has|had) {_X} (?:been )?{_MOVED}"),
    ("count_moves.2", rf"how often (?:was|has|had) {_X} (?:been )?{_MOVED}"),
    (
        "count_moves.3",
        rf"how many times did {_WHO} "
        rf"(?:move|lift|pick up|take|carry|touch) {_X}",
    ),
    ("count_moves.4", rf"count how (?:often|many times) {_X} (?:was|has been) {_MOVED}"),
    ("count_moves.5", rf"what is the number of times {_X} (?:was|has been) {_MOVED}"),
    # what changed
    ("changes.1", r"what (?:has )?changed"),
    ("changes.2", r"what (?:has )?moved"),
    ("changes.3", r"what is different"),
    ("changes.4", r"what happened"),
    ("changes.5", r"what moved while i was (?:away|gone|out)"),
    ("changes.6", r"(?:did )?anything (?:change|move)"),
    # when last seen
    ("last_seen.1", rf"when did you (?:last see|see) {_X}(?: last)?"),
    ("last_seen.2", rf"when was {_X} last seen"),
    ("last_seen.3", rf"when have you last seen {_X}"),
    ("last_seen.4", rf"when was the last time you saw {_X}"),
    ("last_seen.5", rf"how long ago did you (?:last )?see {_X}"),
    # ever seen
    ("ever_seen.1", rf"have you ever seen {_X}"),
    ("ever_seen.2", rf"did you ever see {_X}"),
    ("ever_seen.3", rf"(?:was|is) there ever {_X}"),
    ("ever_seen.4", rf"has there ever been {_X}"),
    ("ever_seen.5", rf"do you remember (?:ever )?seeing {_X}"),
    ("ever_seen.6", rf"have you seen {_X} (?:at all|ever|before)"),
    # contents at a time
    ("contents.1", rf"what (?:was|were|is|are) (?:there )?{_IN} {_Y}"),
    ("contents.2", rf"which (?:object|objects|thing|things) (?:was|were|is|are) {_IN} {_Y}"),
    ("contents.3", rf"what did {_Y} (?P<verb>cover|hide|contain|hold)"),
    ("contents.4", rf"what (?:was|were) (?:hidden|kept|lying|sitting) {_IN} {_Y}"),
    ("contents.5", rf"what had been {_PUT} (?P<rel>in|into|inside) {_Y}"),
    # where at a time
    ("where_was.1", rf"where was {_X}"),
    ("where_was.2", rf"where did {_X} (?:use to be|stand|sit|lie|live)"),
    ("where_was.3", rf"where had {_X} been"),
    ("where_was.4", rf"what was the (?:position|location|place) of {_X}"),
    ("where_was.5", rf"where could (?:i|one) have found {_X}"),
]
_COMPILED = [(name, re.compile(rf"^{p}$")) for name, p in PATTERNS]
_RELATION = {"inside": "in", "into": "in", "underneath": "under", "beneath": "under",
             "below": "under", "covered by": "under"}  # fmt: skip
_VERB_RELATION = {"cover": "under", "hide": "under", "contain": "in", "hold": "in"}
NEEDS_TIME = ("where_was",)  # without a time: not a question about the past
_TRAILING_STATE = re.compile(r"\s+(?:located|situated|placed|kept|lying|sitting|standing|stored)$")


def _clean(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"^(?:please |hey |robot,? |can you tell me |tell me |do you know )+", "", text)
    return re.sub(r"\s+", " ", text).strip(" ?.!,")


def parse_past_question(
    text: str, now: float, clock: CellClock, restarts: Sequence[float] = ()
) -> PastQuestion | None:
    """The question, or None when the text is not a question about the past
    (a command, or "where is X" about the present). Raises TimeWordsError for a
    time it cannot place."""
    rest, time = find_time(_clean(text), now, clock, restarts)
    rest = _clean(rest)
    for name, pattern in _COMPILED:
        m = pattern.match(rest)
        if m is None:
            continue
        kind = name.split(".")[0]
        if kind in NEEDS_TIME and time is None:
            continue
        groups = m.groupdict()
        if groups.get("x"):  # "where was the cube located": the thing, not its state
            groups["x"] = _TRAILING_STATE.sub("", groups["x"])
        rel = groups.get("rel") or _VERB_RELATION.get(groups.get("verb") or "", "")
        q = PastQuestion(
            kind=kind,
            wording=name,
            subject=(groups.get("x") or "").strip(),
            target=(groups.get("y") or "").strip(),
            relation=_RELATION.get(rel, rel),
            after=(groups.get("d") or "after") == "after",
            attribute="colour"
            if (groups.get("a") or "").startswith("col")
            else groups.get("a") or "",
            time=time,
        )
        if kind == "order" and name == "order.6":
            q = replace(q, after=True)
        return q
    return None
