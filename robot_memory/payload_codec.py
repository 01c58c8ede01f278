"""Payloads in and out of text and dicts (ROS-free): bounded JSON decoding
(``payload too large``, ``malformed json``, nesting too deep), validation of a
dict or JSON text as one of :mod:`robot_memory.schemas`' models, each problem
raised as a :class:`~robot_memory.schemas.PayloadError` with a short reason.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from robot_memory.schemas import MAX_PAYLOAD_CHARS, Payload, PayloadError

P = TypeVar("P", bound=Payload)
M = TypeVar("M", bound=BaseModel)


_DECODER = json.JSONDecoder()  # C scanner; NaN/Infinity decode, the models refuse them


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    """True when ``value`` (decoded JSON) nests deeper than ``max_depth``
    containers; iterative, stops at the first container too deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def decode_json(
    text: str | bytes,
    max_chars: int = MAX_PAYLOAD_CHARS,
    max_depth: int | None = None,
) -> Any:
    """The one JSON decoder for text from the wire (or from a VLM).

    Refuses, always as :class:`PayloadError` and never anything else:
    ``payload too large`` (more than ``max_chars`` characters), ``malformed
    json`` (not JSON, not text, nesting past json's recursion limit or past
    ``max_depth`` when given, integers past Python's 4300-digit limit, bad
    Unicode). NaN and Infinity decode; the models (``allow_inf_nan=False``)
    refuse them as ``invalid payload``."""
    if not isinstance(text, str | bytes | bytearray):
        raise PayloadError("malformed json", f"expected text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise PayloadError("payload too large", f"{len(text)} characters > {max_chars}")
    try:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")
        data = _DECODER.decode(text)
    except RecursionError:
        raise PayloadError("malformed json", "nested too deeply") from None
    except (ValueError, TypeError, UnicodeError, OverflowError, MemoryError) as exc:
        # JSONDecodeError and the 4300-digit integer limit are ValueErrors
        raise PayloadError("malformed json", str(exc)[:200]) from None
    if max_depth is not None and json_depth_exceeds(data, max_depth):
        raise PayloadError("malformed json", f"nested deeper than {max_depth}")
    return data


def parse_payload(model: type[P], text: str, max_chars: int | None = None) -> P:
    """Validate ``text`` as ``model``; raise :class:`PayloadError` on any problem
    (``max_chars``: override the model's own limit)."""
    limit = max_chars or getattr(model, "max_chars", MAX_PAYLOAD_CHARS)
    data = decode_json(text, limit, getattr(model, "max_depth", None))
    if not isinstance(data, dict):
        raise PayloadError("malformed json", "top level must be an object")
    return validate_payload(model, data)


def validate_payload(model: type[M], data: dict[str, Any]) -> M:
    """Validate decoded data (a typed ROS message turned into a dict by the node
    layer, or decoded JSON) as ``model``; raise :class:`PayloadError`
    (``invalid payload``) on any problem: NaN, a value out of bounds, a wrong
    type."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError("invalid payload", first_error(exc, "payload")) from None
    except (RecursionError, ValueError, TypeError) as exc:  # a validator's own failure
        raise PayloadError("invalid payload", f"{type(exc).__name__}: {str(exc)[:200]}") from None


def payload_id(text: str, max_chars: int = MAX_PAYLOAD_CHARS) -> str:
    """Best-effort ``id`` of a payload that failed validation (so the sender
    still gets an answer or a status it can match); "" when unreadable."""
    try:
        data = decode_json(text, max_chars)
    except PayloadError:
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return value[:128] if isinstance(value, str) else ""


def first_error(exc: ValidationError, root: str) -> str:
    """``where: what`` of a validation error's first problem (short, loggable)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or root
    return f"{where}: {first['msg']}"


def dump_payload(payload: Payload) -> str:
    return payload.model_dump_json()
