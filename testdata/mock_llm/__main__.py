"""python -m testdata.mock_llm --port P [--host 127.0.0.1|::1] [--tls CERT KEY] [--truth FILE] [-v]"""
from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys

from .common import SCENARIOS
from .server import make_server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testdata.mock_llm", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1", help="bind address (loopback only: 127.0.0.1 or ::1)")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS with this cert/key "
                    "(SSLKEYLOGFILE is honoured)")
    ap.add_argument("--truth", help="append one JSON line per response sent to this file")
    ap.add_argument("--list-scenarios", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.list_scenarios:
        for k, v in SCENARIOS.items():
            print(f"[scenario:{k}]  {v}")
        return 0
    if a.host not in ("127.0.0.1", "::1", "localhost"):
        print("refusing to bind a non-loopback address", file=sys.stderr)
        return 2
    srv = make_server(a.host, a.port, a.truth, a.verbose)
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        if os.environ.get("SSLKEYLOGFILE"):
            ctx.keylog_filename = os.environ["SSLKEYLOGFILE"]
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"mock-llm listening on {a.host}:{a.port}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
