"""Regenerate testdata/captures/*.pcap and *.truth.jsonl.

Run from the repository root, as root (tcpdump on lo, network namespaces):

    . .venv/bin/activate
    python testdata/make_captures.py                 # all captures that can be made
    python testdata/make_captures.py sdk_openai ipv6 # only some

Everything runs inside a fresh network namespace (`unshare -n`, only `lo` up), so the clients, the mock, the
litellm proxy and the agent CLIs can reach nothing but loopback, and the captures contain no other traffic.

Optional captures need tools outside the project venv (skipped with a message when missing):
  litellm_proxy : a separate venv with litellm[proxy]   (--litellm-venv, default /tmp/litellm-venv)
  claude_code   : npm i @anthropic-ai/claude-code@2.1.330  (--cli-dir, default /tmp/clis)
  codex         : npm i @openai/codex@0.169.0              (--cli-dir)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TD = os.path.join(ROOT, "testdata")
CAP = os.path.join(TD, "captures")
CLIENTS = os.path.join(TD, "clients")
PY = sys.executable
SNAPLEN = "262144"

# name -> (bind host, mock port, client script)
SDK_CAPTURES = {
    "sdk_openai": ("127.0.0.1", 18101, "sdk_openai.py"),
    "sdk_anthropic": ("127.0.0.1", 18102, "sdk_anthropic.py"),
    "sdk_gemini": ("127.0.0.1", 18103, "sdk_gemini.py"),
    "ollama": ("127.0.0.1", 11434, "ollama_client.py"),
    "errors_retries": ("127.0.0.1", 18105, "errors_retries.py"),
    "mixed_gzip": ("127.0.0.1", 18106, "mixed_gzip.py"),
    "ipv6": ("::1", 18107, "ipv6.py"),
}
ALL = list(SDK_CAPTURES) + ["litellm_proxy", "claude_code", "codex"]

# scratch dirs for the CLIs: neutral paths, nothing from the real HOME
WORK = "/tmp/work"
CLI_HOME = "/tmp/home"


def log(*a):
    print("[make_captures]", *a, file=sys.stderr, flush=True)


def wait_port(host: str, port: int, timeout: float = 60.0) -> None:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.connect((host, port))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise RuntimeError(f"port {host}:{port} not listening after {timeout}s")


class Proc:
    """A child process we started; stopped by its own pid only."""

    def __init__(self, args, name, **kw):
        self.name = name
        self.p = subprocess.Popen(args, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_mock(host: str, port: int, truth: str, logf) -> Proc:
    p = Proc([PY, "-m", "testdata.mock_llm", "--host", host, "--port", str(port), "--truth", truth, "-v"],
             "mock", cwd=ROOT, stdout=logf, stderr=logf)
    wait_port(host, port)
    return p


def start_tcpdump(pcap: str, ports: list[int]) -> Proc:
    flt = " or ".join(f"tcp port {p}" for p in ports)
    errf = open(pcap + ".tcpdump.log", "w+")
    p = Proc(["tcpdump", "-i", "lo", "-w", pcap, "-s", SNAPLEN, "-U", "-n", "-Z", "root", flt], "tcpdump",
             stdout=subprocess.DEVNULL, stderr=errf)
    t0 = time.time()
    while time.time() - t0 < 10:
        errf.seek(0)
        if "listening on" in errf.read():
            break
        time.sleep(0.05)
    time.sleep(0.2)
    p.errf = errf
    return p


def stop_tcpdump(p: Proc) -> str:
    time.sleep(0.5)
    p.stop(signal.SIGINT)
    p.errf.seek(0)
    out = p.errf.read()
    p.errf.close()
    os.unlink(p.errf.name)
    return " ".join(l for l in out.splitlines() if "packets" in l)


def run_client(script: str, base: str, env=None, timeout=300) -> int:
    log(f"client {script} -> {base}")
    r = subprocess.run([PY, "-W", "ignore", os.path.join(CLIENTS, script), base], cwd=ROOT, env=env,
                       timeout=timeout)
    return r.returncode


def fresh(name: str) -> tuple[str, str]:
    os.makedirs(CAP, exist_ok=True)
    pcap, truth = os.path.join(CAP, f"{name}.pcap"), os.path.join(CAP, f"{name}.truth.jsonl")
    for f in (pcap, truth):
        if os.path.exists(f):
            os.unlink(f)
    return pcap, truth


def clean_env(extra: dict | None = None) -> dict:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": CLI_HOME, "TERM": "dumb",
           "NO_PROXY": "*", "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("VIRTUAL_ENV"):
        env["VIRTUAL_ENV"] = os.environ["VIRTUAL_ENV"]
        env["PATH"] = os.path.join(os.environ["VIRTUAL_ENV"], "bin") + ":" + env["PATH"]
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------------------ captures

def capture_sdk(name: str) -> None:
    host, port, script = SDK_CAPTURES[name]
    pcap, truth = fresh(name)
    with tempfile.TemporaryFile("w+") as logf:
        mock = start_mock(host, port, truth, logf)
        td = start_tcpdump(pcap, [port])
        try:
            base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            run_client(script, base, env=clean_env())
        finally:
            stats = stop_tcpdump(td)
            mock.stop()
    log(f"{name}: {stats}")


LITELLM_CFG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:{up}/v1
      api_key: sk-proj-upstreamFAKEkey0000000000000000000000000000000000000000
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      api_base: http://127.0.0.1:{up}
      api_key: sk-ant-api03-upstreamFAKEkey000000000000000000000000000000000000000000000000000000000000-FAKEAA
  - model_name: llama3.2
    litellm_params:
      model: ollama_chat/llama3.2
      api_base: http://127.0.0.1:{up}
litellm_settings:
  num_retries: 0
  request_timeout: 30
  telemetry: false
general_settings:
  master_key: {mk}
"""


