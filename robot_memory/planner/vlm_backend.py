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

With ``memory_tools`` the model gets no summary of the whole graph: it calls
memory's queries as tools (:mod:`robot_memory.planner.vlm_tools`), each call
validated like a plan (an unknown tool or bad arguments are answered with the
reason and counted, nothing queried), for at most ``max_tool_rounds`` turns
before it must answer ("tool loop" otherwise, and the fallback plans).

The API key comes only from the environment variable named by
``VLMConfig.api_key_env``; it is never stored in the config and is redacted from
every log line, exception and counter.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any

from robot_memory.image_encoding import image_data_url
from robot_memory.planner.plan import Plan, PlanningError
from robot_memory.planner.validation import PlanValidationError, validate_plan
from robot_memory.planner.vlm_config import NO_KEY, VLMConfig
from robot_memory.planner.vlm_prompt import (
    build_messages,
    read_plan,
    response_format,
    retry_message,
)
from robot_memory.planner.vlm_tools import ToolCallError, parse_call, run_call, tool_specs
from robot_memory.planner.world import PlannerBackend, PlanningContext

LOG = logging.getLogger(__name__)


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
            "tool_calls": 0,
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
        tools = self.config.memory_tools and ctx.memory is not None
        messages = build_messages(ctx, self._image(ctx), memory_tools=tools)
        fmt = response_format(ctx.world, self.config.structured_output)
        failure = _AttemptError("no attempt")
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self.counters["retries"] += 1
            try:
                if tools:
                    content, finish = self._ask_with_tools(messages, fmt, ctx)
                else:
                    message, finish = self._ask(messages, fmt)
                    content = message.content
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

    # -- memory as tools -------------------------------------------------------
    def _ask_with_tools(
        self, messages: list[dict], fmt: dict | None, ctx: PlanningContext
    ) -> tuple[str | None, str | None]:
        """Turns of the model calling memory tools (``messages`` grows with them),
        until it answers with content; a model still calling tools after
        ``max_tool_rounds`` turns fails the attempt ("tool loop")."""
        specs = tool_specs()
        for _ in range(self.config.max_tool_rounds):
            message, finish = self._ask(messages, fmt, specs)
            calls = list(getattr(message, "tool_calls", None) or [])
            if not calls:
                return message.content, finish
            messages.append({"role": "assistant", "content": message.content, "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in calls
            ]})  # fmt: skip
            for call in calls:
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": self._run_tool(call, ctx)})  # fmt: skip
        raise _AttemptError(
            "tool loop", f"still calling tools after {self.config.max_tool_rounds} turns", False
        )

    def _run_tool(self, call: Any, ctx: PlanningContext) -> str:
        name = getattr(call.function, "name", None)
        try:
            args = parse_call(name, getattr(call.function, "arguments", None))
        except ToolCallError as exc:
            self._count(self.rejected_by_reason, "rejected", f"tool: {exc.reason}")
            LOG.warning("%s: tool call refused: %s", self.name, self._redact(str(exc))[:300])
            return json.dumps({"ok": False, "error": str(exc)[:300]})
        self.counters["tool_calls"] += 1
        assert ctx.memory is not None
        return run_call(args, ctx.memory)

    # -- one request ----------------------------------------------------------
    def _ask(
        self, messages: list[dict], fmt: dict | None, tools: list[dict] | None = None
    ) -> tuple[Any, str | None]:
        """One chat.completions call -> (message, finish_reason); raise _AttemptError on failure."""
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
        if tools:
            kwargs["tools"] = tools
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
        return choice.message, choice.finish_reason

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


__all__ = ["VLMPlanner"]
