"""Sources that are database tables: SQLite (stdlib) and PostgreSQL (psycopg 3, extra ``postgres``).

``sqlite:///relative.db``, ``sqlite:////absolute.db`` and
``postgresql://user:pass@host:5432/db``; the table and columns come from options
or from the URL's query (``?table=bookmarks&id_column=id&url_column=url&where=...``).
Table and column names are validated as identifiers and quoted; only ``where`` is
the user's own SQL, run on a read-only connection. Rows stream in pages ordered by
the id column (keyset pagination), so millions of rows never sit in memory.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import InputError, UsageError
from ..models import InputIssue
from .base import RawRecord, Source, find_url_field
from .registry import register_scheme

__all__ = [
    "DbSource",
    "PostgresSource",
    "SqliteSource",
    "mask_url",
    "quote_ident",
    "validate_ident",
]

PAGE_ROWS = 1000
"""Rows per keyset page: big enough to amortize a query, small enough to stay flat."""

MASK = "********"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_OPTION_NAMES = ("table", "id_column", "url_column", "where")


def validate_ident(name: str, what: str, *, dotted: bool = False) -> tuple[str, ...]:
    """Split and check a table or column name; anything else than plain names is refused."""
    parts = name.split(".") if dotted else [name]
    if not name or len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise UsageError(
            f"invalid {what} name {name!r}: use letters, digits and _ only"
            + (" (optionally schema.table)" if dotted else "")
        )
    return tuple(parts)


def quote_ident(parts: Sequence[str] | str) -> str:
    """Double-quote a validated identifier (``schema.table`` becomes two quoted parts)."""
    if isinstance(parts, str):
        parts = (parts,)
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``********`` (for logs, output and the cache)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _scrub(message: str, secret: str | None) -> str:
    message = " ".join(str(message).split())
    return message.replace(secret, MASK) if secret else message


class DbSource(Source):
    """A table read in keyset pages; ``source_id`` of each record is its id column value."""

    dialect: str
    placeholder: str = "?"

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
            raise UsageError(f"{mask_url(spec)}: name the table with --table or ?table=")
        self.table_name = table
        self.table = validate_ident(table, "table", dotted=True)
        self.id_column: str | None = None
        self.url_column: str | None = None
        if given.get("id_column") is not None:
            self.id_column = validate_ident(given["id_column"], "id column")[0]
        if given.get("url_column") is not None:
            self.url_column = validate_ident(given["url_column"], "URL column")[0]
        self.where: str | None = given.get("where") or None
        self.driver_params = {k: v for k, v in given.items() if k not in _OPTION_NAMES}
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.base_url = base
        self.password = parts.password
        shown = {"table": table}
        if self.where:
            shown["where"] = self.where
        self.display = mask_url(base) + "?" + urlencode(shown, quote_via=quote)
        self.format_name = self.dialect
        self.columns: list[str] = []
        self._reader: Any = None

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
        return mask_url(self.base_url) + "?" + urlencode(query, quote_via=quote)

    # ---------------------------------------------------------------- driver
    @abstractmethod
    def connect(self, *, readonly: bool) -> Any:
        """A new DB-API connection (raises InputError with one clear line)."""

    @abstractmethod
    def table_columns(self, conn: Any) -> list[str] | None:
        """The table's column names, or None when it does not exist."""

    @abstractmethod
    def primary_key(self, conn: Any) -> str | None:
        """The single-column primary key, if the table has one."""

    def fail(self, what: str, exc: BaseException) -> InputError:
        return InputError(f"{self.display}: {what}: {_scrub(str(exc), self.password)}")

    # ------------------------------------------------------------- preflight
    def _open(self) -> None:
        conn = self.connect(readonly=True)
        try:
            columns = self.table_columns(conn)
            if columns is None:
                raise InputError(f"{self.display}: no table {self.table_name!r} in this database")
            self.columns = columns
            if self.id_column is None:
                self.id_column = self.primary_key(conn) or self._fallback_id()
            if self.id_column not in columns and not self._is_implicit(self.id_column):
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
            # One page of one row proves the filter is valid SQL and the table is readable.
            self._page(conn, None, 1)
        except BaseException:
            self._close_quietly(conn)
            raise
        self._reader = conn

    def _fallback_id(self) -> str:
        raise InputError(f"{self.display}: table has no single-column primary key; "
                         "name a unique column with --id-column")

    def _is_implicit(self, column: str) -> bool:
        return False

    def _select(self, limit: int, after: bool) -> str:
        assert self.id_column is not None
        idq = quote_ident(self.id_column)
        implicit = self._is_implicit(self.id_column) and self.id_column not in self.columns
        cols = f"{idq}, *" if implicit else "*"
        conds = []
        if self.where:
            conds.append(f"({self.where})")
        if after:
            conds.append(f"{idq} > {self.placeholder}")
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return (f"SELECT {cols} FROM {quote_ident(self.table)}{where} "
                f"ORDER BY {idq} LIMIT {int(limit)}")

    def _page(self, conn: Any, after: Any, limit: int) -> tuple[list[str], list[Sequence[Any]]]:
        sql = self._select(limit, after is not None)
        try:
            cur = conn.execute(sql, () if after is None else (after,))
            rows = cur.fetchall()
            names = [d[0] for d in cur.description]
        except Exception as exc:
            self._rollback(conn)
            raise self.fail("cannot read the table", exc) from None
        return names, rows

    def _rollback(self, conn: Any) -> None:
        return None

    @staticmethod
    def _close_quietly(conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()

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
            row = self._reader.execute(
                f"SELECT count(*) FROM {quote_ident(self.table)}{where}").fetchone()
        except Exception:
            self._rollback(self._reader)
            return None
        return int(row[0]) if row else None

    def close(self) -> None:
        if self._reader is not None:
            self._close_quietly(self._reader)
            self._reader = None


class SqliteSource(DbSource):
    """``sqlite:///path.db`` (relative) or ``sqlite:////abs/path.db``."""

    dialect = "sqlite"
    busy_timeout = 2.0
    """Seconds to wait on a lock during checks; a locked database is reported, not waited on."""

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
        self._open()
        # Checked: from now on, wait for another program's write like any client would.
        self._reader.execute("PRAGMA busy_timeout=30000")

    def connect(self, *, readonly: bool, timeout: float | None = None) -> sqlite3.Connection:
        mode = "ro" if readonly else "rw"
        wait = self.busy_timeout if timeout is None else timeout
        try:
            conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode={mode}", uri=True,
                                   timeout=wait, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise self.fail(_sqlite_problem(exc), exc) from None
        return conn

    def table_columns(self, conn: Any) -> list[str] | None:
        schema, name = (self.table if len(self.table) == 2 else ("main", self.table[0]))
        try:
            rows = conn.execute(f"PRAGMA {quote_ident(schema)}.table_xinfo({quote_ident(name)})"
                                ).fetchall()
        except sqlite3.Error as exc:
            raise self.fail(_sqlite_problem(exc), exc) from None
        return [str(r[1]) for r in rows if r[6] != 1] or None  # 1: hidden column

    def primary_key(self, conn: Any) -> str | None:
        schema, name = (self.table if len(self.table) == 2 else ("main", self.table[0]))
        rows = conn.execute(f"PRAGMA {quote_ident(schema)}.table_info({quote_ident(name)})"
                            ).fetchall()
        keys = [r[1] for r in rows if r[5]]
        return str(keys[0]) if len(keys) == 1 else None

    def _fallback_id(self) -> str:
        return "rowid"

    def _is_implicit(self, column: str) -> bool:
        return column.lower() in ("rowid", "_rowid_", "oid")


def _sqlite_problem(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "database is locked by another program"
    if "readonly" in text or "read-only" in text:
        return "database is read-only"
    if "not a database" in text or "malformed" in text:
        return "not a usable SQLite database"
    return "cannot open"


class PostgresSource(DbSource):
    """``postgresql://user:pass@host:5432/db`` through psycopg 3."""

    dialect = "postgresql"
    placeholder = "%s"
    connect_timeout = 5

    def __init__(self, spec: str, **options: Any) -> None:
        super().__init__(spec, **options)
        self._open()

    @classmethod
    def _driver_params(cls) -> set[str]:
        # libpq options a user may put in the URL besides ours.
        return {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name",
                "connect_timeout", "options", "target_session_attrs", "host", "port",
                "user", "password", "dbname", "passfile", "service"}

    def conninfo(self) -> str:
        query = urlencode(self.driver_params, quote_via=quote)
        return self.base_url + (f"?{query}" if query else "")

    def connect(self, *, readonly: bool) -> Any:
        try:
            import psycopg
        except ImportError:
            raise UsageError("PostgreSQL sources need psycopg: "
                             "pip install 'bookmark-enrich[postgres]'") from None
        params: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.driver_params:
            params["connect_timeout"] = self.connect_timeout
        try:
            conn = psycopg.connect(self.conninfo(), **params)
            if readonly:
                # The --where filter is the user's SQL: let it read, never write.
                conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as exc:
            raise self.fail("cannot connect", exc) from None
        return conn

    def table_columns(self, conn: Any) -> list[str] | None:
        return [name for name, _ in self.column_types(conn)] or None

    def column_types(self, conn: Any) -> list[tuple[str, str]]:
        """(name, type) of every column; types as format_type() spells them."""
        regclass = quote_ident(self.table)
        try:
            rows = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum", (regclass,)).fetchall()
        except Exception as exc:
            self._rollback(conn)
            raise self.fail("cannot read the table's columns", exc) from None
        return [(str(r[0]), str(r[1])) for r in rows]

    def primary_key(self, conn: Any) -> str | None:
        rows = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
            (quote_ident(self.table),)).fetchall()
        return str(rows[0][0]) if len(rows) == 1 else None

    def _rollback(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.rollback()


register_scheme("sqlite", SqliteSource)
register_scheme("postgresql", PostgresSource)
register_scheme("postgres", PostgresSource)
