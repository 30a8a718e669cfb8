"""The conformance suite of :class:`~qts_data.interfaces.CacheClient`.

Subclass :class:`CacheClientConformance` in a test module of your plugin and
give it a ``make_cache_client`` fixture::

    import pytest
    from qts_data.testing import CacheClientConformance

    class TestMyCache(CacheClientConformance):
        @pytest.fixture
        def make_cache_client(self, redis_prefix):
            # a NEW, unopened client over an EMPTY keyspace (e.g. a unique key prefix)
            return lambda: MyCacheClient(url=..., prefix=redis_prefix)

TTL tests use real time: TTLs of tens of milliseconds, presence checked only
when the check ran well within the TTL, absence polled for seconds after it,
so they hold on a loaded machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from qts_data.errors import CacheTypeError
from qts_data.interfaces import CacheClient, CachePipeline
from qts_data.testing._suite_support import (
    build,
    check_close_twice,
    check_close_unopened,
    check_health,
    collect,
    expires,
)

__all__ = ["CacheClientConformance"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


#: A TTL short enough to wait for, in ms.
SHORT_TTL = 50
#: A TTL that does not run out during a test, in ms.
LONG_TTL = 600_000


class CacheClientConformance:
    """Conformance tests of a :class:`~qts_data.interfaces.CacheClient`.

    Provide in the subclass:

    * ``make_cache_client`` (fixture, required): returns a zero-argument
      callable that creates a new, unopened client over an empty keyspace (it
      may return an awaitable of the client). The suite's ``cache_client``
      fixture opens it and closes it after the test.

    Attributes you may override:

    * ``scan_key_count``: keys created for the ``scan_iter`` test (more than
      one SCAN batch, so the cursor loop must run to completion).
    """

    pytestmark: ClassVar[Any] = pytest.mark.asyncio

    scan_key_count: ClassVar[int] = 1200

    @pytest_asyncio.fixture(loop_scope="function")
    async def cache_client(
        self, make_cache_client: Callable[[], Any]
    ) -> AsyncIterator[CacheClient]:
        """The client under test, opened, over an empty keyspace; closed after the test."""
        made: CacheClient = await build(make_cache_client, CacheClient, "make_cache_client")
        await made.open()
        try:
            yield made
        finally:
            await made.close()

    # -- strings ---------------------------------------------------------------------------------
    async def test_get_of_a_missing_key_is_none(self, cache_client: CacheClient) -> None:
        assert await cache_client.get("missing") is None
        assert await cache_client.exists("missing") is False

    async def test_set_then_get_returns_the_bytes(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", b"value")
        assert await cache_client.get("k") == b"value"
        assert await cache_client.exists("k") is True

    async def test_str_value_is_stored_as_utf8_bytes(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", "héllo ₩ 호가 🚀")
        value = await cache_client.get("k")
        assert isinstance(value, bytes)
        assert value == "héllo ₩ 호가 🚀".encode()

    async def test_empty_value_is_stored(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", b"")
        assert await cache_client.get("k") == b""
        assert await cache_client.exists("k") is True

    async def test_set_overwrites(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", b"one")
        await cache_client.set("k", b"two")
        assert await cache_client.get("k") == b"two"

    async def test_every_byte_value_round_trips(self, cache_client: CacheClient) -> None:
        every_byte = bytes(range(256))
        await cache_client.set("bin", every_byte)
        assert await cache_client.get("bin") == every_byte
        await cache_client.hset("binh", {"f": every_byte, "g": every_byte[::-1]})
        assert await cache_client.hgetall("binh") == {"f": every_byte, "g": every_byte[::-1]}

    async def test_keys_with_unicode_and_punctuation(self, cache_client: CacheClient) -> None:
        keys = ["uni:ключ:{btc}:호가", "uni:a b:{}:ü", "uni:*?[x]", "uni:tab\tnl\n"]
        for i, key in enumerate(keys):
            await cache_client.set(key, str(i))
        for i, key in enumerate(keys):
            assert await cache_client.get(key) == str(i).encode()
        await cache_client.hset("uni:{h}:ä", {"fïeld:{x}": b"1"})
        assert await cache_client.hget("uni:{h}:ä", "fïeld:{x}") == b"1"
        await cache_client.zadd("uni:{z}:ö", {"mêmber:{y}": 1.5})
        assert await cache_client.zrange("uni:{z}:ö") == [("mêmber:{y}", 1.5)]
        found = set(await collect(cache_client.scan_iter("uni:*")))
        assert found == {*keys, "uni:{h}:ä", "uni:{z}:ö"}

    async def test_delete_returns_how_many_existed(self, cache_client: CacheClient) -> None:
        await cache_client.set("s", b"1")
        await cache_client.hset("h", {"f": b"1"})
        await cache_client.zadd("z", {"m": 1})
        assert await cache_client.delete("s", "h", "z", "missing") == 3
        for key in ("s", "h", "z"):
            assert await cache_client.exists(key) is False
        assert await cache_client.get("s") is None
        assert await cache_client.delete("s") == 0
        assert await cache_client.delete("missing") == 0

    async def test_mget_returns_values_in_key_order(self, cache_client: CacheClient) -> None:
        await cache_client.set("a", b"1")
        await cache_client.set("c", "3")
        assert await cache_client.mget(["a", "b", "c", "a"]) == [b"1", None, b"3", b"1"]
        assert await cache_client.mget([]) == []

    # -- TTLs ------------------------------------------------------------------------------------------
    async def test_set_with_ttl_expires(self, cache_client: CacheClient) -> None:
        async def present() -> bool:
            return await cache_client.get("k") is not None

        await expires(
            lambda: cache_client.set("k", b"v", ttl_ms=SHORT_TTL), present, SHORT_TTL, "key 'k'"
        )
        assert await cache_client.exists("k") is False
        assert await cache_client.ttl_ms("k") == -2

    async def test_ttl_ms_reports_missing_persistent_and_remaining(
        self, cache_client: CacheClient
    ) -> None:
        assert await cache_client.ttl_ms("missing") == -2
        await cache_client.set("forever", b"v")
        assert await cache_client.ttl_ms("forever") is None
        await cache_client.set("timed", b"v", ttl_ms=LONG_TTL)
        remaining = await cache_client.ttl_ms("timed")
        assert isinstance(remaining, int)
        assert LONG_TTL - 60_000 < remaining <= LONG_TTL

    async def test_set_replaces_the_ttl(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", b"1", ttl_ms=100)
        await cache_client.set("k", b"2", ttl_ms=LONG_TTL)
        remaining = await cache_client.ttl_ms("k")
        assert remaining is not None
        assert remaining > 1000
        await asyncio.sleep(0.3)
        assert await cache_client.get("k") == b"2"

    async def test_set_without_ttl_clears_the_ttl(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", b"1", ttl_ms=100)
        await cache_client.set("k", b"2")
        assert await cache_client.ttl_ms("k") is None
        await asyncio.sleep(0.3)
        assert await cache_client.get("k") == b"2"

    async def test_expire_sets_a_ttl(self, cache_client: CacheClient) -> None:
        await cache_client.set("k", b"v")
        assert await cache_client.expire("k", LONG_TTL) is True
        remaining = await cache_client.ttl_ms("k")
        assert remaining is not None
        assert 0 < remaining <= LONG_TTL

        async def present() -> bool:
            return await cache_client.exists("k")

        await cache_client.set("k", b"v")
        await expires(lambda: cache_client.expire("k", SHORT_TTL), present, SHORT_TTL, "key 'k'")

    async def test_expire_of_a_missing_key_returns_false(self, cache_client: CacheClient) -> None:
        assert await cache_client.expire("missing", LONG_TTL) is False
        assert await cache_client.exists("missing") is False
        assert await cache_client.ttl_ms("missing") == -2

    async def test_expire_works_on_hashes_and_sorted_sets(self, cache_client: CacheClient) -> None:
        await cache_client.hset("h", {"f": b"1"})
        await cache_client.zadd("z", {"m": 1})
        assert await cache_client.expire("h", LONG_TTL) is True
        assert await cache_client.expire("z", LONG_TTL) is True
        for key in ("h", "z"):
            remaining = await cache_client.ttl_ms(key)
            assert remaining is not None
            assert 0 < remaining <= LONG_TTL

    # -- hashes ------------------------------------------------------------------------------------------
    async def test_hset_merges_fields_and_counts_the_new_ones(
        self, cache_client: CacheClient
    ) -> None:
        assert await cache_client.hset("h", {"a": b"1", "b": "2"}) == 2
        assert await cache_client.hset("h", {"b": b"20", "c": b"3"}) == 1
        assert await cache_client.hset("h", {"a": b"10"}) == 0
        assert await cache_client.hgetall("h") == {"a": b"10", "b": b"20", "c": b"3"}
        assert await cache_client.hget("h", "b") == b"20"
        assert await cache_client.hget("h", "missing") is None

    async def test_hash_str_values_are_stored_as_utf8(self, cache_client: CacheClient) -> None:
        await cache_client.hset("h", {"price": "71000.12345678", "name": "비트코인"})
        assert await cache_client.hget("h", "price") == b"71000.12345678"
        assert await cache_client.hget("h", "name") == "비트코인".encode()

    async def test_hash_reads_of_a_missing_key(self, cache_client: CacheClient) -> None:
        assert await cache_client.hgetall("missing") == {}
        assert await cache_client.hget("missing", "f") is None
        assert await cache_client.hdel("missing", "f") == 0
        assert await cache_client.exists("missing") is False

    async def test_hdel_counts_removed_fields_and_the_last_removes_the_key(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.hset("h", {"a": b"1", "b": b"2", "c": b"3"})
        assert await cache_client.hdel("h", "a", "missing") == 1
        assert await cache_client.hgetall("h") == {"b": b"2", "c": b"3"}
        assert await cache_client.hdel("h", "b", "c") == 2
        assert await cache_client.exists("h") is False
        assert await cache_client.hgetall("h") == {}

    async def test_hset_keeps_the_ttl_unless_given(self, cache_client: CacheClient) -> None:
        await cache_client.hset("h", {"a": b"1"}, ttl_ms=LONG_TTL)
        await cache_client.hset("h", {"b": b"2"})
        remaining = await cache_client.ttl_ms("h")
        assert remaining is not None
        assert 0 < remaining <= LONG_TTL
        await cache_client.hset("h", {"c": b"3"}, ttl_ms=2 * LONG_TTL)
        remaining = await cache_client.ttl_ms("h")
        assert remaining is not None
        assert LONG_TTL < remaining <= 2 * LONG_TTL
        await cache_client.hset("p", {"a": b"1"})
        assert await cache_client.ttl_ms("p") is None

    async def test_hset_with_ttl_expires(self, cache_client: CacheClient) -> None:
        async def present() -> bool:
            return await cache_client.hgetall("h") != {}

        await expires(
            lambda: cache_client.hset("h", {"f": b"v"}, ttl_ms=SHORT_TTL),
            present,
            SHORT_TTL,
            "hash 'h'",
        )
        assert await cache_client.exists("h") is False

    # -- sorted sets -------------------------------------------------------------------------------------
    async def test_zadd_counts_new_members_and_rescores(self, cache_client: CacheClient) -> None:
        assert await cache_client.zadd("z", {"a": 1.0, "b": 2.0, "c": 3.0}) == 3
        assert await cache_client.zadd("z", {"a": 5.5, "d": 0.25}) == 1
        assert await cache_client.zcard("z") == 4
        assert await cache_client.zrange("z") == [("d", 0.25), ("b", 2.0), ("c", 3.0), ("a", 5.5)]

    async def test_zrange_by_rank(self, cache_client: CacheClient) -> None:
        await cache_client.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": -5.5})
        assert await cache_client.zrange("z", 0, -1) == [
            ("e", -5.5),
            ("a", 1.0),
            ("b", 2.0),
            ("c", 3.0),
            ("d", 4.0),
        ]
        assert await cache_client.zrange("z", 1, 2) == [("a", 1.0), ("b", 2.0)]
        assert await cache_client.zrange("z", -2, -1) == [("c", 3.0), ("d", 4.0)]
        assert await cache_client.zrange("z", 0, 0) == [("e", -5.5)]
        assert await cache_client.zrange("z", 3, 100) == [("c", 3.0), ("d", 4.0)]
        assert await cache_client.zrange("z", -100, 0) == [("e", -5.5)]
        assert await cache_client.zrange("z", 3, 1) == []
        assert await cache_client.zrange("z", 10, 20) == []
        scores = [score for _, score in await cache_client.zrange("z")]
        assert all(isinstance(score, float) for score in scores)

    async def test_zrange_descending(self, cache_client: CacheClient) -> None:
        await cache_client.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
        assert await cache_client.zrange("z", desc=True) == [
            ("d", 4.0),
            ("c", 3.0),
            ("b", 2.0),
            ("a", 1.0),
        ]
        assert await cache_client.zrange("z", 0, 1, desc=True) == [("d", 4.0), ("c", 3.0)]
        assert await cache_client.zrange("z", -1, -1, desc=True) == [("a", 1.0)]

    async def test_zrangebyscore_is_inclusive_and_ascending(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
        assert await cache_client.zrangebyscore("z", 2, 4) == [("b", 2.0), ("c", 3.0), ("d", 4.0)]
        assert await cache_client.zrangebyscore("z", 2.5, 3.5) == [("c", 3.0)]
        assert await cache_client.zrangebyscore("z", 6, 9) == []
        assert await cache_client.zrangebyscore("z", float("-inf"), float("inf")) == [
            ("a", 1.0),
            ("b", 2.0),
            ("c", 3.0),
            ("d", 4.0),
            ("e", 5.0),
        ]

    async def test_zrem_counts_and_the_last_removes_the_key(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.zadd("z", {"a": 1, "b": 2, "c": 3})
        assert await cache_client.zrem("z", "a", "missing") == 1
        assert await cache_client.zcard("z") == 2
        assert await cache_client.zrange("z") == [("b", 2.0), ("c", 3.0)]
        assert await cache_client.zrem("z", "b", "c") == 2
        assert await cache_client.exists("z") is False
        assert await cache_client.zcard("z") == 0

    async def test_sorted_set_reads_of_a_missing_key(self, cache_client: CacheClient) -> None:
        assert await cache_client.zrange("missing") == []
        assert await cache_client.zrangebyscore("missing", 0, 10) == []
        assert await cache_client.zcard("missing") == 0
        assert await cache_client.zrem("missing", "a") == 0
        assert await cache_client.exists("missing") is False

    async def test_zadd_keeps_the_ttl_unless_given(self, cache_client: CacheClient) -> None:
        await cache_client.zadd("z", {"a": 1}, ttl_ms=LONG_TTL)
        await cache_client.zadd("z", {"b": 2})
        remaining = await cache_client.ttl_ms("z")
        assert remaining is not None
        assert 0 < remaining <= LONG_TTL
        await cache_client.zadd("z", {"c": 3}, ttl_ms=2 * LONG_TTL)
        remaining = await cache_client.ttl_ms("z")
        assert remaining is not None
        assert LONG_TTL < remaining <= 2 * LONG_TTL

    async def test_zadd_with_ttl_expires(self, cache_client: CacheClient) -> None:
        async def present() -> bool:
            return await cache_client.zcard("z") > 0

        await expires(
            lambda: cache_client.zadd("z", {"m": 1}, ttl_ms=SHORT_TTL),
            present,
            SHORT_TTL,
            "zset 'z'",
        )
        assert await cache_client.exists("z") is False

    # -- types -----------------------------------------------------------------------------------------
    # -- versioned writes ------------------------------------------------------------------------
    async def test_hset_if_newer_replaces_an_older_or_equal_version_and_refuses_a_newer(
        self, cache_client: CacheClient
    ) -> None:
        expire_at = _now_ms() + LONG_TTL

        async def write(version: int, value: bytes) -> bool:
            mapping: dict[str, bytes | str] = {"v": value, "t": str(version)}
            return await cache_client.hset_if_newer(
                "h", mapping, version_field="t", expire_at_ms=expire_at
            )

        assert await write(10, b"ten") is True
        await cache_client.hset("h", {"extra": b"x"})
        assert await write(20, b"twenty") is True
        assert await cache_client.hgetall("h") == {"v": b"twenty", "t": b"20"}  # replaced whole
        assert await write(15, b"late") is False
        assert await cache_client.hgetall("h") == {"v": b"twenty", "t": b"20"}
        assert await write(20, b"again") is True  # the same version again: harmless
        assert await cache_client.hget("h", "v") == b"again"

    async def test_hset_if_newer_expires_at_the_given_time(self, cache_client: CacheClient) -> None:
        expire_at = _now_ms() + LONG_TTL
        mapping: dict[str, bytes | str] = {"v": b"1", "t": "1"}
        await cache_client.hset_if_newer("h", mapping, version_field="t", expire_at_ms=expire_at)
        remaining = await cache_client.ttl_ms("h")
        assert remaining is not None and 0 < remaining <= expire_at - _now_ms() + 1

        async def present() -> bool:
            return await cache_client.exists("s")

        await expires(
            lambda: cache_client.hset_if_newer(
                "s", mapping, version_field="t", expire_at_ms=_now_ms() + SHORT_TTL
            ),
            present,
            SHORT_TTL,
            "hash 's' written with hset_if_newer",
        )

    async def test_a_versioned_write_past_its_expiry_writes_nothing(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.hset("h", {"v": b"old", "t": b"1"})
        newer: dict[str, bytes | str] = {"v": b"new", "t": "2"}
        written = await cache_client.hset_if_newer(
            "h", newer, version_field="t", expire_at_ms=_now_ms() - 1
        )
        assert written is False
        assert await cache_client.hgetall("h") == {"v": b"old", "t": b"1"}
        replaced = await cache_client.zreplace_if_newer(
            "{z}", {"m": 1.0}, version_key="{z}:t", version=2, expire_at_ms=_now_ms() - 1
        )
        assert replaced is False
        assert await cache_client.exists("{z}") is False
        assert await cache_client.exists("{z}:t") is False

    async def test_zreplace_if_newer_replaces_the_set_and_its_version_unless_newer(
        self, cache_client: CacheClient
    ) -> None:
        expire_at = _now_ms() + LONG_TTL

        async def write(version: int, members: dict[str, float]) -> bool:
            return await cache_client.zreplace_if_newer(
                "{z}", members, version_key="{z}:t", version=version, expire_at_ms=expire_at
            )

        assert await write(10, {"a": 1.0, "b": 2.0}) is True
        assert await write(20, {"c": 3.0}) is True
        assert await cache_client.zrange("{z}") == [("c", 3.0)]
        assert await cache_client.get("{z}:t") == b"20"
        assert await write(15, {"late": 9.0}) is False
        assert await cache_client.zrange("{z}") == [("c", 3.0)]
        assert await write(30, {}) is True  # an empty book: no set, the version stays
        assert await cache_client.exists("{z}") is False
        assert await cache_client.get("{z}:t") == b"30"
        for key in ("{z}:t",):
            remaining = await cache_client.ttl_ms(key)
            assert remaining is not None and 0 < remaining <= LONG_TTL

    async def test_versioned_writes_refuse_a_key_of_another_type(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.set("{s}", b"v")
        with pytest.raises(CacheTypeError):
            await cache_client.hset_if_newer(
                "{s}", {"t": "1"}, version_field="t", expire_at_ms=_now_ms() + LONG_TTL
            )
        with pytest.raises(CacheTypeError):
            await cache_client.zreplace_if_newer(
                "{s}", {"m": 1.0}, version_key="{s}:t", version=1, expire_at_ms=_now_ms() + LONG_TTL
            )
        assert await cache_client.get("{s}") == b"v"
        assert await cache_client.exists("{s}:t") is False

    async def test_string_key_refuses_hash_and_sorted_set_commands(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.set("s", b"v")
        with pytest.raises(CacheTypeError):
            await cache_client.hget("s", "f")
        with pytest.raises(CacheTypeError):
            await cache_client.hgetall("s")
        with pytest.raises(CacheTypeError):
            await cache_client.hset("s", {"f": b"v"})
        with pytest.raises(CacheTypeError):
            await cache_client.zrange("s")
        with pytest.raises(CacheTypeError):
            await cache_client.zcard("s")
        with pytest.raises(CacheTypeError):
            await cache_client.zadd("s", {"m": 1})
        assert await cache_client.get("s") == b"v"

    async def test_hash_key_refuses_string_and_sorted_set_commands(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.hset("h", {"f": b"v"})
        with pytest.raises(CacheTypeError):
            await cache_client.get("h")
        with pytest.raises(CacheTypeError):
            await cache_client.zrangebyscore("h", 0, 1)
        with pytest.raises(CacheTypeError):
            await cache_client.zadd("h", {"m": 1})
        assert await cache_client.hgetall("h") == {"f": b"v"}

    async def test_sorted_set_key_refuses_string_and_hash_commands(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.zadd("z", {"m": 1})
        with pytest.raises(CacheTypeError):
            await cache_client.get("z")
        with pytest.raises(CacheTypeError):
            await cache_client.hgetall("z")
        with pytest.raises(CacheTypeError):
            await cache_client.hset("z", {"f": b"v"})
        assert await cache_client.zrange("z") == [("m", 1.0)]

    # -- keyspace -------------------------------------------------------------------------------------
    async def test_scan_iter_finds_every_matching_key_and_no_other(
        self, cache_client: CacheClient
    ) -> None:
        wanted = {f"scan:{i}" for i in range(self.scan_key_count)}
        others = {f"other:{i}" for i in range(50)} | {"scanx", "xscan:1", "SCAN:1"}
        keys = sorted(wanted | others)
        for start in range(0, len(keys), 100):
            await asyncio.gather(
                *(cache_client.set(key, b"v") for key in keys[start : start + 100])
            )
        await cache_client.hset("scan:hash", {"f": b"v"})
        await cache_client.zadd("scan:zset", {"m": 1})
        wanted |= {"scan:hash", "scan:zset"}
        found = await collect(cache_client.scan_iter("scan:*"))
        assert set(found) == wanted
        found = await collect(cache_client.scan_iter(match="scan:*", count=100))
        assert set(found) == wanted
        assert set(await collect(cache_client.scan_iter("scan:1?"))) == {
            f"scan:{i}" for i in range(10, 20)
        }
        assert set(await collect(cache_client.scan_iter("nothing:*"))) == set()
        every = set(await collect(cache_client.scan_iter()))
        assert wanted | others <= every

    async def test_scan_iter_skips_deleted_keys(self, cache_client: CacheClient) -> None:
        for i in range(20):
            await cache_client.set(f"d:{i}", b"v")
        await cache_client.delete(*(f"d:{i}" for i in range(10)))
        assert set(await collect(cache_client.scan_iter("d:*"))) == {
            f"d:{i}" for i in range(10, 20)
        }

    # -- pipelines ----------------------------------------------------------------------------------
    async def test_pipeline_returns_results_in_order_and_applies_all(
        self, cache_client: CacheClient
    ) -> None:
        await cache_client.set("old", b"x")
        pipe = cache_client.pipeline()
        assert isinstance(pipe, CachePipeline)
        assert pipe.set("a", b"1") is pipe
        assert pipe.get("a") is pipe
        pipe.hset("h", {"f": b"1", "g": "2"}).hgetall("h")
        pipe.zadd("z", {"m": 1, "n": 2}).zrem("z", "m", "missing")
        pipe.expire("a", LONG_TTL).expire("missing", LONG_TTL)
        pipe.delete("old", "missing").get("missing")
        results = await pipe.execute()
        assert len(results) == 10
        assert results[1:] == [b"1", 2, {"f": b"1", "g": b"2"}, 2, 1, True, False, 1, None]
        assert await cache_client.get("a") == b"1"
        assert await cache_client.hgetall("h") == {"f": b"1", "g": b"2"}
        assert await cache_client.zrange("z") == [("n", 2.0)]
        assert await cache_client.exists("old") is False
        remaining = await cache_client.ttl_ms("a")
        assert remaining is not None
        assert 0 < remaining <= LONG_TTL

    async def test_pipeline_applies_nothing_before_execute(self, cache_client: CacheClient) -> None:
        pipe = cache_client.pipeline()
        pipe.set("a", b"1").hset("h", {"f": b"1"})
        assert await cache_client.exists("a") is False
        assert await cache_client.exists("h") is False
        await pipe.execute()
        assert await cache_client.get("a") == b"1"

    async def test_pipeline_queue_is_empty_after_execute(self, cache_client: CacheClient) -> None:
        pipe = cache_client.pipeline()
        pipe.set("a", b"1").get("a")
        assert len(await pipe.execute()) == 2
        assert await pipe.execute() == []
        pipe.get("a")
        assert await pipe.execute() == [b"1"]

    async def test_pipeline_set_with_ttl(self, cache_client: CacheClient) -> None:
        await cache_client.pipeline().set("a", b"1", ttl_ms=LONG_TTL).set("b", b"2").execute()
        remaining = await cache_client.ttl_ms("a")
        assert remaining is not None
        assert 0 < remaining <= LONG_TTL
        assert await cache_client.ttl_ms("b") is None

    async def test_pipeline_as_context_manager_executes_on_exit(
        self, cache_client: CacheClient
    ) -> None:
        async with cache_client.pipeline() as pipe:
            pipe.set("a", b"1")
            pipe.hset("h", {"f": b"1"})
            assert await cache_client.exists("a") is False
        assert await cache_client.get("a") == b"1"
        assert await cache_client.hgetall("h") == {"f": b"1"}

    async def test_pipeline_context_manager_discards_on_error(
        self, cache_client: CacheClient
    ) -> None:
        async def fail_inside() -> None:
            async with cache_client.pipeline() as pipe:
                pipe.set("a", b"1")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await fail_inside()
        assert await cache_client.exists("a") is False

    async def test_transaction_pipeline_returns_results_and_applies_all(
        self, cache_client: CacheClient
    ) -> None:
        pipe = cache_client.pipeline(transaction=True)
        pipe.set("a", b"1").set("b", b"2").get("a").get("b").delete("a")
        results = await pipe.execute()
        assert len(results) == 5
        assert results[2:] == [b"1", b"2", 1]
        assert await cache_client.get("a") is None
        assert await cache_client.get("b") == b"2"
        async with cache_client.pipeline(transaction=True) as tx:
            tx.zadd("z", {"m": 1}).hset("h", {"f": b"v"})
        assert await cache_client.zcard("z") == 1
        assert await cache_client.hget("h", "f") == b"v"

    async def test_transaction_pipelines_are_not_interleaved(
        self, cache_client: CacheClient
    ) -> None:
        async def writer(i: int) -> None:
            value = str(i).encode()
            await cache_client.pipeline(transaction=True).set("x", value).set("y", value).execute()

        async def reader() -> list[Any]:
            return await cache_client.pipeline(transaction=True).get("x").get("y").execute()

        await writer(-1)
        results = await asyncio.gather(*(job for i in range(30) for job in (writer(i), reader())))
        pairs = [r for r in results if r is not None]
        assert len(pairs) == 30
        for x, y in pairs:
            assert x == y, f"a transaction saw half of another: x={x!r}, y={y!r}"

    # -- shards ---------------------------------------------------------------------------------------
    async def test_shard_of_names_a_serving_shard_and_keeps_a_hash_tag_together(
        self, cache_client: CacheClient
    ) -> None:
        """``shard_of`` is None (one shard) or one of ``shards()``; a symbol's keys (one hash
        tag) are on one shard, since the cache manager judges a multi-key call by one key."""
        shards = set(cache_client.shards())
        for n in range(50):
            tagged = [f"qts:v2:price:{{S{n}}}", f"qts:v2:book:{{S{n}}}:bid", f"x:{{S{n}}}:t"]
            found = {cache_client.shard_of(key) for key in tagged}
            assert len(found) == 1, f"the keys of hash tag S{n} are on shards {found}"
            (shard,) = found
            assert shard is None or shard in shards, f"{shard!r} is not in shards() {shards}"
        if not shards:
            assert cache_client.shard_of("any") is None

    # -- concurrency, health, lifecycle -------------------------------------------------------------
    async def test_concurrent_writers_all_land(self, cache_client: CacheClient) -> None:
        await asyncio.gather(
            *(cache_client.set(f"c:{i}", str(i)) for i in range(200)),
            *(cache_client.hset("c:hash", {f"f{i}": str(i)}) for i in range(200)),
            *(cache_client.zadd("c:zset", {f"m{i}": i}) for i in range(200)),
        )
        values = await cache_client.mget([f"c:{i}" for i in range(200)])
        assert values == [str(i).encode() for i in range(200)]
        assert await cache_client.hgetall("c:hash") == {
            f"f{i}": str(i).encode() for i in range(200)
        }
        assert await cache_client.zcard("c:zset") == 200

    async def test_health_check_returns_a_health_status(self, cache_client: CacheClient) -> None:
        await check_health(cache_client)

    async def test_close_of_an_unopened_client_does_not_raise(
        self, make_cache_client: Callable[[], Any]
    ) -> None:
        await check_close_unopened(await build(make_cache_client, CacheClient, "make_cache_client"))

    async def test_close_twice_does_not_raise(self, make_cache_client: Callable[[], Any]) -> None:
        await check_close_twice(await build(make_cache_client, CacheClient, "make_cache_client"))
