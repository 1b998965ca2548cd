"""Per-call agent classification (agents-and-turns.md §2–§8): which agent made a call, its session key,
whether it starts or ends a turn, sub-agent and auxiliary status, and the output fingerprint for proxy-hop
folding. Stateless; the assembler does everything that needs more than one call.
"""

from .classify import classify_call, request_session_id

__all__ = ["classify_call", "request_session_id"]
