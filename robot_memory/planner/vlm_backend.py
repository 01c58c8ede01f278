"""The VLM planner backend: any OpenAI-compatible chat-completions endpoint (vLLM,
Ollama, llama.cpp server, a cloud API), through the official ``openai`` client.

One :meth:`VLMPlanner.plan` call sends the prompt of
:mod:`robot_memory.planner.vlm_prompt` (skills whitelist, instruction, scene
summary, experiences, optionally the camera image) with a structured-output
``response_format``, reads the answer as JSON data only (never code), and checks
it with :func:`~robot_memory.planner.validation.validate_plan` against
``ctx.world``. A timeout, connection error, HTTP 429/5xx or a rejected answer
is retried (the rejection reason goes back to the model); when the retries are
spent, or on an error a retry cannot fix (HTTP 401/400), the injected
``fallback`` backend (the offline planner) plans instead and its plan says so:
``backend="offline (vlm fallback: timeout)"``.

The API key comes only from the environment variable named by
``VLMConfig.api_key_env``; it is never stored in the config and is redacted from
every log line, exception and counter.
"""

from __future__ import annotations

import logging
import math
import os
import re
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any

from robot_memory.planner.plan import Plan, PlanningError
from robot_memory.planner.validation import PlanValidationError, validate_plan
from robot_memory.planner.vlm_prompt import (
    build_messages,
    image_data_url,
    read_plan,
    response_format,
    retry_message,
)
from robot_memory.planner.world import PlannerBackend, PlanningContext

LOG = logging.getLogger(__name__)

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


