"""Write results back into the database table they were read from.

Only the target columns of rows that were read are updated, in batched
transactions as results arrive, so an interrupted run keeps what it finished.
A result that lacks a field (no summary this time) leaves that column as it was.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from ..dbapi import PostgresDatabase, SqliteDatabase, TableTarget, quote_ident, validate_ident
from ..errors import InputError, UsageError
from .base import (
    Report,
    Results,
    WritebackConflict,
    WritebackOptions,
    Writer,
    archive_url,
    change_line,
    describe_changes,
)

__all__ = ["TARGET_FIELDS", "DbWriter", "target_values"]

TARGET_FIELDS = ("summary", "keywords", "tags", "media", "metadata", "enriched_at")
"""What can be written, in this order; ``--columns`` picks some, ``field:column`` renames."""

_OWN_FIELDS = ("summary", "keywords", "tags", "media", "text")
_BATCH_ROWS = 1000
_BATCH_SECONDS = 1.0

_PG_CREATE = {"summary": "text", "keywords": "text[]", "tags": "text[]", "media": "jsonb",
              "metadata": "jsonb", "enriched_at": "timestamptz", "archive": "text"}

ARCHIVE = "archive"
"""The target field ``--archive-field`` adds: a rescued page's snapshot URL."""


def target_values(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The value of every target field for one output record (None: leave the column)."""
    enrichment = record.get("enrichment") or {}
    metadata = {k: v for k, v in enrichment.items() if k not in _OWN_FIELDS and v is not None}
    metadata["status"] = record.get("status")
    if record.get("errors"):
        metadata["errors"] = record["errors"]
    return {
        "summary": enrichment.get("summary"),
        "keywords": enrichment.get("keywords"),
        "tags": enrichment.get("tags"),
        "media": enrichment.get("media"),
        "metadata": metadata,
        "enriched_at": now,
        ARCHIVE: archive_url(record),
    }


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _json_text(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return _ENCODER.encode(value)


class DbWriter(Writer):
    """Updates target columns by id; SQLite stores JSON text, Postgres follows column types."""

    def __init__(self, target: TableTarget, options: WritebackOptions, report: Report) -> None:
        super().__init__(options, report)
        self.db = target.database
        self.id_column = target.id_column
        self.display = target.display
        self.targets = self._targets(options)
        if ARCHIVE in self.targets and \
                self.targets[ARCHIVE].lower() == self.id_column.lower():
            raise UsageError(f"--archive-field {self.targets[ARCHIVE]}: that is the table's "
                             "id column; name another column (e.g. archive_url)")
        self.conn: Any = None
        self.types: dict[str, str] = {}
        self.missing: list[str] = []
        self._batch: list[tuple[Any, dict[str, Any]]] = []
        self._last_flush = time.monotonic()
        self._now = datetime.now(UTC)
        """enriched_at of the batch being gathered (batches span at most a second)."""
        self._preflight()

    # ------------------------------------------------------------- targets
    @staticmethod
    def _targets(options: WritebackOptions) -> dict[str, str]:
        """field → column name."""
        wanted = options.columns or list(TARGET_FIELDS)
        targets: dict[str, str] = {}
        for item in wanted:
            name, _, column = item.strip().partition(":")
            name = name.strip()
            if name not in TARGET_FIELDS:
                raise UsageError(f"unknown writeback column {name!r} "
                                 f"(known: {', '.join(TARGET_FIELDS)})")
            column = column.strip() or options.column_prefix + name
            targets[name] = validate_ident(column, "column")[0]
        if options.archive_field is not None:
            targets[ARCHIVE] = validate_ident(options.archive_field, "archive column")[0]
        return targets

    # ----------------------------------------------------------- preflight
    def _preflight(self) -> None:
        db = self.db
        if isinstance(db, SqliteDatabase):
            self.conn = db.connect(readonly=False)
            if not self.options.dry_run:
                self._check_sqlite_writable()
            existing = {c.lower() for c in db.table_columns(self.conn) or []}
        else:
            assert isinstance(db, PostgresDatabase)
            self.conn = db.connect(readonly=False)
            self._check_pg_writable()
            self.types = {n: t for n, t in db.column_types(self.conn)}
            existing = {c.lower() for c in self.types}
        self.missing = [c for c in self.targets.values() if c.lower() not in existing]
        if self.missing and self.options.dry_run:
            self.report(f"dry run: missing column(s) {', '.join(self.missing)} would need "
                        "--create-columns")
        elif self.missing:
            if not self.options.create_columns:
                raise UsageError(
                    f"{self.display}: missing writeback column(s): {', '.join(self.missing)}; "
                    "add them with --create-columns (or pick others with --columns / "
                    "--column-prefix)")
            self._create_columns()
        if isinstance(db, SqliteDatabase):
            # Writes wait for the reader's page queries; checks above did not.
            self.conn.execute("PRAGMA busy_timeout=30000")

    def _check_sqlite_writable(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            text = str(exc).lower()
            what = ("database is locked by another program" if "locked" in text or "busy" in text
                    else "database is read-only" if "readonly" in text else "cannot write")
            raise self.db.fail(what, exc) from None

    def _check_pg_writable(self) -> None:
        row = self.conn.execute("SELECT has_table_privilege(to_regclass(%s), 'UPDATE')",
                                (quote_ident(self.db.table),)).fetchone()
        if not row or not row[0]:
            raise InputError(f"{self.display}: no UPDATE permission on the table")

    def _create_columns(self) -> None:
        table = quote_ident(self.db.table)
        by_column = {c: f for f, c in self.targets.items()}
        try:
            if isinstance(self.db, SqliteDatabase):
                self.conn.execute("BEGIN IMMEDIATE")
                for column in self.missing:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(column)} TEXT")
                self.conn.execute("COMMIT")
            else:
                with self.conn.transaction():
                    for column in self.missing:
                        kind = _PG_CREATE[by_column[column]]
                        self.conn.execute(
                            f"ALTER TABLE {table} ADD COLUMN {quote_ident(column)} {kind}")
                self.types.update({c: _PG_CREATE[by_column[c]] for c in self.missing})
        except Exception as exc:
            if isinstance(self.db, SqliteDatabase) and self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise self.db.fail("cannot add the writeback columns", exc) from None
        self.report(f"added column(s) {', '.join(self.missing)} to {self.db.table_name}")
        self.missing = []

    # --------------------------------------------------------------- values
    def _encode(self, field: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(self.db, SqliteDatabase):
            return _json_text(value)
        kind = self.types.get(self.targets[field], "text").lower()
        from psycopg.types.json import Json, Jsonb

        if kind == "jsonb":
            return Jsonb(value)
        if kind == "json":
            return Json(value)
        if kind.endswith("[]"):
            items = value if isinstance(value, list) else [value]
            return [x if isinstance(x, str) else _json_text(x) for x in items]
        if kind.startswith("timestamp"):
            if isinstance(value, datetime):
                return value if "with time zone" in kind else value.replace(tzinfo=None)
            return value
        return _json_text(value)

    # ---------------------------------------------------------------- write
    def add(self, record: dict[str, Any]) -> None:
        """Queue one record's update; a batch goes in one transaction."""
        row_id = (record.get("record") or {}).get(self.id_column)
        if row_id is None:
            return
        self.seen += 1
        values = target_values(record, self._now)
        self._batch.append((row_id, {f: values[f] for f in self.targets}))
        if len(self._batch) >= _BATCH_ROWS or \
                time.monotonic() - self._last_flush >= _BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write (or, in a dry run, compare) the queued updates."""
        self._last_flush = time.monotonic()
        self._now = datetime.now(UTC)
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        if self.options.dry_run:
            self._diff(batch)
            return
        fields = list(self.targets)
        ph = self.db.placeholder
        sets = ", ".join(
            f"{quote_ident(self.targets[f])} = COALESCE({ph}, {quote_ident(self.targets[f])})"
            for f in fields)
        sql = (f"UPDATE {quote_ident(self.db.table)} SET {sets} "
               f"WHERE {quote_ident(self.id_column)} = {ph}")
        # One batch shares one enriched_at: encode it once, not per row.
        stamp = {f: self._encode(f, v[f]) for row_id, v in batch[:1] for f in fields
                 if f == "enriched_at"}
        rows = [(*(stamp[f] if f in stamp else self._encode(f, v[f]) for f in fields), row_id)
                for row_id, v in batch]
        try:
            if isinstance(self.db, SqliteDatabase):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    self.conn.executemany(sql, rows)
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
            else:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    cur.executemany(sql, rows)
        except Exception as exc:
            raise WritebackConflict(
                f"{self.display}: writeback failed ({' '.join(str(exc).split())}); "
                "finished results stay in the cache: run `bookmark-enrich writeback` later"
            ) from None
        self.changed += len(rows)

    def _diff(self, batch: list[tuple[Any, dict[str, Any]]]) -> None:
        present = [f for f in self.targets if self.targets[f] not in self.missing]
        current: dict[Any, dict[str, Any]] = {}
        if present:
            ph = self.db.placeholder
            cols = ", ".join(quote_ident(self.targets[f]) for f in present)
            idq = quote_ident(self.id_column)
            marks = ", ".join([ph] * len(batch))
            cur = self.conn.execute(
                f"SELECT {idq}, {cols} FROM {quote_ident(self.db.table)} "
                f"WHERE {idq} IN ({marks})", [row_id for row_id, _ in batch])
            for row in cur.fetchall():
                current[row[0]] = {f: _comparable(v) for f, v in zip(present, row[1:],
                                                                     strict=True)}
        for row_id, values in batch:
            new = {f: _comparable(self._encode(f, v)) for f, v in values.items()
                   if f != "enriched_at"}
            added, changed = describe_changes(current.get(row_id, {}), new)
            if added or changed:
                self.changed += 1
                self.report(change_line(f"{self.id_column}={row_id}", added, changed))

    # ------------------------------------------------------------- lifecycle
    def write(self, results: Results) -> None:
        """Write what the cache holds for each row read again (the writeback command)."""
        for _raw, record in results:
            if record is not None:
                self.add(record)
        self.flush()

    def close(self) -> None:
        if self.conn is None:
            return
        try:
            self.flush()
        finally:
            self.db.close_quietly(self.conn)
            self.conn = None


def _comparable(value: Any) -> Any:
    """DB values and parameters in one shape, so a dry run compares like with like."""
    obj = getattr(value, "obj", None)  # psycopg Json/Jsonb wrappers
    if obj is not None:
        value = obj
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, tuple):
        return list(value)
    return value