def capture_litellm(venv: str) -> None:
    lbin = os.path.join(venv, "bin", "litellm")
    if not os.path.exists(lbin):
        log(f"litellm_proxy: skipped, {lbin} missing (python3 -m venv {venv} && {venv}/bin/pip install 'litellm[proxy]')")
        return
    sys.path.insert(0, CLIENTS)
    from _common import LITELLM_MASTER_KEY  # noqa: E402
    up, px = 18108, 4000
    pcap, truth = fresh("litellm_proxy")
    tmp = tempfile.mkdtemp(prefix="litellm-")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(LITELLM_CFG.format(up=up, mk=LITELLM_MASTER_KEY))
    env = clean_env({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "HOME": tmp,
                     "DISABLE_SCHEMA_UPDATE": "True"})
    env["PATH"] = os.path.join(venv, "bin") + ":/usr/bin:/bin"
    env.pop("VIRTUAL_ENV", None)
    with tempfile.TemporaryFile("w+") as logf, open(os.path.join(tmp, "litellm.log"), "w") as llog:
        mock = start_mock("127.0.0.1", up, truth, logf)
        lp = Proc([lbin, "--config", cfg, "--host", "127.0.0.1", "--port", str(px), "--num_workers", "1"],
                  "litellm", cwd=tmp, env=env, stdout=llog, stderr=llog)
        try:
            wait_port("127.0.0.1", px, timeout=90)
            time.sleep(2)
            td = start_tcpdump(pcap, [px, up])
            try:
                run_client("litellm_client.py", f"http://127.0.0.1:{px}", env=clean_env())
            finally:
                stats = stop_tcpdump(td)
        finally:
            lp.stop(signal.SIGINT, timeout=15)
            mock.stop()
    log(f"litellm_proxy: {stats}")
    shutil.rmtree(tmp, ignore_errors=True)


def prep_cli_dirs() -> None:
    for d in (WORK, CLI_HOME):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    with open(os.path.join(WORK, "hello.txt"), "w") as f:
        f.write("hello from the capture workspace\n")


CLAUDE_PROMPT = "Run the shell command `echo hi` with the Bash tool and tell me its output. [scenario:tools,cache]"
CODEX_PROMPT = "Run the shell command `echo hi` and tell me its output. [scenario:tools]"


def capture_claude(cli_dir: str) -> None:
    exe = os.path.join(cli_dir, "node_modules", ".bin", "claude")
    if not os.path.exists(exe):
        log(f"claude_code: skipped, {exe} missing (cd {cli_dir} && npm i @anthropic-ai/claude-code@2.1.330)")
        return
    sys.path.insert(0, CLIENTS)
    from _common import ANTHROPIC_KEY  # noqa: E402
    port = 18109
    pcap, truth = fresh("claude_code")
    prep_cli_dirs()
    env = clean_env({
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "USER": "user", "LOGNAME": "user", "SHELL": "/bin/bash"})
    with tempfile.TemporaryFile("w+") as logf:
        mock = start_mock("127.0.0.1", port, truth, logf)
        td = start_tcpdump(pcap, [port])
        try:
            r = subprocess.run([exe, "-p", CLAUDE_PROMPT, "--output-format", "json", "--allowedTools", "Bash",
                                "--model", "claude-sonnet-4-6"],
                               cwd=WORK, env=env, capture_output=True, text=True, timeout=180)
            log(f"claude rc={r.returncode} out={r.stdout[:300]!r} err={r.stderr[-300:]!r}")
        finally:
            stats = stop_tcpdump(td)
            mock.stop()
    log(f"claude_code: {stats}")


