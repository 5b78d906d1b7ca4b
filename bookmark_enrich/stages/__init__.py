"""Stages: fetch, extract (and the ones later modules register)."""

from __future__ import annotations

from ..settings import Settings
from .base import STAGE_TYPES, Stage, StageContext, fingerprint_of, register_stage
from .extract import ExtractStage
from .fetch import FetchStage
from .summarize import SummarizeStage

__all__ = [
    "STAGE_TYPES",
    "ExtractStage",
    "FetchStage",
    "MediaStage",
    "Stage",
    "StageContext",
    "SummarizeStage",
    "build_stages",
    "fingerprint_of",
    "register_stage",
]

# Imported after the others on purpose: registration order is pipeline order.
from .media import MediaStage


def build_stages(settings: Settings, only: set[str] | None = None) -> list[Stage]:
    """Instantiate the enabled stages, in pipeline order."""
    return [
        cls(settings)
        for cls in STAGE_TYPES
        if cls.enabled(settings) and (only is None or cls.name in only)
    ]
