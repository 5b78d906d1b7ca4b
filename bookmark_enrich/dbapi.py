"""Database tables the tool reads bookmarks from and writes results back to.

One :class:`Database` per dialect (SQLite from the standard library, PostgreSQL
through psycopg 3, the ``postgres`` extra) knows how to connect, name a table
safely and describe its columns. Sources read through it and writers write
through it, each on its own connection; neither knows the other.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from .errors import InputError, UsageError
from .redaction import scrub

__all__ = [
    "Database",
    "PostgresDatabase",
    "SqliteDatabase",
    "TableTarget",
    "check_where",
    "quote_ident",
    "validate_ident",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def validate_ident(name: str, what: str, *, dotted: bool = False) -> tuple[str, ...]:
    """Split and check a table or column name; anything else than plain names is refused."""
    parts = name.split(".") if dotted else [name]
    if not name or len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise UsageError(
            f"invalid {what} name {name!r}: use letters, digits and underscores"
            + (" (optionally schema.table)" if dotted else "")
        )
    return tuple(parts)


def quote_ident(parts: Sequence[str] | str) -> str:
    """Double-quote a validated identifier (``schema.table`` becomes two quoted parts)."""
    if isinstance(parts, str):
        parts = (parts,)
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_CONTROL_WORDS = frozenset({"begin", "commit", "rollback", "savepoint", "release", "abort",
                            "prepare", "deallocate", "attach", "detach", "pragma", "vacuum"})


def check_where(where: str) -> str:
    """``where`` checked to be one filter expression: raises UsageError otherwise.

    The text goes into ``WHERE (...)`` of a single read-only statement, so it may
    not end that parenthesis early, start another statement, hide the rest of
    the query in a comment, or control the transaction. String literals and
    quoted names may hold anything; backslashes and dollar quotes are not read
    as escapes, so a trick with them is refused rather than let through.
    """
    depth = 0
    i = 0
    n = len(where)
    while i < n:
        c = where[i]
        if c in "'\"":
            end = i + 1
            while True:  # a doubled quote is the quote itself
                end = where.find(c, end)
                if end < 0:
                    raise UsageError(f"--where: unbalanced {c} quote")
                if where[end + 1: end + 2] == c:
                    end += 2
                    continue
                break
            i = end + 1
            continue
        problem = (
            "a statement separator ';'" if c == ";"
            else "a comment" if where.startswith(("--", "/*"), i)
            else "a '$' (parameters and dollar quotes)" if c == "$"
            else "a ')' closing more than it opened" if c == ")" and depth == 0
            else None)
        if problem is not None:
            raise UsageError(f"--where must be one filter expression; it has {problem}")
        depth += (c == "(") - (c == ")")
        word = _WORD.match(where, i) if c.isalpha() or c == "_" else None
        if word is not None:
            if word.group().lower() in _CONTROL_WORDS:
                raise UsageError(f"--where must be one filter expression; "
                                 f"{word.group().upper()} controls the transaction")
            i = word.end()
            continue
        i += 1
    if depth:
        raise UsageError("--where: unbalanced parentheses")
    if not where.strip():
        raise UsageError("--where is empty")
    return where


class Database(ABC):
    """One table in one database: connections, safe names, column facts."""

    dialect: str
    placeholder: str = "?"

    def __init__(self, table_name: str, *, display: str, password: str | None = None) -> None:
        self.table_name = table_name
        self.table = validate_ident(table_name, "table", dotted=True)
        self.display = display
        """How to show this table in messages: secrets masked."""
        self.password = password

    @abstractmethod
    def connect(self, *, readonly: bool, timeout: float | None = None) -> Any:
        """A new DB-API connection (raises InputError with one clear line)."""

    @abstractmethod
    def table_columns(self, conn: Any) -> list[str] | None:
        """The table's column names, or None when it does not exist."""

    @abstractmethod
    def primary_key(self, conn: Any) -> str | None:
        """The single-column primary key, if the table has one."""

    def implicit_id(self) -> str | None:
        """A row id every table has (SQLite's rowid), used when there is no primary key."""
        return None

    def is_implicit(self, column: str) -> bool:
        return False

    def fail(self, what: str, exc: BaseException) -> InputError:
        """One line naming the table and what went wrong, the password scrubbed out."""
        return InputError(f"{self.display}: {what}: {scrub(str(exc), self.password)}")

    def rollback(self, conn: Any) -> None:  # noqa: B027 - optional hook
        """Leave a failed transaction so the connection can be used again."""

    def query(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement that holds the user's filter (never more than one)."""
        return conn.execute(sql, params)

    @staticmethod
    def close_quietly(conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()


class SqliteDatabase(Database):
    """A table in a SQLite file."""

    dialect = "sqlite"
    busy_timeout = 2.0
    """Seconds to wait on a lock during checks; a locked database is reported, not waited on."""

    def __init__(self, path: Path, table_name: str, *, display: str) -> None:
        super().__init__(table_name, display=display)
        self.path = path

    def connect(self, *, readonly: bool, timeout: float | None = None) -> sqlite3.Connection:
        mode = "ro" if readonly else "rw"
        wait = self.busy_timeout if timeout is None else timeout
        try:
            conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode={mode}", uri=True,
                                   timeout=wait, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise self.fail(sqlite_problem(exc), exc) from None
        return conn

    def _schema_and_name(self) -> tuple[str, str]:
        return (self.table[0], self.table[1]) if len(self.table) == 2 else ("main", self.table[0])

    def table_columns(self, conn: Any) -> list[str] | None:
        schema, name = self._schema_and_name()
        try:
            rows = conn.execute(f"PRAGMA {quote_ident(schema)}.table_xinfo({quote_ident(name)})"
                                ).fetchall()
        except sqlite3.Error as exc:
            raise self.fail(sqlite_problem(exc), exc) from None
        return [str(r[1]) for r in rows if r[6] != 1] or None  # 1: hidden column

    def primary_key(self, conn: Any) -> str | None:
        schema, name = self._schema_and_name()
        rows = conn.execute(f"PRAGMA {quote_ident(schema)}.table_info({quote_ident(name)})"
                            ).fetchall()
        keys = [r[1] for r in rows if r[5]]
        return str(keys[0]) if len(keys) == 1 else None

    def implicit_id(self) -> str | None:
        return "rowid"

    def is_implicit(self, column: str) -> bool:
        return column.lower() in ("rowid", "_rowid_", "oid")


def sqlite_problem(exc: sqlite3.Error) -> str:
    """What a SQLite error means for the user, in a few words."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "database is locked by another program"
    if "readonly" in text or "read-only" in text:
        return "database is read-only"
    if "not a database" in text or "malformed" in text:
        return "not a usable SQLite database"
    return "cannot open"


class PostgresDatabase(Database):
    """A table in PostgreSQL, through psycopg 3."""

    dialect = "postgresql"
    placeholder = "%s"
    connect_timeout = 5

    def __init__(self, base_url: str, table_name: str, *, display: str, password: str | None,
                 driver_params: dict[str, str]) -> None:
        super().__init__(table_name, display=display, password=password)
        self.base_url = base_url
        self.driver_params = driver_params

    def conninfo(self) -> str:
        query = urlencode(self.driver_params, quote_via=quote)
        return self.base_url + (f"?{query}" if query else "")

    def connect(self, *, readonly: bool, timeout: float | None = None) -> Any:
        try:
            import psycopg
        except ImportError:
            raise UsageError("PostgreSQL sources need psycopg: "
                             "pip install 'bookmark-enrich[postgres]'") from None
        params: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.driver_params:
            params["connect_timeout"] = self.connect_timeout
        if readonly:
            # The --where filter is the user's SQL: every transaction of this session
            # is read-only from the start, whatever the statement tries.
            options = self.driver_params.get("options", "")
            params["options"] = f"{options} -c default_transaction_read_only=on".strip()
        try:
            conn = psycopg.connect(self.conninfo(), **params)
        except psycopg.Error as exc:
            raise self.fail("cannot connect", exc) from None
        return conn

    def table_columns(self, conn: Any) -> list[str] | None:
        return [name for name, _ in self.column_types(conn)] or None

    def column_types(self, conn: Any) -> list[tuple[str, str]]:
        """(name, type) of every column; types as format_type() spells them."""
        try:
            rows = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum", (quote_ident(self.table),)).fetchall()
        except Exception as exc:
            self.rollback(conn)
            raise self.fail("cannot read the table's columns", exc) from None
        return [(str(r[0]), str(r[1])) for r in rows]

    def primary_key(self, conn: Any) -> str | None:
        rows = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
            (quote_ident(self.table),)).fetchall()
        return str(rows[0][0]) if len(rows) == 1 else None

    def rollback(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.rollback()

    def query(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        # Prepared on the server: one statement is all the extended protocol runs.
        return conn.execute(sql, params, prepare=True)


@dataclass(frozen=True, slots=True)
class TableTarget:
    """A table that results can be written back into: rows found by ``id_column``."""

    database: Database
    id_column: str
    display: str
