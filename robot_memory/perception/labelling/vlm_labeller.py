"""Object categories from any OpenAI-compatible vision model (vLLM, Ollama,
llama.cpp server, a cloud API): the crop of a tracked object is sent once, the
model picks a category, the answer is cached for the track (``tracked.py``).

The request asks for JSON ``{"category": ...}`` constrained to the categories
(``response_format`` json_schema, ``structured_output`` "json_object" or "none"
for servers without it); any answer that is not one of the categories or
"unknown" is garbage: counted, and the feature labeller keeps answering.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from robot_memory.image_encoding import image_data_url
from robot_memory.perception.labelling.base import UNKNOWN, Label, Labeller, ObjectCrop
from robot_memory.perception.labelling.tracked import (
    SlowLabelError,
    TrackedLabeller,
    TrackingConfig,
)

PROMPT = (
    "The image is a crop around one object on a robot's table (other objects may show at "
    "the edges). Which one of these is the object in the centre: {choices}? "
    'Answer JSON only: {{"category": "<one of them>"}}, or {{"category": "unknown"}}.'
)


@dataclass(frozen=True)
class VlmLabellerConfig:
    base_url: str = "http://localhost:8000/v1"
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key
    timeout_s: float = 10.0
    structured_output: str = "json_schema"  # json_schema | json_object | none
    image_max_side: int = 224

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^\s/]+", self.base_url):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if not self.model:
            raise ValueError("model is required (the served model's name)")
        if not 0 < self.timeout_s <= 120:
            raise ValueError(f"timeout_s must be in (0, 120], got {self.timeout_s}")
        if self.structured_output not in ("json_schema", "json_object", "none"):
            raise ValueError(
                "structured_output: json_schema | json_object | none, "
                f"not {self.structured_output!r}"
            )
        if self.image_max_side < 16:
            raise ValueError("image_max_side must be >= 16")


class VlmCategoryClient:
    """One crop -> one category, or :class:`SlowLabelError` (timeout, http, garbage)."""

    def __init__(self, config: VlmLabellerConfig, categories: tuple[str, ...], client: Any = None):
        self.config, self.categories = config, categories
        if client is None:
            import openai

            key = os.environ.get(config.api_key_env, "").strip() or "no-key"
            client = openai.OpenAI(
                base_url=config.base_url, api_key=key, timeout=config.timeout_s, max_retries=0
            )
        self._client = client

    def _response_format(self) -> dict | None:
        if self.config.structured_output == "json_object":
            return {"type": "json_object"}
        if self.config.structured_output == "none":
            return None
        schema = {
            "type": "object",
            "properties": {"category": {"type": "string", "enum": [*self.categories, UNKNOWN]}},
            "required": ["category"],
            "additionalProperties": False,
        }
        return {
            "type": "json_schema",
            "json_schema": {"name": "category", "strict": True, "schema": schema},
        }

    def __call__(self, crop: ObjectCrop) -> Label:
        import openai

        if crop.image.size == 0:
            raise SlowLabelError("empty crop")
        prompt = PROMPT.format(choices=", ".join(self.categories))
        content = [
            {"type": "text", "text": prompt},
            {
                "type": "image_url",
                "image_url": {"url": image_data_url(crop.image, "png", self.config.image_max_side)},
            },
        ]
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0.0,
            "max_tokens": 32,
            "timeout": self.config.timeout_s,
        }
        fmt = self._response_format()
        if fmt is not None:
            kwargs["response_format"] = fmt
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise SlowLabelError(
                "timeout", f"no answer within {self.config.timeout_s:g} s"
            ) from None
        except openai.APIConnectionError:
            raise SlowLabelError("connection error") from None
        except openai.APIStatusError as exc:
            raise SlowLabelError(f"http {exc.status_code}") from None
        except openai.OpenAIError as exc:
            raise SlowLabelError("client error", type(exc).__name__) from None
        return Label(self._read(response), 1.0, "vlm")

    def _read(self, response: Any) -> str:
        try:
            text = response.choices[0].message.content
            answer = json.loads(text)
            category = answer["category"]
        except (AttributeError, IndexError, TypeError, KeyError, ValueError):
            raise SlowLabelError("garbage", "not JSON with a category") from None
        if not isinstance(category, str):
            raise SlowLabelError("garbage", "category is not a string")
        category = category.strip().lower()
        if category == UNKNOWN or category == "unknown":
            return UNKNOWN
        if category not in self.categories:
            raise SlowLabelError("not a category", category[:40])
        return category


def vlm_labeller(
    config: VlmLabellerConfig,
    fallback: Labeller,
    categories: tuple[str, ...] | None = None,
    tracking: TrackingConfig | None = None,
    client: Any = None,
) -> TrackedLabeller:
    """The VLM labeller: ``categories`` default to the fallback's."""
    categories = tuple(categories or fallback.categories)
    ask = VlmCategoryClient(config, categories, client)
    return TrackedLabeller(ask, fallback, categories, tracking or TrackingConfig(), "vlm")
