"""Output records as flat cells: the enrichment columns of CSV output and writeback.

The columns follow the output model (:class:`~bookmark_enrich.models.Enrichment`),
so a field added there appears in every CSV with no change here.
"""

from __future__ import annotations

import json
from typing import Any

from .models import Enrichment

__all__ = [
    "COLUMN_PREFIX",
    "ENRICHMENT_FIELDS",
    "RECORD_FIELDS",
    "csv_cell",
    "dumps",
    "enrichment_cells",
    "errors_cell",
]

COLUMN_PREFIX = "enrich_"
"""CSV columns the tool owns are named ``enrich_<field>``."""

RECORD_FIELDS = ("status", "errors")
"""Fields of the output record itself that come before the enrichment's."""

ENRICHMENT_FIELDS: tuple[str, ...] = tuple(Enrichment.model_fields)
"""Every enrichment field, in the model's order."""


def dumps(value: Any, *, readable: bool = False) -> str:
    """JSON for the cache, the queue and output lines; ``readable`` adds spaces (user files)."""
    separators = (", ", ": ") if readable else (",", ":")
    return json.dumps(value, ensure_ascii=False, separators=separators, default=str)


def csv_cell(value: Any) -> str:
    """One CSV cell: lists of strings joined by ``|``, other structures as JSON."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "|".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def errors_cell(record: dict[str, Any]) -> str:
    """``stage:reason;stage:reason`` for a record's errors."""
    return ";".join(f"{e['stage']}:{e['reason']}" for e in record.get("errors") or [])


def enrichment_cells(record: dict[str, Any], fields: tuple[str, ...] = ENRICHMENT_FIELDS
                     ) -> dict[str, str]:
    """``enrich_<name>`` → cell, for the record's status and errors and ``fields``."""
    enrichment = record.get("enrichment") or {}
    cells = {COLUMN_PREFIX + "status": csv_cell(record.get("status")),
             COLUMN_PREFIX + "errors": errors_cell(record)}
    cells.update({COLUMN_PREFIX + f: csv_cell(enrichment.get(f)) for f in fields})
    return cells
