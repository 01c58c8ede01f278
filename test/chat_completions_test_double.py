"""TEST DOUBLE of an OpenAI-compatible chat-completions server (for tests only).

:class:`ChatCompletionsTestDouble` is a real HTTP server on 127.0.0.1 (an
ephemeral port, a background thread) that speaks the chat-completions protocol
the way vLLM, Ollama or llama.cpp server do: ``POST /v1/chat/completions`` with
the OpenAI request JSON returns a ``chat.completion`` object (``id``,
``object``, ``created``, ``model``, ``choices[0].message.content``,
``finish_reason``, ``usage``); a wrong ``Authorization: Bearer`` key gets 401.

It is scripted per test: a queue of :class:`ScriptedReply` behaviours (this
content; garbage; sleep past the client's timeout; HTTP 500; ...), consumed
one per request (a reply may call tools: ``tool_calls`` with ``finish_reason``
"tool_calls", as a model with function calling does). Every request is
recorded (:attr:`requests`) so tests can look at the messages, the image part
and the ``response_format`` schema. It plans nothing and knows nothing of
robots: what it answers is what the test scripted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedReply:
    """One scripted behaviour of the test double."""

    content: str | None = None  # choices[0].message.content
    finish_reason: str = "stop"
    status: int = 200  # != 200: an OpenAI-style error body with this status
    delay_s: float = 0.0  # sleep before answering (longer than the client's timeout: a timeout)
    raw_body: bytes | None = None  # sent as is (a broken server)
    echo_auth_in_error: bool = False  # a misbehaving proxy that echoes the Authorization header
    tool_calls: list[tuple[str, str]] | None = None  # (function name, arguments JSON text)


@dataclass
class RecordedRequest:
    path: str
    body: dict[str, Any]
    authorized: bool
    reply: ScriptedReply | None = None
    received: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    def texts(self) -> list[str]:
        """Every text in the messages (plain content and text parts)."""
        out = []
        for m in self.messages:
            c = m.get("content")
            if isinstance(c, str):
                out.append(c)
            elif isinstance(c, list):
                out += [p.get("text", "") for p in c if p.get("type") == "text"]
        return out

    def image_urls(self) -> list[str]:
        return [
            p["image_url"]["url"]
            for m in self.messages
            if isinstance(m.get("content"), list)
            for p in m["content"]
            if p.get("type") == "image_url"
        ]


class ChatCompletionsTestDouble:
    """A scripted, recording chat-completions server; use as a context manager."""

    def __init__(self, api_key: str = "test-double-key") -> None:
        self.api_key = api_key
        self.script: deque[ScriptedReply] = deque()
        self.requests: list[RecordedRequest] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chat-completions-test-double",
            daemon=True,
        )

    # -- life cycle -------------------------------------------------------------
    def __enter__(self) -> ChatCompletionsTestDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()  # wakes handlers sleeping in a scripted delay
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- scripting --------------------------------------------------------------
    def push(self, *replies: ScriptedReply) -> ChatCompletionsTestDouble:
        with self._lock:
            self.script.extend(replies)
        return self

    def push_content(self, content: str | dict, finish_reason: str = "stop") -> None:
        text = content if isinstance(content, str) else json.dumps(content)
        self.push(ScriptedReply(content=text, finish_reason=finish_reason))

    def push_status(self, status: int, echo_auth_in_error: bool = False) -> None:
        self.push(ScriptedReply(status=status, echo_auth_in_error=echo_auth_in_error))

    def push_tool_calls(self, *calls: tuple[str, str | dict]) -> None:
        """One reply that calls tools: (name, arguments as a dict or raw text)."""
        text = [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls]
        self.push(ScriptedReply(tool_calls=text, finish_reason="tool_calls"))

    def push_sleep(self, delay_s: float, content: str | dict = "{}") -> None:
        text = content if isinstance(content, str) else json.dumps(content)
        self.push(ScriptedReply(content=text, delay_s=delay_s))

    def _next(self) -> ScriptedReply | None:
        with self._lock:
            return self.script.popleft() if self.script else None

    # -- HTTP -------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read double.requests instead

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def _error(self, status: int, message: str, code: str) -> None:
                err = {"error": {"message": message, "type": "server_error", "code": code}}
                self._send(status, json.dumps(err).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                auth = self.headers.get("Authorization", "")
                authorized = auth == f"Bearer {double.api_key}"
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                rec = RecordedRequest(self.path, body, authorized)
                with double._lock:
                    double.requests.append(rec)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._error(404, f"no route {self.path}", "not_found")
                    return
                if not authorized:
                    self._error(401, "Incorrect API key provided.", "invalid_api_key")
                    return
                reply = rec.reply = double._next()
                if reply is None:
                    self._error(500, "test double: no scripted reply left", "unscripted")
                    return
                if reply.delay_s and double._stop.wait(reply.delay_s):
                    return
                if reply.raw_body is not None:
                    self._send(reply.status, reply.raw_body)
                elif reply.status != 200:
                    msg = f"scripted HTTP {reply.status}"
                    if reply.echo_auth_in_error:
                        msg += f" (received Authorization: {auth})"
                    self._error(reply.status, msg, "scripted")
                else:
                    self._send(200, json.dumps(double.completion(body, reply)).encode())

        return Handler

    @staticmethod
    def completion(request: dict[str, Any], reply: ScriptedReply) -> dict[str, Any]:
        """A ``chat.completion`` object as the OpenAI API returns it."""
        prompt_chars = len(json.dumps(request.get("messages", [])))
        completion_chars = len(reply.content or "")
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}_{uuid.uuid4().hex[:8]}", "type": "function",
                 "function": {"name": name, "arguments": arguments}}
                for i, (name, arguments) in enumerate(reply.tool_calls)
            ]  # fmt: skip
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", ""),
            "system_fingerprint": "test-double",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": completion_chars // 4,
                "total_tokens": (prompt_chars + completion_chars) // 4,
            },
        }


__all__ = ["ChatCompletionsTestDouble", "RecordedRequest", "ScriptedReply"]
