"""Where output records go: JSON Lines (default), a JSON array or CSV; stdout or a file."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["OutputFormat", "RecordSink", "csv_cell", "open_sink"]

OutputFormat = Literal["jsonl", "json", "csv"]

_ENRICH_PREFIX = "enrich_"
_CSV_ENRICHMENT = (
    "title", "author", "date", "site_name", "description", "language", "image",
    "final_url", "http_status", "content_type", "summary", "keywords", "tags",
    "summarizer", "model", "media", "text",
)


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)


def csv_cell(value: Any) -> str:
    """One CSV cell: lists of strings joined by ``|``, other structures as JSON."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "|".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class RecordSink:
    """Writes output records; ``-o FILE`` goes to a temp file renamed on close."""

    def __init__(self, fmt: OutputFormat, stream: IO[str], final_path: Path | None = None,
                 temp_path: Path | None = None) -> None:
        self.fmt = fmt
        self.stream = stream
        self.final_path = final_path
        self.temp_path = temp_path
        self.count = 0
        self._csv: Any = None
        self._csv_fields: list[str] = []
        self._interactive = stream.isatty() if hasattr(stream, "isatty") else False

    def __call__(self, record: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.stream.write(_dumps(record) + "\n")
        elif self.fmt == "json":
            self.stream.write(("[\n" if self.count == 0 else ",\n") + _dumps(record))
        else:
            self._write_csv(record)
        self.count += 1
        if self.final_path is None:
            # Pipes (`| jq`) see each record as soon as it is done.
            self.stream.flush()

    def _write_csv(self, record: dict[str, Any]) -> None:
        original = record.get("record", {})
        if self._csv is None:
            self._csv_fields = list(original)
            header = [*self._csv_fields, "_extra", *(
                _ENRICH_PREFIX + f for f in ("status", "errors", *_CSV_ENRICHMENT))]
            self._csv = csv.writer(self.stream)
            self._csv.writerow(header)
        row = [csv_cell(original.get(f)) for f in self._csv_fields]
        extra = {k: v for k, v in original.items() if k not in self._csv_fields}
        row.append(csv_cell(extra) if extra else "")
        enrichment = record.get("enrichment", {})
        errors = ";".join(f"{e['stage']}:{e['reason']}" for e in record.get("errors", []))
        row += [record.get("status", ""), errors]
        row += [csv_cell(enrichment.get(f)) for f in _CSV_ENRICHMENT]
        self._csv.writerow(row)

    def close(self, *, commit: bool = True) -> None:
        if self.fmt == "json":
            self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()
        if self.final_path is None or self.temp_path is None:
            return
        os.fsync(self.stream.fileno())
        self.stream.close()
        if commit:
            os.replace(self.temp_path, self.final_path)
        else:
            self.temp_path.unlink(missing_ok=True)


def open_sink(path: str | None, fmt: OutputFormat = "jsonl") -> RecordSink:
    """A sink on stdout (``None`` or ``-``) or an atomically replaced file."""
    if path in (None, "-"):
        return RecordSink(fmt, sys.stdout)
    assert path is not None
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp",
                               dir=final.parent if str(final.parent) else ".")
    stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
    return RecordSink(fmt, stream, final, Path(tmp))
