"""Renderers for the six LLM wire APIs; :func:`render` dispatches on ``plan.api``."""
from __future__ import annotations

import random

from . import anthropic, gemini, ollama, openai_chat, responses
from .common import CallPlan, Msg, Rendered, ToolCall, Usage

WIRE_APIS = ("anthropic", "openai-chat", "openai-responses", "gemini", "ollama", "openai-completions")

# outcomes each renderer can produce (stream_error needs an in-band error format)
OUTCOMES_BY_API = {
    "anthropic": ("stop", "length", "tool_use", "refusal", "http_429", "http_500", "stream_error"),
    "openai-chat": ("stop", "length", "tool_use", "refusal", "http_429", "http_500", "stream_error"),
    "openai-responses": ("stop", "length", "tool_use", "refusal", "http_429", "http_500", "stream_error"),
    "gemini": ("stop", "length", "tool_use", "refusal", "http_429", "http_500"),
    "ollama": ("stop", "length", "tool_use", "http_500", "stream_error"),
    "openai-completions": ("stop", "length", "http_500"),
}


def render(plan: CallPlan, rng: random.Random) -> Rendered:
    if plan.api == "anthropic":
        return anthropic.render(plan, rng)
    if plan.api == "openai-chat":
        return openai_chat.render(plan, rng)
    if plan.api == "openai-completions":
        return openai_chat.render_completions(plan, rng)
    if plan.api == "openai-responses":
        return responses.render(plan, rng)
    if plan.api == "gemini":
        return gemini.render(plan, rng)
    if plan.api == "ollama":
        return ollama.render(plan, rng)
    raise ValueError(f"unknown wire api {plan.api!r}")


__all__ = ["CallPlan", "Msg", "Rendered", "ToolCall", "Usage", "WIRE_APIS", "OUTCOMES_BY_API", "render"]
