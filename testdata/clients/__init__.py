"""Client scripts that drive the mock LLM server with the official SDKs (and httpx for raw cases)."""
