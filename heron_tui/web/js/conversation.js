// A call's conversation from its stored request and rebuilt response (wire-apis.md shapes), as display
// blocks {kind: system|user|assistant|thinking|tool_call|tool_result|note, text, name, id, args, error}.

const str = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v, null, 2));

function parseArgs(a) {
  if (typeof a !== "string") return a ?? null;
  try { return JSON.parse(a); } catch { return a; }
}

/** Text of a content field that may be a string or a list of parts. */
function partsText(content) {
  if (content === null || content === undefined) return null;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return str(content);
  return content.map((p) => {
    if (typeof p === "string") return p;
    if (p.text !== undefined) return p.text;
    if (p.type === "image" || p.type === "image_url" || p.type === "input_image") return "[image]";
    return `[${p.type || "part"}]`;
  }).join("\n");
}

// --- Anthropic Messages -----------------------------------------------------------------------------

function anthropicBlocks(role, content, out) {
  if (typeof content === "string") { out.push({ kind: role, text: content }); return; }
  const texts = [];
  const flush = () => { if (texts.length) out.push({ kind: role, text: texts.join("\n") }); texts.length = 0; };
  for (const b of content || []) {
    if (b.type === "text") texts.push(b.text);
    else if (b.type === "thinking" || b.type === "redacted_thinking") { flush(); out.push({ kind: "thinking", text: b.thinking ?? "[redacted]" }); }
    else if (b.type === "tool_use" || b.type === "server_tool_use") { flush(); out.push({ kind: "tool_call", name: b.name, id: b.id, args: b.input }); }
    else if (b.type === "tool_result") { flush(); out.push({ kind: "tool_result", id: b.tool_use_id, text: partsText(b.content), error: !!b.is_error }); }
    else texts.push(`[${b.type}]`);
  }
  flush();
}

function anthropic(req, res) {
  const out = [];
  if (req) {
    if (req.system) out.push({ kind: "system", text: partsText(req.system) });
    for (const m of req.messages || []) anthropicBlocks(m.role, m.content, out);
  }
  const resp = [];
  if (res) anthropicBlocks("assistant", res.content, resp);
  return [out, resp];
}

// --- OpenAI Chat Completions and Ollama chat -------------------------------------------------------

function chatMessage(m, out) {
  const role = m.role === "developer" ? "system" : m.role;
  if (m.reasoning_content || m.reasoning || m.thinking) out.push({ kind: "thinking", text: str(m.reasoning_content || m.reasoning || m.thinking) });
  if (role === "tool") { out.push({ kind: "tool_result", id: m.tool_call_id, name: m.name, text: partsText(m.content) }); return; }
  const text = partsText(m.content);
  if (text || !(m.tool_calls || []).length) out.push({ kind: role, text: text ?? "" });
  for (const tc of m.tool_calls || []) {
    out.push({ kind: "tool_call", id: tc.id, name: tc.function?.name ?? tc.name, args: parseArgs(tc.function?.arguments ?? tc.arguments) });
  }
}

function openaiChat(req, res) {
  const out = [];
  for (const m of req?.messages || []) chatMessage(m, out);
  const resp = [];
  const msg = res?.choices?.[0]?.message;
  if (msg) chatMessage({ ...msg, role: "assistant" }, resp);
  else if (res?.message) chatMessage({ ...res.message, role: "assistant" }, resp); // ollama chat
  return [out, resp];
}

// --- OpenAI Responses ---------------------------------------------------------------------------------

function responsesItems(items, out, defaultRole) {
  if (typeof items === "string") { out.push({ kind: defaultRole, text: items }); return; }
  for (const it of items || []) {
    const type = it.type || (it.role ? "message" : "");
    if (type === "message") {
      const role = it.role === "developer" ? "system" : it.role || defaultRole;
      out.push({ kind: role, text: partsText(it.content) ?? "" });
    } else if (type === "reasoning") {
      const text = (it.summary || []).map((p) => p.text).join("\n") || partsText(it.content) || "[reasoning]";
      out.push({ kind: "thinking", text });
    } else if (type.endsWith("_call_output")) {
      out.push({ kind: "tool_result", id: it.call_id, text: str(it.output) });
    } else if (type.endsWith("_call")) {
      out.push({ kind: "tool_call", id: it.call_id || it.id, name: it.name || type, args: parseArgs(it.arguments ?? it.input ?? it.action) });
    } else {
      out.push({ kind: "note", text: `[${type || "item"}]` });
    }
  }
}

