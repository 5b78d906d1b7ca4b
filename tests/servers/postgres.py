"""The machine's PostgreSQL server (127.0.0.1:5432, database ``test``), one schema per user.

Plain module (no pytest) so benchmarks use it too. ``PostgresSchema`` creates a
fresh schema and drops it (with everything in it) on ``drop()``.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

__all__ = ["POSTGRES_URL", "PostgresSchema", "postgres_available"]

POSTGRES_URL = os.environ.get("BOOKMARK_ENRICH_TEST_POSTGRES",
                              "postgresql://postgres@127.0.0.1:5432/test")


def connect(url: str = POSTGRES_URL) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def postgres_available(url: str = POSTGRES_URL) -> str | None:
    """None when the server answers; otherwise why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (extra [postgres])"
    try:
        connect(url).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {url} is not reachable: {' '.join(str(exc).split())}"
    return None


class PostgresSchema:
    """A throwaway schema; ``table(name)`` gives the qualified name to use in URLs."""

    def __init__(self, url: str = POSTGRES_URL) -> None:
        self.url = url
        self.name = "t_" + uuid.uuid4().hex[:12]
        self.conn = connect(url)
        self.conn.execute(f'CREATE SCHEMA "{self.name}"')

    def table(self, name: str) -> str:
        return f"{self.name}.{name}"

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.conn.execute(sql, params)

    def drop(self) -> None:
        self.conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        self.conn.close()
