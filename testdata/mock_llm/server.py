"""HTTP/1.1 keep-alive server that dispatches to the API modules, sends the plan and writes the truth log."""
from __future__ import annotations

import gzip
import hashlib
import json
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import anthropic_api, gemini_api, ollama_api, openai_api
from .common import Ids, Plan, ReqInfo, decide, fold_truth, http_date, jdump, parse_scenarios

try:
    import brotli  # type: ignore
except ImportError:  # pragma: no cover
    brotli = None
try:
    import zstandard  # type: ignore
except ImportError:  # pragma: no cover
    zstandard = None


class State:
    def __init__(self, truth_path: str | None, verbose: bool = False):
        self.lock = threading.Lock()
        self.seen: dict = {}        # body hash -> count (ids, retry counters)
        self.seq = 0
        self.truth = open(truth_path, "a", encoding="utf-8") if truth_path else None
        self.verbose = verbose

    def occurrence(self, key: str) -> int:
        with self.lock:
            n = self.seen.get(key, 0)
            self.seen[key] = n + 1
            return n

    def write_truth(self, rec: dict) -> None:
        with self.lock:
            self.seq += 1
            rec = {"seq": self.seq, **rec}
            if self.truth:
                self.truth.write(json.dumps(rec, ensure_ascii=False) + "\n")
                self.truth.flush()
            if self.verbose:
                print(f"[mock] {rec['method']} {rec['path']} -> {rec['status']} {rec.get('api')} "
                      f"{rec.get('finish')}", file=sys.stderr, flush=True)


class Encoder:
    def __init__(self, enc: str | None):
        self.enc = enc
        if enc == "gzip":
            self.z = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif enc == "br":
            self.z = brotli.Compressor()

    def chunk(self, data: bytes) -> bytes:
        if not self.enc:
            return data
        if self.enc == "gzip":
            return self.z.compress(data) + self.z.flush(zlib.Z_SYNC_FLUSH)
        return self.z.process(data) + self.z.flush()

    def finish(self) -> bytes:
        if not self.enc:
            return b""
        return self.z.flush() if self.enc == "gzip" else self.z.finish()

    def whole(self, data: bytes) -> bytes:
        if self.enc == "gzip":
            return gzip.compress(data, mtime=0)
        if self.enc == "br":
            return brotli.compress(data)
        return data


