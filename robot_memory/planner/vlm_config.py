"""Where and how the VLM planner asks: :class:`VLMConfig` (ROS-free, no network).

Validated at construction (every problem named in one :class:`VLMConfigError`);
it holds the *name* of the API key's environment variable, never the key.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

STRUCTURED_OUTPUT_MODES = ("json_schema", "json_object", "none")
IMAGE_FORMATS = ("jpeg", "png")
#: Sent when the key variable is unset: local servers (vLLM, Ollama, llama.cpp)
#: accept any key unless started with one.
NO_KEY = "EMPTY"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class VLMConfigError(ValueError):
    """A VLM configuration that cannot work; the message says which field and why."""


@dataclass(frozen=True)
class VLMConfig:
    """Where and how to ask the VLM. Holds the *name* of the key variable, never the key."""

    base_url: str = "http://localhost:8000/v1"
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 20.0
    max_retries: int = 2
    temperature: float = 0.0
    send_image: bool = True
    structured_output: str = "json_schema"  # json_schema | json_object | none
    max_tokens: int = 1024
    image_format: str = "jpeg"  # jpeg | png
    image_max_side: int = 640
    memory_tools: bool = False  # memory's queries as tools instead of a graph summary
    max_tool_rounds: int = 6  # model turns that may call tools before it must plan

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.base_url, str) or not re.match(r"^https?://[^\s/]+", self.base_url):
            problems.append("base_url must be an http(s) URL, e.g. http://localhost:8000/v1")
        if not isinstance(self.model, str) or not self.model.strip():
            problems.append("model must name the served model, e.g. Qwen/Qwen2.5-VL-7B-Instruct")
        if not isinstance(self.api_key_env, str) or not _ENV_NAME.match(self.api_key_env):
            # The value is not echoed: a key pasted here by mistake must not reach a log.
            problems.append(
                "api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), "
                "not the key itself"
            )
        if not _number(self.timeout_s) or not 0 < self.timeout_s <= 600:
            problems.append(f"timeout_s must be in (0, 600] s, got {self.timeout_s!r}")
        if not _int(self.max_retries) or not 0 <= self.max_retries <= 10:
            problems.append(f"max_retries must be an integer in [0, 10], got {self.max_retries!r}")
        if not _number(self.temperature) or not 0.0 <= self.temperature <= 2.0:
            problems.append(f"temperature must be in [0, 2], got {self.temperature!r}")
        if not isinstance(self.send_image, bool):
            problems.append(f"send_image must be true or false, got {self.send_image!r}")
        if self.structured_output not in STRUCTURED_OUTPUT_MODES:
            problems.append(
                f"structured_output must be one of {list(STRUCTURED_OUTPUT_MODES)}, "
                f"got {self.structured_output!r}"
            )
        if not _int(self.max_tokens) or not 16 <= self.max_tokens <= 32768:
            problems.append(
                f"max_tokens must be an integer in [16, 32768], got {self.max_tokens!r}"
            )
        if self.image_format not in IMAGE_FORMATS:
            problems.append(
                f"image_format must be one of {list(IMAGE_FORMATS)}, got {self.image_format!r}"
            )
        if not _int(self.image_max_side) or not 32 <= self.image_max_side <= 4096:
            problems.append(f"image_max_side must be in [32, 4096], got {self.image_max_side!r}")
        if not isinstance(self.memory_tools, bool):
            problems.append(f"memory_tools must be true or false, got {self.memory_tools!r}")
        if not _int(self.max_tool_rounds) or not 1 <= self.max_tool_rounds <= 20:
            problems.append(f"max_tool_rounds must be in [1, 20], got {self.max_tool_rounds!r}")
        if problems:
            raise VLMConfigError("invalid VLM config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLMConfig:
        """From a parameters / YAML dict; unknown keys and an inline key are refused."""
        if not isinstance(data, dict):
            raise VLMConfigError("a VLM config is a mapping of field -> value")
        if "api_key" in data:
            raise VLMConfigError(
                "api_key is not a config field: put the key in the environment variable "
                "named by api_key_env (default OPENAI_API_KEY)"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise VLMConfigError(f"unknown VLM config field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_env(cls, prefix: str = "ROBOT_MEMORY_VLM_", **overrides: Any) -> VLMConfig:
        """From ``<prefix><FIELD>`` variables (``ROBOT_MEMORY_VLM_BASE_URL``, ``..._MODEL``,
        ``..._TIMEOUT_S``, ...), then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(prefix + f.name.upper())
            if raw is None:
                continue
            default = f.default
            try:
                if isinstance(default, bool):
                    if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError("expected true or false")
                    values[f.name] = raw.strip().lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw.strip()
            except ValueError as exc:
                raise VLMConfigError(f"{prefix}{f.name.upper()}: {exc}") from None
        values.update(overrides)
        return cls.from_dict(values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


__all__ = ["NO_KEY", "STRUCTURED_OUTPUT_MODES", "VLMConfig", "VLMConfigError"]