CODEX_CFG = """\
model = "gpt-5-codex"
model_provider = "mock"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.mock]
name = "mock"
base_url = "http://127.0.0.1:{port}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[otel]
exporter = "none"
"""


def capture_codex(cli_dir: str) -> None:
    exe = os.path.join(cli_dir, "node_modules", ".bin", "codex")
    if not os.path.exists(exe):
        log(f"codex: skipped, {exe} missing (cd {cli_dir} && npm i @openai/codex@0.169.0)")
        return
    sys.path.insert(0, CLIENTS)
    from _common import OPENAI_KEY  # noqa: E402
    port = 18110
    pcap, truth = fresh("codex")
    prep_cli_dirs()
    codex_home = os.path.join(CLI_HOME, ".codex")
    os.makedirs(codex_home)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(CODEX_CFG.format(port=port))
    env = clean_env({"CODEX_HOME": codex_home, "OPENAI_API_KEY": OPENAI_KEY, "USER": "user", "LOGNAME": "user",
                     "SHELL": "/bin/bash"})
    with tempfile.TemporaryFile("w+") as logf:
        mock = start_mock("127.0.0.1", port, truth, logf)
        td = start_tcpdump(pcap, [port])
        try:
            r = subprocess.run([exe, "exec", "--skip-git-repo-check", CODEX_PROMPT],
                               cwd=WORK, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
            log(f"codex rc={r.returncode} out={r.stdout[-300:]!r} err={r.stderr[-400:]!r}")
        finally:
            stats = stop_tcpdump(td)
            mock.stop()
    log(f"codex: {stats}")


# ------------------------------------------------------------------------------------------ checks

_HOST = socket.gethostname().encode()
SECRET_PATTERNS = [rb"/root/", rb"(?<!/tmp)/home/", rb"(?<!/tmp)/work/"] + ([re.escape(_HOST)] if len(_HOST) >= 5 else []) + [
                   rb"sk-ant-api03-(?!FAKE|upstreamFAKE)", rb"sk-proj-(?!MockFake|SecondFake|upstreamFAKE|\*)",
                   rb"AIza(?!SyFAKE)"]


def scrub_check(name: str) -> list[str]:
    pcap = os.path.join(CAP, f"{name}.pcap")
    if not os.path.exists(pcap):
        return []
    data = open(pcap, "rb").read()
    hits = []
    for pat in SECRET_PATTERNS:
        for m in re.finditer(pat, data):
            hits.append(data[max(0, m.start() - 30): m.end() + 30].decode("latin-1"))
            break
    return hits


def summary(name: str) -> str:
    truth = os.path.join(CAP, f"{name}.truth.jsonl")
    if not os.path.exists(truth):
        return f"{name}: (no truth)"
    counts: dict = {}
    for line in open(truth):
        r = json.loads(line)
        k = r["api"]
        counts[k] = counts.get(k, 0) + 1
    size = os.path.getsize(os.path.join(CAP, f"{name}.pcap"))
    return f"{name}: {size / 1024:.0f} KiB, responses per api {counts}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"captures to make (default: all): {', '.join(ALL)}")
    ap.add_argument("--cli-dir", default="/tmp/clis")
    ap.add_argument("--litellm-venv", default="/tmp/litellm-venv")
    ap.add_argument("--in-netns", action="store_true", help="internal: already inside the namespace")
    ap.add_argument("--no-netns", action="store_true", help="run in the current namespace (SDK captures only)")
    a = ap.parse_args()
    names = a.names or ALL
    for n in names:
        if n not in ALL:
            ap.error(f"unknown capture {n}")
    if not a.in_netns and not a.no_netns:
        # re-exec inside a loopback-only network namespace
        inner = [PY, os.path.abspath(__file__), "--in-netns", "--cli-dir", a.cli_dir,
                 "--litellm-venv", a.litellm_venv] + names
        cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + inner
        return subprocess.call(cmd, cwd=ROOT)
    for n in names:
        log(f"=== {n}")
        try:
            if n in SDK_CAPTURES:
                capture_sdk(n)
            elif n == "litellm_proxy":
                capture_litellm(a.litellm_venv)
            elif n == "claude_code":
                capture_claude(a.cli_dir)
            elif n == "codex":
                capture_codex(a.cli_dir)
        except Exception as e:  # noqa: BLE001
            log(f"{n}: FAILED {type(e).__name__}: {e}")
    print()
    for n in names:
        if os.path.exists(os.path.join(CAP, f"{n}.pcap")):
            print(summary(n))
            hits = scrub_check(n)
            if hits:
                print(f"  SCRUB WARNING {n}: {hits}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
