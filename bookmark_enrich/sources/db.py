"""Sources that are database tables: SQLite (stdlib) and PostgreSQL (psycopg 3, extra ``postgres``).

``sqlite:///relative.db``, ``sqlite:////absolute.db`` and
``postgresql://user:pass@host:5432/db``; the table and columns come from options
or from the URL's query (``?table=bookmarks&id_column=id&url_column=url&where=...``).
Table and column names are validated as identifiers and quoted; only ``where`` is
the user's own SQL, run on a read-only connection. Rows stream in pages ordered by
the id column (keyset pagination), so millions of rows never sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..dbapi import (
    Database,
    PostgresDatabase,
    SqliteDatabase,
    TableTarget,
    check_where,
    quote_ident,
    validate_ident,
)
from ..errors import InputError, UsageError
from ..models import InputIssue, RawRecord
from ..redaction import redact_url
from .base import Source, find_url_field

__all__ = ["DbSource", "PostgresSource", "SqliteSource"]

PAGE_ROWS = 1000
"""Rows per keyset page: big enough to amortize a query, small enough to stay flat."""

_OPTION_NAMES = ("table", "id_column", "url_column", "where")


class DbSource(Source):
    """A table read in keyset pages; ``source_id`` of each record is its id column value."""

    dialect: str

    def __init__(self, spec: str, *, url_field: str | None = None, **options: Any) -> None:
        parts = urlsplit(spec)
        self.spec = spec
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        given = {k.replace("-", "_"): v for k, v in query.items()}
        unknown = sorted(set(given) - set(_OPTION_NAMES) - self._driver_params())
        if unknown:
            raise UsageError(f"unknown query parameter(s) in source URL: {', '.join(unknown)} "
                             f"(known: {', '.join(_OPTION_NAMES)})")
        for name in _OPTION_NAMES:  # flags win over query parameters
            if options.get(name) is not None:
                given[name] = options[name]
        if options.get("url_column") is None and url_field is not None:
            given["url_column"] = url_field
        table = given.get("table")
        if not table:
            raise UsageError(f"{redact_url(spec)}: name the table with --table or ?table=")
        self.table_name = table
        validate_ident(table, "table", dotted=True)
        self.id_column: str | None = None
        self.url_column: str | None = None
        if given.get("id_column") is not None:
            self.id_column = validate_ident(given["id_column"], "id column")[0]
        if given.get("url_column") is not None:
            self.url_column = validate_ident(given["url_column"], "URL column")[0]
        self.where: str | None = check_where(given["where"]) if given.get("where") else None
        self.driver_params = {k: v for k, v in given.items() if k not in _OPTION_NAMES}
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.password = parts.password
        shown = {"table": table}
        if self.where:
            shown["where"] = self.where
        self.display = redact_url(self.base_url) + "?" + urlencode(shown, quote_via=quote)
        self.format_name = self.dialect
        self.columns: list[str] = []
        self._reader: Any = None
        self.db: Database

    @classmethod
    def _driver_params(cls) -> set[str]:
        return set()

    @property
    def location(self) -> str:
        """Reopens the table (the password stays out: it would land in the cache)."""
        query: dict[str, str] = {"table": self.table_name}
        if self.id_column:
            query["id_column"] = self.id_column
        if self.url_column:
            query["url_column"] = self.url_column
        if self.where:
            query["where"] = self.where
        return redact_url(self.base_url) + "?" + urlencode(query, quote_via=quote)

    def writeback_target(self) -> TableTarget:
        assert self.id_column is not None
        return TableTarget(self.db, self.id_column, self.display)

    def replay(self) -> Iterator[RawRecord | InputIssue]:
        return self.read()

    # ------------------------------------------------------------- preflight
    def _open(self) -> None:
        db = self.db
        conn = db.connect(readonly=True)
        try:
            columns = db.table_columns(conn)
            if columns is None:
                raise InputError(f"{self.display}: no table {self.table_name!r} in this database")
            self.columns = columns
            if self.id_column is None:
                self.id_column = db.primary_key(conn) or db.implicit_id()
                if self.id_column is None:
                    raise InputError(f"{self.display}: table has no single-column primary key; "
                                     "name a unique column with --id-column")
            if self.id_column not in columns and not db.is_implicit(self.id_column):
                raise InputError(f"{self.display}: no id column {self.id_column!r} "
                                 f"(columns: {', '.join(columns)}); name one with --id-column")
            if self.url_column is None:
                self.url_column = find_url_field(columns)
                if self.url_column is None:
                    raise InputError(f"{self.display}: no URL column found (columns: "
                                     f"{', '.join(columns)}); name it with --url-column")
            elif self.url_column not in columns:
                raise InputError(f"{self.display}: no URL column {self.url_column!r} "
                                 f"(columns: {', '.join(columns)})")
            self.url_field = self.url_column
            # One page of one row proves the filter is valid SQL and the table is readable.
            self._page(conn, None, 1)
        except BaseException:
            db.close_quietly(conn)
            raise
        self._reader = conn

    def _select(self, limit: int, after: bool) -> str:
        assert self.id_column is not None
        idq = quote_ident(self.id_column)
        implicit = self.db.is_implicit(self.id_column) and self.id_column not in self.columns
        cols = f"{idq}, *" if implicit else "*"
        conds = []
        if self.where:
            conds.append(f"({self.where})")
        if after:
            conds.append(f"{idq} > {self.db.placeholder}")
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return (f"SELECT {cols} FROM {quote_ident(self.db.table)}{where} "
                f"ORDER BY {idq} LIMIT {int(limit)}")

    def _page(self, conn: Any, after: Any, limit: int) -> tuple[list[str], list[Sequence[Any]]]:
        sql = self._select(limit, after is not None)
        try:
            cur = self.db.query(conn, sql, () if after is None else (after,))
            rows = cur.fetchall()
            names = [d[0] for d in cur.description]
        except Exception as exc:
            self.db.rollback(conn)
            raise self.db.fail("cannot read the table", exc) from None
        return names, rows

    # ------------------------------------------------------------------ read
    def read(self) -> Iterator[RawRecord | InputIssue]:
        """Stream the rows in id order, one keyset page at a time."""
        assert self.id_column is not None
        conn = self._reader
        position = 0
        after: Any = None
        while True:
            names, rows = self._page(conn, after, PAGE_ROWS)
            id_index = names.index(self.id_column)
            for row in rows:
                position += 1
                record = dict(zip(names, row, strict=False))
                yield RawRecord(position, record, self.url_column, row[id_index])
            if len(rows) < PAGE_ROWS:
                return
            after = rows[-1][id_index]

    def estimate_total(self) -> int | None:
        where = f" WHERE ({self.where})" if self.where else ""
        try:
            row = self.db.query(
                self._reader, f"SELECT count(*) FROM {quote_ident(self.db.table)}{where}"
            ).fetchone()
        except Exception:
            self.db.rollback(self._reader)
            return None
        return int(row[0]) if row else None

    def close(self) -> None:
        if self._reader is not None:
            self.db.close_quietly(self._reader)
            self._reader = None


class SqliteSource(DbSource):
    """``sqlite:///path.db`` (relative) or ``sqlite:////abs/path.db``."""

    dialect = "sqlite"

    def __init__(self, spec: str, **options: Any) -> None:
        super().__init__(spec, **options)
        raw = urlsplit(spec)
        if raw.netloc not in ("", "localhost"):
            raise UsageError(f"{spec}: a SQLite URL has no host; use sqlite:///path/to/file.db")
        path = raw.path[1:] if raw.path.startswith("/") else raw.path
        if not path:
            raise UsageError(f"{spec}: no database file; use sqlite:///path/to/file.db")
        candidate = Path(path)
        # sqlite:///data/x.db is relative (as in SQLAlchemy); accept the absolute reading
        # when only that one exists, since many people write three slashes for it.
        if not candidate.is_absolute() and not candidate.exists() and Path("/", path).exists():
            candidate = Path("/", path)
        self.path = candidate.resolve()
        if not self.path.is_file():
            raise InputError(f"{spec}: no such database file ({self.path})")
        self.base_url = "sqlite:///" + str(self.path)
        self.display = f"sqlite:///{path}?table={quote(self.table_name)}" + (
            f"&where={quote(self.where)}" if self.where else "")
        self.db = SqliteDatabase(self.path, self.table_name, display=self.display)
        self._open()
        # Checked: from now on, wait for another program's write like any client would.
        self._reader.execute("PRAGMA busy_timeout=30000")


class PostgresSource(DbSource):
    """``postgresql://user:pass@host:5432/db`` through psycopg 3."""

    dialect = "postgresql"

    def __init__(self, spec: str, **options: Any) -> None:
        super().__init__(spec, **options)
        self.db = PostgresDatabase(self.base_url, self.table_name, display=self.display,
                                   password=self.password, driver_params=self.driver_params)
        self._open()

    @classmethod
    def _driver_params(cls) -> set[str]:
        # libpq options a user may put in the URL besides ours.
        return {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name",
                "connect_timeout", "options", "target_session_attrs", "host", "port",
                "user", "password", "dbname", "passfile", "service"}
