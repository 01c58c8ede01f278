"""The planning backend a planner's parameters ask for: the offline one, or the
VLM one (an OpenAI-compatible server) that falls back to it when it fails."""

from __future__ import annotations

from collections.abc import Mapping

from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.planner.world import PlannerBackend

BACKENDS = ("offline", "vlm")


def make_backend(p: Mapping[str, object], embedder: TextEmbedder | None = None) -> PlannerBackend:
    """``p``: the planner node's parameters (``backend``, ``handover_position``,
    ``day_length_s``, ``day_origin_s``,
    ``vlm.base_url``, ``vlm.model``, ``vlm.api_key_env``, ``vlm.timeout_s``,
    ``vlm.max_retries``, ``vlm.memory_tools``, ``vlm.max_tool_rounds``); raises
    ValueError for an unknown backend."""
    from robot_memory.planner.offline_backend import OfflinePlanner

    if p["backend"] not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {p['backend']!r}")
    from robot_memory.planner.time_words import CellClock

    handover = tuple(float(v) for v in p["handover_position"])  # type: ignore[attr-defined]
    clock = CellClock(
        float(p.get("day_length_s", 86400.0)),  # type: ignore[arg-type]
        float(p.get("day_origin_s", 0.0)),  # type: ignore[arg-type]
    )
    offline = OfflinePlanner(embedder=embedder, handover_position=handover, clock=clock)  # type: ignore[arg-type]
    if p["backend"] == "offline":
        return offline
    from robot_memory.planner.vlm_backend import VLMPlanner
    from robot_memory.planner.vlm_config import VLMConfig

    config = VLMConfig(
        base_url=str(p["vlm.base_url"]),
        model=str(p["vlm.model"]),
        api_key_env=str(p["vlm.api_key_env"]),
        timeout_s=float(p["vlm.timeout_s"]),  # type: ignore[arg-type]
        max_retries=int(p["vlm.max_retries"]),  # type: ignore[call-overload]
        memory_tools=bool(p.get("vlm.memory_tools", False)),
        max_tool_rounds=int(p.get("vlm.max_tool_rounds", 6)),  # type: ignore[call-overload]
    )
    return VLMPlanner(config, fallback=offline)


__all__ = ["BACKENDS", "make_backend"]
