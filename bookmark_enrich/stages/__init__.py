"""The stages, in pipeline order: fetch, archive, extract, summarize, embed, media."""

from __future__ import annotations

from ..settings import Settings
from .archive import ArchiveStage
from .base import Stage, StageContext, TagHintProvider
from .embed import EmbedStage
from .extract import ExtractStage
from .fetch import FetchStage
from .media import MediaStage
from .summarize import SummarizeStage

__all__ = [
    "STAGES",
    "ArchiveStage",
    "EmbedStage",
    "ExtractStage",
    "FetchStage",
    "MediaStage",
    "Stage",
    "StageContext",
    "SummarizeStage",
    "TagHintProvider",
    "build_stages",
]

STAGES: tuple[type[Stage], ...] = (FetchStage, ArchiveStage, ExtractStage, SummarizeStage,
                                     EmbedStage, MediaStage)
"""Every built-in stage, in the order a bookmark goes through them."""


def build_stages(settings: Settings, only: set[str] | None = None,
                 types: tuple[type[Stage], ...] = STAGES) -> list[Stage]:
    """Instantiate the enabled stages of ``types`` (default: the built-in ones), in order."""
    return [cls(settings) for cls in types
            if cls.enabled(settings) and (only is None or cls.name in only)]
