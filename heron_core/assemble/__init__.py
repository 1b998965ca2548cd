"""The assembler stage (agents-and-turns.md §9–§12): proxy-hop folding, retry chains, sessions and
sub-agents, turn assembly, tool-result linking and insights, all in event time. See ``core.py``."""

from .core import Assembler

__all__ = ["Assembler"]