function openaiResponses(req, res) {
  const out = [];
  if (req?.instructions) out.push({ kind: "system", text: str(req.instructions) });
  responsesItems(req?.input, out, "user");
  const resp = [];
  responsesItems(res?.output, resp, "assistant");
  return [out, resp];
}

// --- Gemini (incl. the Code Assist envelope) ---------------------------------------------------------

function geminiParts(role, parts, out) {
  const texts = [];
  const flush = () => { if (texts.length) out.push({ kind: role, text: texts.join("\n") }); texts.length = 0; };
  for (const p of parts || []) {
    if (p.text !== undefined && p.thought) { flush(); out.push({ kind: "thinking", text: p.text }); }
    else if (p.text !== undefined) texts.push(p.text);
    else if (p.functionCall) { flush(); out.push({ kind: "tool_call", name: p.functionCall.name, id: p.functionCall.id, args: p.functionCall.args }); }
    else if (p.functionResponse) { flush(); out.push({ kind: "tool_result", name: p.functionResponse.name, id: p.functionResponse.id, text: str(p.functionResponse.response) }); }
    else texts.push(`[${Object.keys(p)[0] || "part"}]`);
  }
  flush();
}

function gemini(req, res) {
  const r = req?.request && req.request.contents ? req.request : req; // Code Assist envelope
  const out = [];
  if (r?.systemInstruction) geminiParts("system", r.systemInstruction.parts, out);
  for (const c of r?.contents || []) geminiParts(c.role === "model" ? "assistant" : "user", c.parts, out);
  const body = res?.response && res.response.candidates ? res.response : res;
  const resp = [];
  geminiParts("assistant", body?.candidates?.[0]?.content?.parts, resp);
  return [out, resp];
}

// --- Completions (OpenAI legacy, Ollama generate) ----------------------------------------------------

function completions(req, res) {
  const out = [];
  if (req?.system) out.push({ kind: "system", text: str(req.system) });
  if (req?.prompt !== undefined) out.push({ kind: "user", text: Array.isArray(req.prompt) ? req.prompt.join("\n") : str(req.prompt) });
  const resp = [];
  const text = res?.choices?.[0]?.text ?? res?.response;
  if (res?.thinking) resp.push({ kind: "thinking", text: str(res.thinking) });
  if (text !== undefined) resp.push({ kind: "assistant", text: str(text) });
  return [out, resp];
}

/**
 * Blocks for a call. req/res are parsed JSON or null; `why` explains a missing side.
 * Returns [{...block, side: "request"|"response"}].
 */
export function conversation(wireApi, op, req, res, notes = {}) {
  let fn = null;
  if (wireApi === "anthropic") fn = anthropic;
  else if (wireApi === "openai-chat") fn = openaiChat;
  else if (wireApi === "openai-responses") fn = openaiResponses;
  else if (wireApi === "gemini") fn = gemini;
  else if (wireApi === "ollama") fn = req && req.messages ? openaiChat : completions;
  else if (wireApi === "openai-completions") fn = completions;
  const blocks = [];
  if (!fn) return [{ kind: "note", text: `conversation view not available for wire API ${wireApi || "unknown"}` }];
  let reqBlocks = [], resBlocks = [];
  try {
    [reqBlocks] = fn(req, null);
  } catch (err) { reqBlocks = [{ kind: "note", text: `request not understood: ${err.message}` }]; }
  try {
    [, resBlocks] = fn(null, res);
  } catch (err) { resBlocks = [{ kind: "note", text: `response not understood: ${err.message}` }]; }
  if (!req) blocks.push({ kind: "note", text: `request body ${notes.request || "missing"}: the history cannot be shown (see Request)` });
  blocks.push(...reqBlocks.map((b) => ({ ...b, side: "request" })));
  if (!res) blocks.push({ kind: "note", side: "response", text: `no rebuilt response (${notes.response || "missing"})` });
  blocks.push(...resBlocks.map((b) => ({ ...b, side: "response" })));
  return blocks;
}
