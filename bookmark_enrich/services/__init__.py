"""Clients for external servers (LLM, Cobalt, S3), one module each, each with a health check."""
