"""Pytest fixtures for the PostgreSQL server (see tests/servers/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import skip_or_fail
from tests.servers.postgres import PostgresSchema, postgres_available


@pytest.fixture
def pg_schema() -> Iterator[PostgresSchema]:
    """A fresh schema in the `test` database, dropped after the test."""
    problem = postgres_available()
    if problem is not None:
        skip_or_fail(problem)
    schema = PostgresSchema()
    try:
        yield schema
    finally:
        schema.drop()
