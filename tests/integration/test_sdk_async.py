"""The asyncio SDK against a real server: the core calls, awaited, and many in flight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shoal import (
    AlreadyExistsError,
    AsyncClient,
    AsyncTransaction,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Versioned,
)

pytestmark = pytest.mark.integration

ACCOUNTS_SCHEMA = {"owner": "string", "balance": {"type": "int", "min": 0}}


def test_readme_example_async(shoal_server: str, map_name: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(shoal_server) as client:
            info = await client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
            assert info.name == map_name
            await client.put(map_name, "alice", {"owner": "Alice", "balance": 100})
            assert await client.get(map_name, "alice") == {"owner": "Alice", "balance": 100}
            assert await client.get_many(map_name, ["alice", "bob"]) == {
                "alice": {"owner": "Alice", "balance": 100}
            }
            assert await client.delete(map_name, "alice") is True
            assert await client.get(map_name, "alice") is None
            assert await client.get_versioned(map_name, "alice") is None
            assert await client.delete(map_name, "alice") is False

    asyncio.run(scenario())


def test_core_calls_async(shoal_server: str, map_name: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(shoal_server) as client:
            await client.create_map(map_name)
            with pytest.raises(AlreadyExistsError):
                await client.create_map(map_name)

            first = await client.put(map_name, "k", {"n": 1}, if_absent=True)
            with pytest.raises(FailedPreconditionError):
                await client.put(map_name, "k", {"n": 2}, if_absent=True)
            second = await client.put(map_name, "k", {"n": 2}, if_version=first)
            with pytest.raises(FailedPreconditionError):
                await client.put(map_name, "k", {"n": 3}, if_version=first)
            with pytest.raises(FailedPreconditionError):
                await client.put(map_name, "absent", {"n": 3}, if_exists=True)
            assert second > first
            assert await client.get_versioned(map_name, "k") == Versioned({"n": 2}, second)

            items = {f"item-{index:02d}": index for index in range(40)}
            versions = await client.put_many(map_name, items)
            assert len(versions) == 40
            assert await client.get_versioned(map_name, "item-07") == Versioned(7, versions[7])

            scanned = [pair async for pair in client.scan(map_name, prefix="item-")]
            assert dict(scanned) == items
            limited = [pair async for pair in client.scan(map_name, prefix="item-", limit=5)]
            assert len(limited) == 5

            stamp = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
            await client.put(map_name, "typed", {"raw": b"\x00\x01", "at": stamp, "f": 2.0})
            typed = await client.get(map_name, "typed")
            assert typed == {"raw": b"\x00\x01", "at": stamp, "f": 2.0}
            assert type(typed["f"]) is float

            described = await client.describe_map(map_name)
            assert described.entries == 42
            assert map_name in {info.name for info in await client.list_maps()}
            info = await client.cluster_info()
            assert info.backend == "memory"
            assert info.partitions == 64

            assert await client.drop_map(map_name) is True
            with pytest.raises(NotFoundError):
                await client.get(map_name, "k")

    asyncio.run(scenario())


def test_validation_errors_async(shoal_server: str, map_name: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(shoal_server) as client:
            await client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
            with pytest.raises(InvalidArgumentError) as raised:
                await client.put(map_name, "k", {"owner": "x", "balance": -5})
            assert raised.value.field == "balance"
            assert raised.value.rule == "min"
            assert await client.get(map_name, "k") is None

    asyncio.run(scenario())


def test_64_concurrent_gets(shoal_server: str, map_name: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(shoal_server) as client:
            await client.create_map(map_name)
            stored = {
                f"key-{index}": {"index": index, "payload": "x" * index} for index in range(64)
            }
            versions = dict(zip(stored, await client.put_many(map_name, stored), strict=True))
            keys = [*stored, "missing-1", "missing-2"]
            # 64 calls in flight at once, several times over.
            for _ in range(3):
                results = await asyncio.gather(
                    *(client.get_versioned(map_name, key) for key in keys[:64])
                )
                assert results == [Versioned(stored[key], versions[key]) for key in keys[:64]]
            missing = await asyncio.gather(*(client.get(map_name, key) for key in keys[64:]))
            assert missing == [None, None]

    asyncio.run(scenario())


def test_async_transactions(shoal_server: str, map_name: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(shoal_server) as client:
            await client.create_map(map_name)
            await client.put(map_name, "counter", {"n": 0})

            async def bump(transaction: AsyncTransaction, key: str) -> int:
                current = await transaction.get(map_name, key)
                transaction.put(map_name, key, {"n": current["n"] + 1})
                return int(current["n"] + 1)

            results = await asyncio.gather(*(client.transact(bump, "counter") for _ in range(8)))
            assert sorted(results) == list(range(1, 9))
            assert await client.get(map_name, "counter") == {"n": 8}

            async with client.transaction() as transaction:
                transaction.put(map_name, "a", 1)
                assert await transaction.get(map_name, "a") == 1
            assert await client.get(map_name, "a") == 1

            with pytest.raises(RuntimeError):
                async with client.transaction() as transaction:
                    transaction.put(map_name, "b", 1)
                    raise RuntimeError("abandon")
            assert await client.get(map_name, "b") is None

    asyncio.run(scenario())
