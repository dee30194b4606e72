"""Fakes of external services (OpenAI, Azure AI Search, ...) for tests, on 127.0.0.1."""