def _split_utf8(data: bytes) -> tuple[bytes, bytes] | None:
    """Split bytes at the middle of a multi-byte UTF-8 character, if there is one."""
    for i in range(len(data) // 3, len(data)):
        if data[i] >= 0xC0:       # lead byte of a multi-byte sequence
            return data[:i + 1], data[i + 1:]
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm"
    state: State = None  # set by make_server

    def setup(self):
        super().setup()
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, fmt, *args):
        if self.state.verbose:
            sys.stderr.write("[mock] " + (fmt % args) + "\n")

    # ------------------------------------------------------------------ request body
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                out += self.rfile.read(size)
                self.rfile.readline()
            raw = out
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ce = (self.headers.get("Content-Encoding") or "").lower().strip()
        if ce == "gzip":
            raw = gzip.decompress(raw)
        elif ce == "deflate":
            raw = zlib.decompress(raw)
        elif ce == "br" and brotli:
            raw = brotli.decompress(raw)
        elif ce == "zstd" and zstandard:
            raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        return raw

    # ------------------------------------------------------------------ raw writes
    def _head(self, status: int, reason: str, headers: list) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}" if reason else f"HTTP/1.1 {status} "]
        for k, v in headers:
            lines.append(f"{k}: {v}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _simple(self, status: int, reason: str, body: bytes, ctype: str = "application/json",
                extra: list | None = None, head_only: bool = False):
        h = [("Content-Type", ctype), ("Date", http_date()), ("Content-Length", str(len(body)))] + (extra or [])
        self.wfile.write(self._head(status, reason, h) + (b"" if head_only else body))
        self.state.write_truth({"t_request": time.time(), "client": self._client(), "server": self._server(),
                                "method": self.command, "path": self.path, "api": "other", "status": status,
                                "stream": False})

    def _client(self) -> str:
        a = self.client_address
        return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"

    def _server(self) -> str:
        a = self.request.getsockname()
        return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"

    # ------------------------------------------------------------------ verbs
    def do_HEAD(self):
        self._simple(200, "OK", b"", "text/plain; charset=utf-8", head_only=True)

    def do_GET(self):
        path = urlsplit(self.path).path
        if path.endswith("/api/tags"):
            self._simple(200, "OK", ollama_api.tags_body(), "application/json; charset=utf-8")
        elif path.endswith("/api/version"):
            self._simple(200, "OK", b'{"version":"0.12.6"}', "application/json; charset=utf-8")
        elif path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
                    for m in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "gpt-3.5-turbo-instruct")]
            self._simple(200, "OK", jdump({"object": "list", "data": data}).encode())
        elif path == "/":
            self._simple(200, "OK", b"Ollama is running", "text/plain; charset=utf-8")
        else:
            self._simple(404, "Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}')

    def do_POST(self):
        t_req = time.time()
        raw = self._read_body()
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._simple(400, "Bad Request", b'{"error":{"message":"body is not a JSON object"}}')
            return
        gem_sse = False
        if path.endswith("/v1/messages"):
            info = anthropic_api.reqinfo(body, len(raw))
        elif path.endswith("/responses"):
            info = openai_api.reqinfo_responses(body, len(raw))
        elif path.endswith("/chat/completions"):
            info = openai_api.reqinfo_chat(body, len(raw))
        elif path.endswith("/completions"):
            info = openai_api.reqinfo_completions(body, len(raw))
        elif "/models/" in path and (path.endswith(":generateContent") or path.endswith(":streamGenerateContent")):
            model = path.rsplit("/models/", 1)[1].split(":")[0]
            stream = path.endswith(":streamGenerateContent")
            gem_sse = query.get("alt", [""])[0] == "sse"
            info = gemini_api.reqinfo(body, len(raw), model, stream)
        elif path.endswith("/api/chat"):
            info = ollama_api.reqinfo_chat(body, len(raw))
        elif path.endswith("/api/generate"):
            info = ollama_api.reqinfo_generate(body, len(raw))
        else:
            self._simple(404, "Not Found", b'{"error":{"message":"unknown route","type":"invalid_request_error"}}')
            return
        scen = parse_scenarios(info.user_text)
        key = hashlib.sha256(path.encode() + b"\0" + raw).hexdigest()
        occ = self.state.occurrence(key)
        ids = Ids(f"{key}:{occ}".encode())
        plan = self._plan(info, scen, ids, occ, body, gem_sse)
        if "cut" in scen or "reset" in scen:
            plan.cut = "rst" if "reset" in scen else "fin"
            plan.cut_after = max(1, len(plan.chunks) // 2) if plan.stream else 0
        if "slow" in scen:
            plan.first_delay, plan.delay = 0.4, 0.2
        if "utf8" in scen:
            plan.split_utf8 = True
        accept = (self.headers.get("Accept-Encoding") or "").lower()
        for enc in ("gzip", "br"):
            if enc in scen and enc in accept and (enc != "br" or brotli):
                plan.encoding = enc
        self._send(plan, t_req, scen, occ)

    def _plan(self, info: ReqInfo, scen: dict, ids: Ids, occ: int, body: dict, gem_sse: bool) -> Plan:
        mod = {"anthropic": anthropic_api, "gemini": gemini_api, "ollama": ollama_api}.get(info.api, openai_api)
        status = None
        for name, code in (("error400", 400), ("error401", 401), ("error429", 429), ("error500", 500),
                           ("error529", 529)):
            if name in scen:
                status = code
        for name, code in (("retry429", 429), ("retry529", 529)):
            if name in scen:
                try:
                    n = int(scen[name] or 2)
                except ValueError:
                    n = 2
                if occ < n:
                    status = code
        if status is not None:
            p = mod.error_plan(info, ids, status)
            p.extra_truth["attempt"] = occ + 1
            return p
        c = decide(info, scen)
        if info.api == "anthropic":
            p = anthropic_api.render(info, c, ids, scen)
        elif info.api == "openai-chat":
            p = openai_api.render_chat(info, c, ids, scen)
        elif info.api == "openai-responses":
            p = openai_api.render_responses(info, c, ids, scen, body)
        elif info.api == "openai-completions":
            p = openai_api.render_completions(info, c, ids, scen)
        elif info.api == "gemini":
            p = gemini_api.render(info, c, ids, scen, gem_sse)
        else:
            p = ollama_api.render(info, c, ids, scen)
        p.extra_truth["attempt"] = occ + 1
        return p

    # ------------------------------------------------------------------ sending
    def _send(self, plan: Plan, t_req: float, scen: dict, occ: int) -> None:
        enc = Encoder(plan.encoding)
        headers = list(plan.headers)
        if plan.encoding:
            headers.append(("Content-Encoding", plan.encoding))
        chunked = plan.stream or plan.chunked or bool(plan.encoding and plan.stream)
        sent = 0
        t_first = None
        cut_done = None
        sock = self.request
        try:
            time.sleep(plan.first_delay if plan.status < 400 else 0.005)
            if not chunked:
                data = enc.whole(b"".join(c[0] for c in plan.chunks))
                headers.append(("Content-Length", str(len(data))))
                head = self._head(plan.status, plan.reason, headers)
                t_first = time.time()
                if plan.cut is not None:
                    self.wfile.write(head + data[: len(data) // 2])
                    cut_done = plan.cut
                else:
                    self.wfile.write(head + data)
                    sent = len(plan.chunks)
            else:
                headers.append(("Transfer-Encoding", "chunked"))
                self.wfile.write(self._head(plan.status, plan.reason, headers))
                t_first = time.time()
                for i, (data, _ops) in enumerate(plan.chunks):
                    if plan.cut is not None and i == plan.cut_after:
                        cut_done = plan.cut
                        break
                    if i:
                        time.sleep(plan.delay)
                    pieces = [data]
                    if plan.split_utf8 and not plan.encoding:
                        sp = _split_utf8(data)
                        if sp:
                            pieces = list(sp)
                    for j, piece in enumerate(pieces):
                        out = enc.chunk(piece)
                        if out:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(out), out))
                        if j < len(pieces) - 1:
                            time.sleep(0.005)
                    sent = i + 1
                    if not plan.stream and plan.chunked and i == 0 and plan.cut is None:
                        pass
                if cut_done is None:
                    tail = enc.finish()
                    if tail:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
                    self.wfile.write(b"0\r\n\r\n")
                    if plan.chunked and not plan.stream:
                        sent = len(plan.chunks)
            if cut_done:
                if cut_done == "rst":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.server.abort_sockets.add(sock)
                else:
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError) as e:
            cut_done = cut_done or "client"
            self.close_connection = True
            if self.state.verbose:
                print(f"[mock] client went away: {e}", file=sys.stderr)
        t_end = time.time()
        truth = fold_truth(plan, sent, cut_done if cut_done in ("fin", "rst") else None)
        if cut_done == "client":
            truth["error"] = {"source": "network", "type": "client_closed", "message": "client closed the connection"}
            truth["finish"] = "aborted"
        info = plan.info
        rec = {
            "t_request": round(t_req, 6), "t_first_byte": round(t_first, 6) if t_first else None,
            "t_end": round(t_end, 6), "client": self._client(), "server": self._server(),
            "method": self.command, "path": self.path, "api": plan.api,
            "operation": {"ollama": "chat" if (info and info.extra.get("op") == "chat") else "text_completion",
                          "openai-completions": "text_completion", "gemini": "generate_content"}.get(plan.api, "chat"),
            "model_requested": info.model if info else None, "model": truth["model"],
            "stream": plan.stream, "request_stream": bool(info and info.stream), "status": plan.status,
            "scenario": sorted(scen), "attempt": plan.extra_truth.get("attempt"),
            "request_id": plan.extra_truth.get("request_id"), "response_id": truth["response_id"],
            "content_encoding": plan.encoding, "cut": cut_done,
            "user_agent": self.headers.get("User-Agent"),
            "text": truth["text"], "reasoning": truth["reasoning"], "refusal": truth["refusal"],
            "tool_calls": truth["tool_calls"], "usage_raw": truth["usage_raw"], "usage": truth["usage"],
            "finish_reason_raw": truth["finish_reason_raw"], "finish": truth["finish"], "error": truth["error"],
            "complete": truth["complete"],
        }
        for k in ("gemini_framing",):
            if k in plan.extra_truth:
                rec[k] = plan.extra_truth[k]
        if plan.status == 429 or any(k.lower() == "retry-after" for k, _ in plan.headers):
            rec["retry_after"] = next((v for k, v in plan.headers if k.lower() == "retry-after"), None)
        if plan.api == "openai-chat" and plan.stream and not (info and info.include_usage):
            rec["usage_note"] = "stream without include_usage: no usage on the wire"
        self.state.write_truth(rec)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, family=socket.AF_INET):
        self.address_family = family
        self.abort_sockets: set = set()  # connections to end with a bare RST (scenario `reset`)
        super().__init__(addr, handler)

    def shutdown_request(self, request):
        """End a `reset` connection with RST only. The default does shutdown(SHUT_WR) first, which puts
        a FIN on the wire before the RST, and a passive observer then rightly sees a FIN-closed
        response (the committed captures have that FIN; their truth files were corrected)."""
        if request in self.abort_sockets:
            self.abort_sockets.discard(request)
            self.close_request(request)
            return
        super().shutdown_request(request)


def make_server(host: str, port: int, truth: str | None, verbose: bool = False) -> Server:
    state = State(truth, verbose)
    handler = type("BoundHandler", (Handler,), {"state": state})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return Server((host, port), handler, family)