class _AttemptError(Exception):
    """One failed attempt: a short reason, a detail, and whether a retry may help."""

    def __init__(self, reason: str, detail: str = "", retry: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.detail, self.retry = reason, detail, retry


class VLMPlanner:
    """A :class:`PlannerBackend` over an OpenAI-compatible endpoint, with a fallback.

    ``counters`` (plain ints) and ``rejected_by_reason`` / ``errors_by_reason``
    are for diagnostics; ``last_failure`` is the latest reason (or "").
    """

    def __init__(
        self,
        config: VLMConfig,
        fallback: PlannerBackend | None = None,
        client: Any = None,
    ) -> None:
        self.config = config
        self.fallback = fallback
        self.name = f"vlm:{config.model}"
        self._secret = os.environ.get(config.api_key_env, "").strip()
        if client is None:
            import openai

            client = openai.OpenAI(
                base_url=config.base_url,
                api_key=self._secret or NO_KEY,
                timeout=config.timeout_s,
                max_retries=0,  # retries are ours: they feed rejections back to the model
            )
        if not self._secret:
            LOG.info("%s: $%s is not set; sending no API key", self.name, config.api_key_env)
        self._client = client
        self.counters: dict[str, int] = {
            "calls": 0,
            "requests": 0,
            "retries": 0,
            "vlm_plans": 0,
            "rejected": 0,
            "errors": 0,
            "fallbacks": 0,
            "images_sent": 0,
            "images_skipped": 0,
        }
        self.rejected_by_reason: dict[str, int] = {}
        self.errors_by_reason: dict[str, int] = {}
        self.last_failure = ""

    def __repr__(self) -> str:
        return f"VLMPlanner({self.config!r}, fallback={getattr(self.fallback, 'name', None)!r})"

    def diagnostics(self) -> dict[str, Any]:
        """Counters for ``/diagnostics`` (no secrets)."""
        return {
            **self.counters,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "errors_by_reason": dict(self.errors_by_reason),
            "last_failure": self.last_failure,
        }

    # -- planning -------------------------------------------------------------
    def plan(self, ctx: PlanningContext) -> Plan:
        """A validated plan from the VLM, or the fallback's plan; PlanningError when the
        VLM failed and there is no fallback."""
        self.counters["calls"] += 1
        plan_id = f"vlm-{uuid.uuid4().hex[:12]}"
        messages = build_messages(ctx, self._image(ctx))
        fmt = response_format(ctx.world, self.config.structured_output)
        failure = _AttemptError("no attempt")
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self.counters["retries"] += 1
            try:
                content, finish = self._ask(messages, fmt)
            except _AttemptError as exc:
                failure = exc
                self._count(self.errors_by_reason, "errors", exc.reason)
                LOG.warning(
                    "%s: attempt %d/%d failed: %s",
                    self.name,
                    attempt + 1,
                    self.config.max_retries + 1,
                    self._redact(f"{exc.reason} ({exc.detail})" if exc.detail else exc.reason),
                )
                if not exc.retry:
                    break
                continue
            try:
                plan = read_plan(content, finish, plan_id=plan_id, ctx=ctx)
                validate_plan(plan, ctx.world, held=ctx.held)
            except PlanValidationError as exc:
                failure = _AttemptError(exc.reason, self._redact(str(exc)))
                self._count(self.rejected_by_reason, "rejected", exc.reason)
                LOG.warning(
                    "%s: plan rejected (attempt %d/%d): %s",
                    self.name,
                    attempt + 1,
                    self.config.max_retries + 1,
                    failure.detail,
                )
                messages = [
                    *messages,
                    {"role": "assistant", "content": (content or "")[:4000]},
                    retry_message(failure.detail),
                ]
                continue
            self.counters["vlm_plans"] += 1
            self.last_failure = ""
            plan.backend = self.name
            LOG.info("%s: plan %s: %s", self.name, plan.id, plan.describe())
            return plan
        return self._fall_back(ctx, failure)

    def _fall_back(self, ctx: PlanningContext, failure: _AttemptError) -> Plan:
        self.last_failure = failure.reason
        if self.fallback is None:
            raise PlanningError(f"vlm {failure.reason}", self._redact(failure.detail))
        self.counters["fallbacks"] += 1
        LOG.warning(
            "%s: falling back to %s (%s)",
            self.name,
            getattr(self.fallback, "name", "fallback"),
            failure.reason,
        )
        plan = self.fallback.plan(ctx)
        return plan.model_copy(
            update={
                "backend": f"{plan.backend} (vlm fallback: {failure.reason})",
                "notes": [*plan.notes, f"vlm {self.config.model} failed: {failure.reason}"][-20:],
            }
        )

    # -- one request ----------------------------------------------------------
    def _ask(self, messages: list[dict], fmt: dict | None) -> tuple[str | None, str | None]:
        """One chat.completions call -> (content, finish_reason); raise _AttemptError on failure."""
        import openai

        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "timeout": self.config.timeout_s,
        }
        if fmt is not None:
            kwargs["response_format"] = fmt
        self.counters["requests"] += 1
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise _AttemptError(
                "timeout", f"no answer within {self.config.timeout_s:g} s"
            ) from None
        except openai.APIConnectionError as exc:
            raise _AttemptError("connection error", self._redact(str(exc))[:200]) from None
        except openai.APIStatusError as exc:
            code = exc.status_code
            retry = code in (408, 409, 429) or code >= 500
            raise _AttemptError(
                f"http {code}", self._redact(str(exc.message))[:200], retry
            ) from None
        except openai.APIResponseValidationError as exc:
            raise _AttemptError("bad response", self._redact(str(exc))[:200]) from None
        except openai.OpenAIError as exc:
            raise _AttemptError("client error", self._redact(str(exc))[:200], False) from None
        choices = getattr(response, "choices", None) or []
        if not choices or getattr(choices[0], "message", None) is None:
            raise _AttemptError("bad response", "no choices in the completion")
        choice = choices[0]
        return choice.message.content, choice.finish_reason

    def _image(self, ctx: PlanningContext) -> str | None:
        if not self.config.send_image or ctx.image is None:
            return None
        try:
            url = image_data_url(ctx.image, self.config.image_format, self.config.image_max_side)
        except ValueError as exc:
            self.counters["images_skipped"] += 1
            LOG.warning("%s: image not sent: %s", self.name, exc)
            return None
        self.counters["images_sent"] += 1
        return url

    def _count(self, table: dict[str, int], total: str, reason: str) -> None:
        self.counters[total] += 1
        table[reason] = table.get(reason, 0) + 1
        self.last_failure = reason

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


__all__ = ["STRUCTURED_OUTPUT_MODES", "VLMConfig", "VLMConfigError", "VLMPlanner"]
