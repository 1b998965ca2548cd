"""A Python LLM client over HTTPS for the eBPF test: the official ``openai`` SDK against the mock.

    python tls_client.py BASE_URL CA_FILE [--wait]

With ``--wait`` it reads one line from stdin before the first call, so the test can start ``heron run
--ebpf --ebpf-pid <this pid>`` first. CPython's ``ssl`` module uses ``SSL_write_ex``/``SSL_read_ex``
(curl uses the plain forms), so this client exercises the ``size_t *`` length path of the probes.
Prints one JSON line: the response ids it got, in order.
"""

from __future__ import annotations

import json
import sys

import httpx
import openai

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


def main() -> int:
    base, ca = sys.argv[1], sys.argv[2]
    if "--wait" in sys.argv[3:]:
        sys.stdin.readline()
    http = httpx.Client(verify=ca)
    client = openai.OpenAI(base_url=base, api_key="sk-test-ebpf-capture", max_retries=0, http_client=http)
    ids = []
    r = client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "[scenario:cache] hello over TLS"}])
    ids.append(r.id)
    text = ""
    for ch in client.chat.completions.create(
            model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "[scenario:long] stream over TLS"}]):
        if ch.choices:
            text += ch.choices[0].delta.content or ""
        ids.append(ch.id) if ch.id not in ids else None
    assert text
    messages = [{"role": "user", "content": "[scenario:tools] what is the weather in Paris?"}]
    r1 = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER])
    ids.append(r1.id)
    call = r1.choices[0].message.tool_calls[0]
    messages += [r1.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    r2 = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER])
    ids.append(r2.id)
    client.close()
    print(json.dumps({"response_ids": ids}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
