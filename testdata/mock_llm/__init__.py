"""A deterministic mock of the LLM provider HTTP APIs (Anthropic, OpenAI chat/responses/completions, Gemini,
Ollama), used to produce packet captures with a ground-truth log. Run: python -m testdata.mock_llm --port P."""
from .common import SCENARIOS, parse_scenarios
from .server import make_server

__all__ = ["SCENARIOS", "make_server", "parse_scenarios"]
