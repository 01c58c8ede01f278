"""Instruction parsing for the offline planner (ROS-free, no model).

A small, explicit grammar over lower-cased text; everything it cannot read is
``PlanningError("not understood")``. Words are left as phrases: grounding them
in memory (:mod:`robot_memory.planner.grounding`) is a separate step.

Grammar (``<obj>`` a noun phrase, ``<dest>`` a destination phrase)::

    instruction := command ((";" | "then" | "and then" | "after that" | ", and" | "and") command)*
    command     := where | restore_all | move
    where       := ("where is" | "where's" | "where are" | "where did" | "where has"
                    | "have you seen" | "do you know where") <obj> ["go" | "gone" | ...]
    restore_all := ("put" | "move" | ...) ("everything" | "all the things" | ...) "back" ...
                 | "restore" / "undo" / "reset" ... ("everything" | "the scene" | "the table")
    move        := VERB <obj> [PREP <dest>]           (PREP: in into inside on onto to at ...)
                 | VERB "back" <obj> | VERB <obj> "back"   (bring/give/fetch: hand-over spot)
    <obj>       := "all"/"every"/"everything" <colour/shape words>   (every matching object)
                 | <words> ("that"|"which") "was" ("under"|"in"|...) <container words>
                 | <words>
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from robot_memory.planner.plan import PlanningError

MOVE_VERBS = (
    "put",
    "move",
    "place",
    "drop",
    "throw",
    "toss",
    "chuck",
    "set",
    "carry",
    "transfer",
    "stick",
    "take",
    "bring",
    "give",
    "hand",
    "fetch",
    "get",
    "return",
    "retrieve",
    "pick up",
    "lay",
)
#: Verbs that, with no destination, mean "to me" (the hand-over spot).
HANDOVER_VERBS = frozenset({"bring", "give", "hand", "fetch", "get", "return", "retrieve"})
DEST_PREPS = (
    "into",
    "inside",
    "in",
    "onto",
    "on top of",
    "on",
    "to",
    "at",
    "over",
    "towards",
    "beside",
)
PRONOUNS = frozenset({"it", "them", "that", "this", "that one", "this one", "those"})
_DISPOSE = re.compile(
    r"^(?:get rid of|throw away|throw out|dispose of|discard|bin|trash)\s+(?P<o>.+)$"
    r"|^(?:throw|toss|chuck)\s+(?P<o2>.+?)\s+(?:away|out)$"
)
HIDDEN_PREPS = ("underneath", "under", "beneath", "below", "inside", "in", "covered by")
HANDOVER_WORDS = frozenset({"me", "here", "back", "my hand", "the hand-over spot", "to me"})
ALL_WORDS = ("everything", "all", "every", "each")

_SPLIT = re.compile(
    r"\s*(?:;|\.\s+|,?\s*\band then\b|,?\s*\bafter that\b|,?\s*\bafterwards\b|,?\s*\bthen\b"
    r"|,?\s*\band\s+(?=(?:" + "|".join(MOVE_VERBS) + r"|where)\b))\s*"
)
_POLITE = re.compile(
    r"^(?:please|kindly|robot|hey robot|ok|okay|now|(?:could|can|would|will) you|i want you to"
    r"|i'd like you to|go ahead and|first|finally|next)[\s,]+"
)
_WHERE = re.compile(
    r"^(?:where(?:'s| is| are| was| were| did| has| have|)|have you seen|did you see"
    r"|do you know where|can you tell me where|tell me where)\s+(?P<obj>.+?)"
    r"(?:\s+(?:go|gone|went|end up|ended up|got to|put|now|is|are|be|been|at the moment))*$"
)
_RESTORE = re.compile(
    r"^(?:(?:put|move|place|set|bring)\s+"
    r"(?:everything|all(?: of)?(?: the)? (?:things|objects|items|stuff)"
    r"|all of it|the (?:things|objects)|things|it all)\s+back\b.*"
    r"|(?:restore|reset|undo)\b.*(?:everything|scene|table|changes|moves|all)\b.*"
    r"|(?:tidy|clean) up(?: the table)?(?: the way it was)?|make (?:it|everything) (?:look )?"
    r"(?:like|as) (?:it was )?before)$"
)
_RELATIVE = re.compile(
    r"^(?P<head>.*?)\s*\b(?:that|which|who)?\s*(?:was|were|is|had been|has been|used to be|got|lay)"
    r"\s+(?:hidden\s+|lying\s+|sitting\s+|put\s+)?(?P<prep>" + "|".join(HIDDEN_PREPS) + r")\s+"
    r"(?P<cont>.+)$"
)


@dataclass
class ObjectRef:
    """A noun phrase: ``text`` (words), or every object matching it, or the one
    that was hidden under/in the container named by ``hidden_in``."""

    text: str
    every: bool = False
    hidden_in: str = ""

    def __str__(self) -> str:
        if self.hidden_in:
            return f"the object that was under the {self.hidden_in}"
        return ("every " if self.every else "") + (self.text or "thing")


@dataclass
class Destination:
    """Where to put it: ``handover``, or ``text`` (a place or an object phrase)."""

    text: str = ""
    handover: bool = False
    beside: bool = False  # next to the object ``text`` names, on the table


@dataclass
class Command:
    kind: str  # "move" | "restore_all" | "where"
    raw: str
    obj: ObjectRef | None = None
    dest: Destination | None = None
    verb: str = ""
    extra: dict = field(default_factory=dict)


def normalise(text: str) -> str:
    t = text.lower().strip()
    t = t.replace("’", "'").replace("in to ", "into ").replace("on to ", "onto ")
    t = re.sub(r"\b(?:next to|close to|near to|near|alongside)\b", "beside", t)
    t = re.sub(r"[!?]+", " ", t)
    t = re.sub(r"\s+", " ", t).strip(" .,")
    return t


def split_commands(text: str) -> list[str]:
    parts = [p.strip(" ,.") for p in _SPLIT.split(normalise(text))]
    return [p for p in parts if p]


def _strip_polite(t: str) -> str:
    prev = None
    while prev != t:
        prev = t
        t = _POLITE.sub("", t).strip()
    return t


def parse_object(phrase: str) -> ObjectRef:
    p = phrase.strip(" ,")
    p = re.sub(r"^(?:the|a|an|that|this|my)\s+", "", p)
    m = _RELATIVE.match(p)
    if m and m.group("cont"):
        cont = re.sub(r"^(?:the|a|an)\s+", "", m.group("cont").strip())
        return ObjectRef(text=m.group("head").strip(), hidden_in=cont)
    m = re.match(r"^(?:everything|all(?: of)?(?: the)?|every|each)(?:\s+(?P<rest>.*))?$", p)
    if m:
        rest = m.group("rest") or ""
        rest = re.sub(r"^(?:that is|that's|that are|which is|which are|in)\s+", "", rest)
        rest = re.sub(r"\b(?:things|objects|items|ones|stuff|pieces|one|thing|object)\b", "", rest)
        return ObjectRef(text=" ".join(rest.split()), every=True)
    return ObjectRef(text=p)


def _parse_move(t: str) -> list[Command] | None:
    m = _DISPOSE.match(t)
    if m:
        t = f"put {m.group('o') or m.group('o2')} in the bin"
    verb = next((v for v in MOVE_VERBS if t == v or t.startswith(v + " ")), None)
    if verb is None:
        return None
    rest = t[len(verb) :].strip()
    # "the ball to the left and the can to the right": two moves, same verb
    for mm in re.finditer(r",?\s+and\s+", rest):
        first = _parse_move(f"{verb} {rest[: mm.start()]}")
        second = _parse_move(f"{verb} {rest[mm.end() :]}") if first else None
        if first and second and all(c.dest is not None for c in first + second):
            return first + second
    handover = False
    # "bring back X", "bring me X", "give me back X", "bring X back (to me)"
    m = re.match(r"^(?:me\s+)?(?:back\s+)?(?:me\s+)?", rest)
    if m and m.group(0).strip() and verb in HANDOVER_VERBS | {"put", "move", "take"}:
        handover = verb in HANDOVER_VERBS or "back" in m.group(0)
        rest = rest[m.end() :]
    tail = re.search(r"\s+(?:back(?:\s+to me)?|to me|here|over here)$", rest)
    if tail and verb in HANDOVER_VERBS:
        handover = True
        rest = rest[: tail.start()]
    if verb == "pick up" or (verb == "pick" and rest.startswith("up ")):
        rest = rest.removeprefix("up ")
    # the destination: after the last preposition that is not inside a relative clause
    dest_text = ""
    rel = _RELATIVE.match(re.sub(r"^(?:the|a|an)\s+", "", rest))
    search_from = 0
    if rel:
        # "the thing that was under the box in the bin": the container takes one noun phrase
        cont = rel.group("cont")
        search_from = len(rest) - len(cont)
        nxt = re.search(r"\s(?:" + "|".join(DEST_PREPS) + r")\s", rest[search_from:])
        search_from = search_from + nxt.start() if nxt else len(rest)
    best = None
    for prep in DEST_PREPS:
        for mm in re.finditer(r"\s" + re.escape(prep) + r"\s+", rest):
            if mm.start() >= search_from and (best is None or mm.start() > best.start()):
                best = mm
    obj_text = rest
    if best is not None:
        obj_text, dest_text = rest[: best.start()], rest[best.end() :]
    obj_text = re.sub(r"\s+(?:over|back|away|up|down)$", "", obj_text.strip())
    if not obj_text:
        return None
    dest_text = re.sub(r"^(?:the|a|an)\s+", "", dest_text.strip())
    if dest_text in HANDOVER_WORDS or dest_text in ("you", "my hand", "hand-over spot"):
        handover, dest_text = True, ""
    if not dest_text and verb in HANDOVER_VERBS:
        handover = True
    dest = None
    if dest_text or handover:
        beside = best is not None and prep_of(best) == "beside"
        dest = Destination(text=dest_text, handover=handover and not dest_text, beside=beside)
    return [Command(kind="move", raw=t, verb=verb, obj=parse_object(obj_text), dest=dest)]


def prep_of(match: re.Match | None) -> str:
    return "" if match is None else match.group(0).strip()


def parse_command(text: str) -> list[Command]:
    """The command(s) of one clause; a move may still lack its destination."""
    t = _strip_polite(normalise(text))
    if not t:
        raise PlanningError("not understood", "empty instruction")
    m = _WHERE.match(t)
    if m:
        return [Command(kind="where", raw=t, obj=parse_object(m.group("obj")))]
    if _RESTORE.match(t):
        return [Command(kind="restore_all", raw=t)]
    cmds = _parse_move(t)
    if not cmds:
        raise PlanningError("not understood", f"no command I know in {t!r}")
    return cmds


def parse_instruction(text: str) -> list[Command]:
    """Every command of ``text`` in order; raises PlanningError("not understood").

    "it"/"them" name the previous command's object; "pick up X and put it in
    the bin" is one move."""
    parts = split_commands(text)
    if not parts:
        raise PlanningError("not understood", "empty instruction")
    out: list[Command] = []
    for part in parts:
        for cmd in parse_command(part):
            if cmd.obj is not None and cmd.obj.text in PRONOUNS and not cmd.obj.hidden_in:
                if not out or out[-1].obj is None:
                    raise PlanningError("not understood", f"what is {cmd.obj.text!r}?")
                cmd.obj = out[-1].obj
                if out[-1].dest is None:  # "pick up X and put it ...": one move
                    out.pop()
            out.append(cmd)
    for cmd in out:
        if cmd.kind == "move" and cmd.dest is None:
            raise PlanningError("not understood", f"where should it go? ({cmd.raw!r})")
    return out


__all__ = [
    "Command",
    "Destination",
    "ObjectRef",
    "normalise",
    "parse_command",
    "parse_instruction",
    "parse_object",
    "split_commands",
]
