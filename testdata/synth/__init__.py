"""Deterministic packet-capture synthesizer for heron-tui tests and benchmarks (see README.md)."""
