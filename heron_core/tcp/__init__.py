"""TCP stage: reassembly of captured segments into per-direction byte streams (capture-and-http.md §5)."""

from heron_core.tcp.reassembly import StreamHandler, TcpReassembler

__all__ = ["StreamHandler", "TcpReassembler"]
