"""Wire request/response bodies → one neutral chat history (interfaces.md §6.4 "Per wire API").

Both the SFT export and the call-detail conversation view read the six wire APIs through this package,
so the two always agree on what a conversation *is*: which text is system, user or assistant, where
reasoning lives, which tool call a result answers. The output is a list of ``Message`` objects in the
OpenAI-chat role vocabulary (``system``, ``user``, ``assistant``, ``tool``); ``sft_message`` renders one
as an SFT message dict.

Rules shared by every API:

* distinct text parts of one message are joined with ``\\n`` (the separator ``content_text`` uses for
  previews), thinking/reasoning likewise — except Gemini, whose adjacent text parts are pieces of one
  text (streams split it anywhere) and are concatenated;
* non-text parts (images, documents, audio, opaque reasoning, server-tool blocks, item references) are
  dropped and their types recorded in ``Message.dropped`` (counted in ``_meta.dropped_parts``);
* tool-call ids are canonical (agents-and-turns.md §6.1); id-less calls get the §6.2 pseudo ids via the
  wire modules' own ``message_call_ids``, so a result resent in a later history pairs with the same id;
* tool arguments are always objects (``parse_tool_arguments``); a tool message's ``name`` is the one the
  result carries, else the name of the call it answers.
"""

from __future__ import annotations

from typing import Any

from heron_core.export.messages import anthropic, gemini, ollama, openai
from heron_core.export.messages.common import (
    Message,
    ToolCallMsg,
    Trajectory,
    Unparseable,
    sft_message,
    sft_tool,
)

__all__ = ["Message", "ToolCallMsg", "Trajectory", "Unparseable", "WIRE_APIS", "request_trajectory",
           "response_message", "sft_message", "sft_tool", "trajectory"]

WIRE_APIS = ("anthropic", "openai-chat", "openai-responses", "gemini", "ollama", "openai-completions")

_REQUEST = {
    "anthropic": anthropic.request,
    "openai-chat": openai.chat_request,
    "openai-responses": openai.responses_request,
    "gemini": gemini.request,
    "ollama": ollama.request,
    "openai-completions": openai.completions_request,
}
_RESPONSE = {
    "anthropic": anthropic.response,
    "openai-chat": openai.chat_response,
    "openai-responses": openai.responses_response,
    "gemini": gemini.response,
    "ollama": ollama.response,
    "openai-completions": openai.completions_response,
}


def request_trajectory(wire_api: str, request: Any) -> Trajectory:
    """The request's history and tool definitions. Raises ``Unparseable`` on a foreign shape."""
    fn = _REQUEST.get(wire_api)
    if fn is None:
        raise Unparseable(f"unknown wire api {wire_api!r}")
    if not isinstance(request, dict):
        raise Unparseable("request body is not a JSON object")
    return fn(request)


def response_message(wire_api: str, response_object: Any) -> Message:
    """The assistant message the call generated, from its rebuilt ``response_object``."""
    fn = _RESPONSE.get(wire_api)
    if fn is None:
        raise Unparseable(f"unknown wire api {wire_api!r}")
    if not isinstance(response_object, dict):
        raise Unparseable("response object is not a JSON object")
    return fn(response_object)


def trajectory(wire_api: str, request: Any, response_object: Any) -> Trajectory:
    """Request history + the generated assistant message: one call's whole conversation."""
    traj = request_trajectory(wire_api, request)
    traj.messages.append(response_message(wire_api, response_object))
    return traj
