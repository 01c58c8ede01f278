"""Times in questions about the past (ROS-free): "5 minutes ago", "yesterday",
"before the last restart", "on day 3", "at 120 s", "in the last hour".

Times are the robot's clock (sim time in the simulator, ROS time on a robot).
A :class:`CellClock` says how that clock maps to days: on a robot a day is
86,400 s from midnight (``origin_s`` the epoch time of a midnight); a simulated
week compresses days (``day_length_s``). Restarts come from memory's
``session_started`` events (their stamps, oldest first).

:func:`find_time` finds one time phrase in a question and returns the question
without it and a :class:`TimeSpec`: a point (``at``: where was X *then*) and/or
a window (``since`` / ``until``: what happened *between*). A phrase it does not
know stays in the text; one that names a time it cannot place (a restart that
never happened) is a :class:`TimeWordsError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

UNITS = {
    "second": 1.0, "sec": 1.0, "s": 1.0, "minute": 60.0, "min": 60.0, "hour": 3600.0,
    "h": 3600.0,
}  # fmt: skip
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30,
    "a few": 3, "a couple of": 2,
}  # fmt: skip
_NUM = r"(?P<n>\d+(?:\.\d+)?|a few|a couple of|" + "|".join(NUMBER_WORDS) + r")"
_UNIT = r"(?P<u>seconds?|secs?|s|minutes?|mins?|hours?|h|days?)"


class TimeWordsError(ValueError):
    reason = "unknown time"


@dataclass(frozen=True)
class CellClock:
    day_length_s: float = 86400.0
    origin_s: float = 0.0  # the start of day 0 on the robot's clock

    def day_of(self, t: float) -> int:
        return math.floor((t - self.origin_s) / self.day_length_s)

    def day_start(self, day: int) -> float:
        return self.origin_s + day * self.day_length_s


@dataclass(frozen=True)
class TimeSpec:
    words: str  # the phrase as asked
    at: float | None = None  # the state at this instant
    since: float | None = None  # events at or after
    until: float | None = None  # events at or before

    @property
    def point(self) -> float | None:
        """The instant a "where was / what was" question asks about."""
        return self.at if self.at is not None else self.until


def _number(text: str) -> float:
    text = text.strip()
    return float(NUMBER_WORDS[text]) if text in NUMBER_WORDS else float(text)


def _unit_s(unit: str, clock: CellClock) -> float:
    unit = unit.rstrip("s") if unit not in ("s",) else unit
    if unit.startswith("day"):
        return clock.day_length_s
    return UNITS[unit]


def _last_restart(restarts: Sequence[float], nth: int = 1) -> float:
    if len(restarts) < nth:
        raise TimeWordsError("there was no restart" if nth == 1 else f"fewer than {nth} restarts")
    return restarts[-nth]


def find_time(
    text: str, now: float, clock: CellClock, restarts: Sequence[float] = ()
) -> tuple[str, TimeSpec | None]:
    """(the text without its time phrase, the time), or (text, None)."""
    t = text.lower()
    day = clock.day_of(now)
    patterns: list[tuple[str, object]] = [
        (r"\b" + _NUM + r"\s+" + _UNIT + r"\s+ago\b",
         lambda m: TimeSpec(m[0], at=now - _number(m["n"]) * _unit_s(m["u"], clock))),
        (r"\b(?:in|during|over|within)\s+the\s+(?:last|past)\s+(?:" + _NUM + r"\s+)?" + _UNIT
         + r"\b",
         lambda m: TimeSpec(m[0], since=now - _number(m["n"] or "1") * _unit_s(m["u"], clock),
                            until=now)),
        (r"\bthe day before yesterday\b",
         lambda m: _day_spec(m[0], clock, day - 2)),
        (r"\byesterday\b", lambda m: _day_spec(m[0], clock, day - 1)),
        (r"\btoday\b|\bso far today\b",
         lambda m: TimeSpec(m[0], since=clock.day_start(day), until=now)),
        (r"\bon day\s+(?P<d>\d+)\b", lambda m: _day_spec(m[0], clock, int(m["d"]))),
        (r"\b(?:before|prior to)\s+the\s+(?:last|latest|most recent)\s+(?:restart|reboot)\b",
         lambda m: TimeSpec(m[0], until=_last_restart(restarts))),
        (r"\b(?:since|after)\s+the\s+(?:last|latest|most recent)\s+(?:restart|reboot)\b",
         lambda m: TimeSpec(m[0], since=_last_restart(restarts), until=now)),
        (r"\b(?:before|prior to)\s+the\s+(?:first)\s+(?:restart|reboot)\b",
         lambda m: TimeSpec(m[0], until=_first_restart(restarts))),
        (r"\bat\s+(?:t\s*=\s*)?(?P<x>\d+(?:\.\d+)?)\s*(?:s|sec|seconds)?\b(?!\s*(?:am|pm))",
         lambda m: TimeSpec(m[0], at=float(m["x"]))),
        (r"\bsince\s+(?:t\s*=\s*)?(?P<x>\d+(?:\.\d+)?)\s*(?:s|sec|seconds)?\b",
         lambda m: TimeSpec(m[0], since=float(m["x"]), until=now)),
    ]  # fmt: skip
    for pattern, make in patterns:
        m = re.search(pattern, t)
        if m is None:
            continue
        spec = make(m)  # type: ignore[operator]
        rest = (t[: m.start()] + " " + t[m.end() :]).strip()
        return re.sub(r"\s+", " ", rest).strip(" ,?."), spec
    return text, None


def _first_restart(restarts: Sequence[float]) -> float:
    if not restarts:
        raise TimeWordsError("there was no restart")
    return restarts[0]


def _day_spec(words: str, clock: CellClock, day: int) -> TimeSpec:
    """A whole day: a window, and its end as the point ("where was it yesterday":
    where it was when that day ended)."""
    start = clock.day_start(day)
    return TimeSpec(words, since=start, until=start + clock.day_length_s)
