"""Test data for heron-tui: the mock LLM server, client scripts and packet captures."""
