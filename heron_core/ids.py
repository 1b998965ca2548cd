"""Deterministic record ids (README.md §2): UUIDv5 over stable keys joined with ``|``."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1b1d5e-7c1a-4d8e-9a53-2f0c8e4b6a11")
"""Fixed project namespace for every UUIDv5 heron derives. Never change it: ids in existing stores
depend on it."""


def uuid5(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(str(p) for p in parts)))


def exchange_id(source_id: str, flow_key_text: str, flow_first_ts_us: int, ordinal: int) -> str:
    """``exchange_id`` = UUIDv5(source_id, flow key, first-packet time of the connection in µs, ordinal)."""
    return uuid5(source_id, flow_key_text, flow_first_ts_us, ordinal)


def session_id(source_id: str, agent_kind: str, native_session_id: str) -> str:
    return uuid5(source_id, agent_kind, native_session_id)


def turn_id(session_id_: str, anchor_call_id: str) -> str:
    return uuid5(session_id_, anchor_call_id)
