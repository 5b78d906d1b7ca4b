"""Summarizers: the LLM one (any OpenAI-compatible server) and the built-in offline one."""

from __future__ import annotations

from .base import Summarizer, Summary

__all__ = ["Summarizer", "Summary"]
