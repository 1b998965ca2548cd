"""SFT export per wire API (interfaces.md §6.4 "Per wire API"): exact messages and tools for hand-made
request/response bodies of all six APIs."""

from __future__ import annotations

from tests.export.sft_helpers import pseudo, single


def test_anthropic_tool_results_thinking_and_tools():
    req = {
        "model": "claude",
        "system": [{"type": "text", "text": "You are helpful."}, {"type": "text", "text": "Be brief."}],
        "tools": [
            {"name": "Bash", "description": "run", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search"},  # server tool: not a function
        ],
        "messages": [
            {"role": "user", "content": "List files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run ls", "signature": "sig"},
                    {"type": "text", "text": "Running ls."},
                    {"type": "tool_use", "id": "toolu01ABCDEFGH", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu01ABCDEFGH",
                        "content": [{"type": "text", "text": "a.txt"}, {"type": "image", "source": {}}],
                    },
                    {"type": "text", "text": "Now count them"},
                ],
            },
        ],
    }
    resp = {
        "type": "message",
        "role": "assistant",
        "stop_reason": "end_turn",
        "content": [
            {"type": "thinking", "thinking": "one file"},
            {"type": "text", "text": "There is 1 file."},
        ],
    }
    rec = single("anthropic", req, resp)
    assert rec["messages"] == [
        {"role": "system", "content": "You are helpful.\nBe brief."},
        {"role": "user", "content": "List files"},
        {
            "role": "assistant",
            "content": "Running ls.",
            "reasoning_content": "I should run ls",
            "tool_calls": [
                {
                    "id": "toolu_01ABCDEFGH",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": {"command": "ls"}},
                }
            ],
        },
        {"role": "tool", "content": "a.txt", "tool_call_id": "toolu_01ABCDEFGH", "name": "Bash"},
        {"role": "user", "content": "Now count them"},
        {"role": "assistant", "content": "There is 1 file.", "reasoning_content": "one file"},
    ]
    assert rec["tools"] == [
        {
            "type": "function",
            "function": {"name": "Bash", "description": "run", "parameters": {"type": "object"}},
        }
    ]
    assert rec["_meta"]["dropped_parts"] == 1
    assert list(rec) == ["messages", "tools", "_meta"]


def test_anthropic_tool_results_only_message_has_no_empty_user_message():
    req = {
        "model": "c",
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "A", "input": {}},
                    {"type": "tool_use", "id": "toolu_2", "name": "B", "input": {"x": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "one", "is_error": True},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "two"},
                ],
            },
        ],
    }
    rec = single("anthropic", req, {"content": [{"type": "text", "text": "ok"}]})
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant", "tool", "tool", "assistant"]
    assert rec["messages"][2] == {"role": "tool", "content": "one", "tool_call_id": "toolu_1", "name": "A"}
    assert rec["messages"][3]["name"] == "B"
    assert rec["messages"][1]["content"] is None
    assert "tools" not in rec  # omitted when empty


def test_openai_chat_pass_through():
    req = {
        "model": "gpt",
        "messages": [
            {"role": "developer", "content": "Sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "image_url", "image_url": {"url": "data:x"}},
                    {"type": "text", "text": "there"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"q": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
        "tools": [{"type": "function", "function": {"name": "get", "description": "d", "parameters": {}}}],
    }
    resp = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "It is 42", "reasoning_content": "think"},
            }
        ],
    }
    rec = single("openai-chat", req, resp)
    assert rec["messages"] == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "Hi\nthere"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": {"q": 1}}}
            ],
        },
        {"role": "tool", "content": "42", "tool_call_id": "call_1", "name": "get"},
        {"role": "assistant", "content": "It is 42", "reasoning_content": "think"},
    ]
    assert rec["tools"] == [
        {"type": "function", "function": {"name": "get", "description": "d", "parameters": {}}}
    ]
    assert rec["_meta"]["dropped_parts"] == 1


def test_openai_chat_unparsable_arguments_and_reasoning_field():
    req = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    resp = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "reasoning": "r",
                    "tool_calls": [{"id": "callABCDEFGH12", "function": {"name": "f", "arguments": "{bad"}}],
                }
            }
        ]
    }
    rec = single("openai-chat", req, resp)
    assert rec["messages"][-1] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "r",
        "tool_calls": [
            {
                "id": "call_ABCDEFGH12",
                "type": "function",
                "function": {"name": "f", "arguments": {"_unparsed": "{bad"}},
            }
        ],
    }


