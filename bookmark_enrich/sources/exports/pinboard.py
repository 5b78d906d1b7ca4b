"""Pinboard JSON export (``/v1/posts/all?format=json``)."""

from __future__ import annotations

from typing import Any

from ..base import FileFormat
from ._common import (
    common_record,
    first_json_object_keys,
    json_array_reader,
    split_tags,
    str_or_none,
    to_iso,
)

__all__ = ["PINBOARD"]


def sniff_pinboard(head: bytes) -> bool:
    keys = first_json_object_keys(head)
    return {"href", "description"} <= keys and bool(keys & {"hash", "toread", "shared", "time"})


def _pinboard(entry: dict[str, Any]) -> dict[str, Any]:
    return common_record(entry, url=entry.get("href"), title=str_or_none(entry.get("description")),
                         tags=split_tags(entry.get("tags"), " "),
                         created=to_iso(entry.get("time")),
                         notes=str_or_none(entry.get("extended")))


PINBOARD = FileFormat(
    "pinboard", "Pinboard JSON export (href, description, extended, time, tags, toread)",
    "JSON array whose objects have href, description and hash/toread/shared", (".json",),
    sniff_pinboard, json_array_reader(_pinboard), priority=36, container="json",
)
