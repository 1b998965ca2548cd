"""The assembler: the single consumer of worker messages, in the main process.

It merges watermarks per source, releases calls in event time, folds proxy hops, links retries,
resolves sessions and sub-agents, assembles turns, links tool results, raises insights and writes
everything through the store writer. The implementation lives in ``heron_core.assemble``; this module
keeps the historical import path (``from heron_core.assembler import Assembler``).
"""

from __future__ import annotations

from .assemble import Assembler

__all__ = ["Assembler"]