def test_openai_responses_items_merge():
    req = {
        "model": "gpt-5",
        "instructions": "Be good",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "dev rules"}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Fix it"},
                    {"type": "input_image", "image_url": "x"},
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "plan"}],
                "encrypted_content": "opaque",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Looking."}],
            },
            {"type": "function_call", "call_id": "call_a", "name": "shell", "arguments": '{"cmd":"ls"}'},
            {"type": "function_call_output", "call_id": "call_a", "output": "file.py"},
            {"type": "custom_tool_call", "call_id": "call_b", "name": "apply_patch", "input": "*** patch"},
            {"type": "custom_tool_call_output", "call_id": "call_b", "output": "ok"},
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "run", "parameters": {"type": "object"}},
            {"type": "custom", "name": "apply_patch", "description": "patch"},
            {"type": "web_search"},
        ],
    }
    resp = {
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "done"}]},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Fixed."}]},
        ],
    }
    rec = single("openai-responses", req, resp)
    assert rec["messages"] == [
        {"role": "system", "content": "Be good"},
        {"role": "system", "content": "dev rules"},
        {"role": "user", "content": "Fix it"},
        {
            "role": "assistant",
            "content": "Looking.",
            "reasoning_content": "plan",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "shell", "arguments": {"cmd": "ls"}},
                }
            ],
        },
        {"role": "tool", "content": "file.py", "tool_call_id": "call_a", "name": "shell"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": {"input": "*** patch"}},
                }
            ],
        },
        {"role": "tool", "content": "ok", "tool_call_id": "call_b", "name": "apply_patch"},
        {"role": "assistant", "content": "Fixed.", "reasoning_content": "done"},
    ]
    assert [t["function"]["name"] for t in rec["tools"]] == ["shell", "apply_patch"]
    assert rec["tools"][1]["function"]["parameters"]["properties"] == {"input": {"type": "string"}}
    assert rec["_meta"]["dropped_parts"] == 2  # input_image + web_search_call


def test_openai_responses_string_input():
    rec = single(
        "openai-responses",
        {"model": "m", "input": "hello"},
        {
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
            ]
        },
    )
    assert rec["messages"] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]


GEMINI_MODEL_PARTS = [
    {"text": "thinking...", "thought": True},
    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "abc"},
]


def test_gemini_pseudo_ids_thoughts_and_function_responses():
    pid = pseudo('f:get_weather:{"city":"Paris"}')
    req = {
        "systemInstruction": {"parts": [{"text": "Sys"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {"role": "model", "parts": GEMINI_MODEL_PARTS},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "description": "w", "parameters": {"type": "object"}}
                ]
            }
        ],
    }
    resp = {
        "candidates": [
            {
                "index": 0,
                "finishReason": "STOP",
                "content": {"role": "model", "parts": [{"text": "It is "}, {"text": "18C."}]},
            }
        ]
    }
    rec = single("gemini", req, resp, path="/v1beta/models/gemini-2.5-flash:generateContent")
    assert rec["messages"] == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "thinking...",
            "tool_calls": [
                {
                    "id": pid,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": pid, "name": "get_weather"},
        {"role": "assistant", "content": "It is 18C."},
    ]
    assert rec["tools"][0]["function"]["name"] == "get_weather"
    assert rec["_meta"]["dropped_parts"] == 1


def test_gemini_envelope_and_response_pseudo_ids():
    pid = pseudo('t:Checking.\nf:lookup:{"k":2}')
    req = {
        "model": "gemini-2.5-pro",
        "project": "p",
        "user_prompt_id": "u########1",
        "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    }
    resp = {
        "response": {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Checking."},
                            {"functionCall": {"name": "lookup", "args": {"k": 2}}},
                        ],
                    }
                }
            ]
        },
        "traceId": "tr",
    }
    rec = single("gemini", req, resp)
    assert rec["messages"][-1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": pid, "type": "function", "function": {"name": "lookup", "arguments": {"k": 2}}}
        ],
    }


def test_ollama_chat_pseudo_ids_and_thinking():
    pid = pseudo('f:get_weather:{"city":"Paris"}')
    req = {
        "model": "qwen",
        "messages": [
            {"role": "system", "content": "Sys"},
            {"role": "user", "content": "Weather?", "images": ["aGVsbG8="]},
            {
                "role": "assistant",
                "content": "",
                "thinking": "need tool",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "tool_name": "get_weather", "content": "18C"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": {}}}
        ],
    }
    resp = {
        "model": "qwen",
        "message": {"role": "assistant", "content": "It is 18C.", "thinking": "easy"},
        "done": True,
        "done_reason": "stop",
    }
    rec = single("ollama", req, resp, path="/api/chat")
    assert rec["messages"] == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "need tool",
            "tool_calls": [
                {
                    "id": pid,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": pid, "name": "get_weather"},
        {"role": "assistant", "content": "It is 18C.", "reasoning_content": "easy"},
    ]
    assert rec["_meta"]["dropped_parts"] == 1


def test_ollama_generate_and_openai_completions():
    rec = single(
        "ollama",
        {"model": "llama", "prompt": "Why?", "system": "Sys"},
        {"model": "llama", "response": "Because.", "thinking": "hmm", "done": True},
        path="/api/generate",
        operation="text_completion",
    )
    assert rec["messages"] == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because.", "reasoning_content": "hmm"},
    ]
    rec = single(
        "openai-completions",
        {"model": "x", "prompt": "Once upon"},
        {"object": "text_completion", "choices": [{"index": 0, "text": " a time", "finish_reason": "stop"}]},
        path="/v1/completions",
        operation="text_completion",
    )
    assert rec["messages"] == [
        {"role": "user", "content": "Once upon"},
        {"role": "assistant", "content": " a time"},
    ]
