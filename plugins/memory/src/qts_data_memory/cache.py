"""The in-process cache client: Redis semantics on an ``OrderedDict``, with millisecond TTLs.

Layout:

* ``_data`` (an :class:`~collections.OrderedDict`) maps each key to its value:
  ``bytes`` for a string, ``dict[str, bytes]`` for a hash, :class:`_ZSet` for a
  sorted set. Its order is the LRU order: every read or write of a key moves it
  to the end, and ``max_entries`` is kept by popping from the front.
* ``_expires`` maps each key that has a TTL to its deadline (ns on the clock).
* ``_heap`` holds ``(deadline, key)`` for the keys in ``_expires``, smallest
  first. There is no timer or task per key: a read of an expired key removes
  it (lazy expiry), and every write that adds a key or sets a TTL (the writes
  that can grow memory) pops at most ``sweep_batch`` due entries off the heap
  (active expiry), so expired keys are reclaimed without reads. Eviction
  reclaims expired keys before it evicts live ones.
  Each key in ``_expires`` has a heap entry no later than its deadline: a TTL
  moved later (the usual refresh) pushes nothing, and the sweep re-queues the
  old entry at the new deadline when it comes up. An entry of a key without a
  deadline (deleted, evicted, made persistent) is stale and dropped when popped;
  the heap is rebuilt from ``_expires`` when stale entries outnumber live ones.

Every operation is synchronous under its ``async def``: nothing awaits in the
middle of a mutation, so each command, and each pipeline, is atomic with
respect to other coroutines. ``get`` and ``set`` are written out in full (not
through the helpers the other commands share) because they are the hot path.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from fnmatch import translate
from heapq import heapify, heappop, heappush
from typing import Any

from qts_data.contracts import HealthState, HealthStatus
from qts_data.errors import CacheTypeError
from qts_data.interfaces import CacheClient, CachePipeline, MessageHandler, Subscription, Value

__all__ = ["MemoryCacheClient", "MemoryPipeline"]

_NS_PER_MS = 1_000_000
#: Minimum heap size before a rebuild is considered (small heaps are cheap either way).
_HEAP_REBUILD_MIN = 64


class _ZSet:
    """A sorted set: member -> score, with the rank order computed on demand and cached."""

    __slots__ = ("_ranked", "_scores", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self._ranked: list[tuple[float, str]] | None = None
        self._scores: list[float] | None = None

    def ranked(self) -> list[tuple[float, str]]:
        """``(score, member)`` ascending by score, then member (Redis order)."""
        ranked = self._ranked
        if ranked is None:
            ranked = self._ranked = sorted((score, member) for member, score in self.scores.items())
            self._scores = [score for score, _ in ranked]
        return ranked

    def score_index(self) -> list[float]:
        self.ranked()
        assert self._scores is not None
        return self._scores

    def changed(self) -> None:
        self._ranked = None
        self._scores = None


_TYPE_NAMES: dict[type, str] = {bytes: "string", dict: "hash", _ZSet: "zset"}


def _wrongtype(key: str, value: object, expected: str) -> CacheTypeError:
    actual = _TYPE_NAMES.get(type(value), type(value).__name__)
    return CacheTypeError(
        f"WRONGTYPE Operation against a key holding the wrong kind of value: "
        f"key {key!r} holds a {actual}, not a {expected}"
    )


def _to_bytes(value: object) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"cache values are bytes or str, got {type(value).__name__}")


def _check_ttl(ttl_ms: int) -> None:
    if ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be a positive number of milliseconds, got {ttl_ms!r}")


def _check_score(member: object, score: object) -> float:
    if not isinstance(member, str):
        raise TypeError(f"sorted-set members are str, got {type(member).__name__}")
    value = float(score)  # type: ignore[arg-type]
    if math.isnan(value):
        raise ValueError(f"score of member {member!r} is not a number")
    return value


def _glob(pattern: str) -> Callable[[str], object]:
    """A Redis-style glob (``*``, ``?``, ``[abc]``, ``[^abc]``), case-sensitive, as a matcher."""
    if pattern == "*":
        return lambda key: True
    return re.compile(translate(pattern.replace("[^", "[!"))).match


class MemoryCacheClient(CacheClient):
    """An in-process :class:`CacheClient` with LRU eviction and millisecond TTLs.

    :param max_entries: most keys held; the least recently used key is evicted beyond it.
    :param sweep_batch: most expired keys reclaimed per write by the active sweep.
    :param clock: a monotonic clock in nanoseconds (tests inject a fake one).
    """

    in_process = True

    __slots__ = (
        "_channels",
        "_clock",
        "_data",
        "_evictions",
        "_expired",
        "_expires",
        "_heap",
        "_max_entries",
        "_sweep_batch",
    )

    def __init__(
        self,
        max_entries: int = 100_000,
        *,
        sweep_batch: int = 32,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if sweep_batch < 1:
            raise ValueError(f"sweep_batch must be at least 1, got {sweep_batch}")
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._expires: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._max_entries = max_entries
        self._sweep_batch = sweep_batch
        self._clock = clock
        self._evictions = 0
        self._expired = 0
        self._channels: dict[str, list[MessageHandler]] = {}

    # -- introspection (sync; for tests and health) --------------------------------------
    @property
    def max_entries(self) -> int:
        return self._max_entries

    @property
    def evictions(self) -> int:
        """Keys removed because ``max_entries`` was reached."""
        return self._evictions

    @property
    def expired(self) -> int:
        """Keys removed because their TTL passed (lazily on access, or by the sweep)."""
        return self._expired

    def __len__(self) -> int:
        """Keys held, including expired ones not reclaimed yet."""
        return len(self._data)

    def keys_lru(self) -> list[str]:
        """Every held key, least recently used first (the eviction order)."""
        return list(self._data)

    def heap_size(self) -> int:
        """Entries in the expiry heap, stale ones included (bounded by twice the TTL keys)."""
        return len(self._heap)

    def purge_expired(self) -> int:
        """Reclaim every expired key now; returns how many were removed."""
        before = self._expired
        now = self._clock()
        heap = self._heap
        while heap and heap[0][0] <= now:
            self._sweep(now, len(heap))
        return self._expired - before

    # -- internals ---------------------------------------------------------------------------
    def _lookup(self, key: str, touch: bool = True) -> Any:
        """The live value of ``key`` or None; removes it if expired; moves it to the LRU end."""
        data = self._data
        value = data.get(key)
        if value is None:
            return None
        deadline = self._expires.get(key)
        if deadline is not None and deadline <= self._clock():
            self._remove_expired(key)
            return None
        if touch:
            data.move_to_end(key)
        return value

    def _remove_expired(self, key: str) -> None:
        del self._data[key]
        del self._expires[key]
        self._expired += 1

    def _insert(self, key: str, value: Any) -> None:
        """Store a value under a key known to be absent, then enforce ``max_entries``."""
        data = self._data
        data[key] = value
        if len(data) > self._max_entries:
            self._evict()

    def _evict(self) -> None:
        data = self._data
        heap = self._heap
        limit = self._max_entries
        if heap:  # reclaim expired keys before evicting live ones
            now = self._clock()
            while len(data) > limit and heap and heap[0][0] <= now:
                self._sweep(now, self._sweep_batch)
        expires = self._expires
        while len(data) > limit:
            key, _ = data.popitem(last=False)
            if expires:
                expires.pop(key, None)
            self._evictions += 1

    def _set_deadline(self, key: str, ttl_ms: int) -> None:
        deadline = self._clock() + ttl_ms * _NS_PER_MS
        expires = self._expires
        previous = expires.get(key)
        expires[key] = deadline
        if previous is None or deadline < previous:
            heap = self._heap
            heappush(heap, (deadline, key))
            if len(heap) > 2 * len(expires) + _HEAP_REBUILD_MIN:
                self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        """Stale entries dominate: rebuild from the live deadlines (amortised O(1) per push)."""
        heap = self._heap
        heap[:] = [(deadline, key) for key, deadline in self._expires.items()]
        heapify(heap)

    def _clear_deadline(self, key: str) -> None:
        expires = self._expires
        if expires:
            expires.pop(key, None)

    def _after_write(self) -> None:
        heap = self._heap
        if heap:
            now = self._clock()
            if heap[0][0] <= now:
                self._sweep(now, self._sweep_batch)

    def _sweep(self, now: int, budget: int) -> None:
        """Pop at most ``budget`` due heap entries and expire the keys that are due.

        An entry of a key whose deadline has moved later is pushed back with the
        new deadline; an entry of a key without a deadline is dropped.
        """
        heap, expires, data = self._heap, self._expires, self._data
        while budget and heap and heap[0][0] <= now:
            _, key = heappop(heap)
            budget -= 1
            deadline = expires.get(key)
            if deadline is None:
                continue
            if deadline <= now:
                del expires[key]
                del data[key]
                self._expired += 1
            else:
                heappush(heap, (deadline, key))

    def _remove(self, key: str) -> bool:
        """Delete a key of any type; True when it existed (and had not expired)."""
        data = self._data
        if key not in data:
            return False
        deadline = self._expires.pop(key, None)
        del data[key]
        if deadline is not None and deadline <= self._clock():
            self._expired += 1
            return False
        return True

    # -- strings -------------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        data = self._data
        value = data.get(key)
        if value is None:
            return None
        expires = self._expires
        if expires:
            deadline = expires.get(key)
            if deadline is not None and deadline <= self._clock():
                self._remove_expired(key)
                return None
        data.move_to_end(key)
        if value.__class__ is bytes:
            return value
        raise _wrongtype(key, value, "string")

    async def set(self, key: str, value: Value, ttl_ms: int | None = None) -> None:
        if type(value) is not bytes:
            value = value.encode() if type(value) is str else _to_bytes(value)
        data = self._data
        heap = self._heap
        if ttl_ms is None:
            if key in data:  # replacing a value: no growth, so no sweep
                data[key] = value
                data.move_to_end(key)
                if self._expires:
                    self._expires.pop(key, None)
                return
            data[key] = value
            if len(data) > self._max_entries:
                self._evict()
            elif heap:
                now = self._clock()
                if heap[0][0] <= now:
                    self._sweep(now, self._sweep_batch)
            return
        if ttl_ms <= 0:
            _check_ttl(ttl_ms)
        if key in data:
            data[key] = value
            data.move_to_end(key)
            grew = False
        else:
            data[key] = value
            grew = True
            if len(data) > self._max_entries:
                self._evict()
        now = self._clock()
        deadline = now + ttl_ms * _NS_PER_MS
        expires = self._expires
        previous = expires.get(key)
        expires[key] = deadline
        if previous is None or deadline < previous:
            heappush(heap, (deadline, key))
            if len(heap) > 2 * len(expires) + _HEAP_REBUILD_MIN:
                self._rebuild_heap()
            grew = True
        # else: the heap entry of `previous` comes first and the sweep re-queues it.
        # A refresh adds nothing to reclaim, so only growth pays for a sweep.
        if grew and heap[0][0] <= now:
            self._sweep(now, self._sweep_batch)

    # The pipeline's versions of get and set (same semantics, synchronous).
    def _get(self, key: str) -> bytes | None:
        value = self._lookup(key)
        if value is None or value.__class__ is bytes:
            return value
        raise _wrongtype(key, value, "string")

    def _set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        data = self._data
        if key in data:
            data[key] = value
            data.move_to_end(key)
        else:
            self._insert(key, value)
        if ttl_ms is None:
            self._clear_deadline(key)
        else:
            self._set_deadline(key, ttl_ms)
        self._after_write()

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        get = self._get
        return [get(key) for key in keys]

    def _delete(self, *keys: str) -> int:
        removed = 0
        for key in keys:
            removed += self._remove(key)
        if removed:
            self._after_write()
        return removed

    async def delete(self, *keys: str) -> int:
        return self._delete(*keys)

    async def exists(self, key: str) -> bool:
        return self._lookup(key, touch=False) is not None

    def _expire(self, key: str, ttl_ms: int) -> bool:
        if self._lookup(key, touch=False) is None:
            return False
        if ttl_ms <= 0:  # like Redis: a TTL in the past deletes the key
            self._remove(key)
        else:
            self._set_deadline(key, ttl_ms)
        self._after_write()
        return True

    async def expire(self, key: str, ttl_ms: int) -> bool:
        return self._expire(key, ttl_ms)

    async def ttl_ms(self, key: str) -> int | None:
        if self._lookup(key, touch=False) is None:
            return -2
        deadline = self._expires.get(key)
        if deadline is None:
            return None
        # Rounded up, so a live key never reports 0 ms left.
        return -(-(deadline - self._clock()) // _NS_PER_MS)

    # -- hashes --------------------------------------------------------------------------------
    def _hset(self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None) -> int:
        encoded: dict[str, bytes] = {}
        for field, value in mapping.items():
            if not isinstance(field, str):
                raise TypeError(f"hash fields are str, got {type(field).__name__}")
            encoded[field] = _to_bytes(value)
        if ttl_ms is not None:
            _check_ttl(ttl_ms)
        current = self._lookup(key)
        if current is None:
            if not encoded:
                return 0
            self._insert(key, encoded)
            added = len(encoded)
        elif current.__class__ is dict:
            added = sum(1 for field in encoded if field not in current)
            current.update(encoded)
        else:
            raise _wrongtype(key, current, "hash")
        if ttl_ms is not None:
            self._set_deadline(key, ttl_ms)
        self._after_write()
        return added

    async def hset(self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None) -> int:
        return self._hset(key, mapping, ttl_ms)

    def _hash(self, key: str) -> dict[str, bytes] | None:
        value = self._lookup(key)
        if value is None or value.__class__ is dict:
            return value
        raise _wrongtype(key, value, "hash")

    async def hget(self, key: str, field: str) -> bytes | None:
        fields = self._hash(key)
        return None if fields is None else fields.get(field)

    def _hgetall(self, key: str) -> dict[str, bytes]:
        fields = self._hash(key)
        return {} if fields is None else dict(fields)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        return self._hgetall(key)

    async def hdel(self, key: str, *fields: str) -> int:
        current = self._hash(key)
        if current is None:
            return 0
        removed = 0
        for field in fields:
            if current.pop(field, None) is not None:
                removed += 1
        if not current:  # an empty hash does not exist (Redis)
            self._remove(key)
        return removed

    # -- versioned writes (atomic: nothing runs between the check and the write) ------------------
    async def hset_if_newer(
        self, key: str, mapping: Mapping[str, Value], *, version_field: str, expire_at_ms: int
    ) -> bool:
        version = int(mapping[version_field])
        ttl_ms = expire_at_ms - time.time_ns() // 1_000_000
        if ttl_ms <= 0:
            return False
        current = self._hash(key)
        if current is not None:
            stored = current.get(version_field)
            if stored is not None and int(stored) > version:
                return False
            self._remove(key)
        self._hset(key, mapping, ttl_ms)
        return True

    async def zreplace_if_newer(
        self,
        key: str,
        mapping: Mapping[str, float],
        *,
        version_key: str,
        version: int,
        expire_at_ms: int,
    ) -> bool:
        ttl_ms = expire_at_ms - time.time_ns() // 1_000_000
        if ttl_ms <= 0:
            return False
        current = self._get(version_key)
        if current is not None and int(current) > version:
            return False
        self._zset(key)  # a key of another type is an error, before anything changes
        self._remove(key)
        if mapping:
            self._zadd(key, mapping, ttl_ms)
        self._set(version_key, str(version).encode(), ttl_ms)
        return True

    # -- sorted sets -------------------------------------------------------------------------
    def _zset(self, key: str) -> _ZSet | None:
        value = self._lookup(key)
        if value is None or value.__class__ is _ZSet:
            return value
        raise _wrongtype(key, value, "zset")

    def _zadd(self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None) -> int:
        scored = {member: _check_score(member, score) for member, score in mapping.items()}
        if ttl_ms is not None:
            _check_ttl(ttl_ms)
        zset = self._zset(key)
        if zset is None:
            if not scored:
                return 0
            zset = _ZSet()
            zset.scores = scored
            self._insert(key, zset)
            added = len(scored)
        else:
            scores = zset.scores
            added = sum(1 for member in scored if member not in scores)
            scores.update(scored)
            zset.changed()
        if ttl_ms is not None:
            self._set_deadline(key, ttl_ms)
        self._after_write()
        return added

    async def zadd(self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None) -> int:
        return self._zadd(key, mapping, ttl_ms)

    async def zrange(
        self, key: str, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> list[tuple[str, float]]:
        return self._zrange(key, start, stop, desc)

    def _zrange(self, key: str, start: int, stop: int, desc: bool) -> list[tuple[str, float]]:
        zset = self._zset(key)
        if zset is None:
            return []
        ranked = zset.ranked()
        size = len(ranked)
        if start < 0:
            start = max(start + size, 0)
        if stop < 0:
            stop += size
        stop = min(stop, size - 1)
        if start > stop:
            return []
        if desc:
            # Rank 0 is the highest score; ties in reverse member order (ZREVRANGE).
            lo, hi = size - 1 - stop, size - start
            return [(member, score) for score, member in reversed(ranked[lo:hi])]
        return [(member, score) for score, member in ranked[start : stop + 1]]

    async def zrangebyscore(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        zset = self._zset(key)
        if zset is None:
            return []
        ranked = zset.ranked()
        scores = zset.score_index()
        lo = bisect_left(scores, min_score)
        hi = bisect_right(scores, max_score)
        return [(member, score) for score, member in ranked[lo:hi]]

    def _zrem(self, key: str, *members: str) -> int:
        zset = self._zset(key)
        if zset is None:
            return 0
        scores = zset.scores
        removed = 0
        for member in members:
            if scores.pop(member, None) is not None:
                removed += 1
        if removed:
            zset.changed()
        if not scores:  # an empty sorted set does not exist (Redis)
            self._remove(key)
        return removed

    async def zrem(self, key: str, *members: str) -> int:
        return self._zrem(key, *members)

    async def zcard(self, key: str) -> int:
        zset = self._zset(key)
        return 0 if zset is None else len(zset.scores)

    # -- keyspace --------------------------------------------------------------------------------
    async def scan_iter(self, match: str = "*", count: int = 500) -> AsyncIterator[str]:
        """Keys matching ``match``, from a snapshot taken at the start.

        Like Redis' SCAN: a key present for the whole iteration is returned once;
        a key deleted or expired meanwhile is skipped; a key added meanwhile may
        not be returned. Control returns to the event loop every ``count`` keys.
        """
        matches = _glob(match)
        snapshot = [key for key in self._data if matches(key)]
        step = max(count, 1)
        for index, key in enumerate(snapshot, 1):
            if self._lookup(key, touch=False) is not None:
                yield key
            if index % step == 0:
                await asyncio.sleep(0)

    def pipeline(self, transaction: bool = False) -> MemoryPipeline:
        return MemoryPipeline(self, transaction)

    # -- pub/sub (within this process) ---------------------------------------------------------
    async def publish(self, channel: str, message: Value) -> int:
        handlers = self._channels.get(channel)
        if not handlers:
            return 0
        data = _to_bytes(message)
        for handler in list(handlers):
            handler(data)
        return len(handlers)

    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription:
        self._channels.setdefault(channel, []).append(handler)
        return _MemorySubscription(self._channels, channel, handler)

    # -- lifecycle ---------------------------------------------------------------------------
    async def flushall(self) -> None:
        """Remove every key (counters are kept)."""
        self._data.clear()
        self._expires.clear()
        self._heap.clear()

    async def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        self.purge_expired()
        details = {
            "keys": len(self._data),
            "max_entries": self._max_entries,
            "ttl_keys": len(self._expires),
            "evictions": self._evictions,
            "expired": self._expired,
        }
        return HealthStatus(
            component=self.name or "memory",
            state=HealthState.HEALTHY,
            latency_ms=(time.perf_counter() - started) * 1000,
            details=details,
        )

    def describe(self) -> dict[str, Any]:
        return {"max_entries": self._max_entries, "sweep_batch": self._sweep_batch}


class _MemorySubscription(Subscription):
    def __init__(
        self, channels: dict[str, list[MessageHandler]], channel: str, handler: MessageHandler
    ) -> None:
        self._channels, self._channel, self._handler = channels, channel, handler

    async def close(self) -> None:
        handlers = self._channels.get(self._channel, [])
        if self._handler in handlers:
            handlers.remove(self._handler)
        if not handlers:
            self._channels.pop(self._channel, None)


class MemoryPipeline(CachePipeline):
    """Queued commands, applied back to back by :meth:`execute` (no await between them).

    Both modes are atomic here: no other coroutine runs while the queue is applied.
    As with Redis, an error in one command (e.g. WRONGTYPE) does not stop the others;
    ``execute`` raises the first error after every command has run. Values are
    checked when a command is queued.
    """

    def __init__(self, client: MemoryCacheClient, transaction: bool = False) -> None:
        self._client = client
        self.transaction = transaction
        self._commands: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def __len__(self) -> int:
        return len(self._commands)

    def _queue(self, command: Callable[..., Any], *args: Any) -> MemoryPipeline:
        self._commands.append((command, args))
        return self

    def get(self, key: str) -> MemoryPipeline:
        return self._queue(self._client._get, key)

    def set(self, key: str, value: Value, ttl_ms: int | None = None) -> MemoryPipeline:
        if ttl_ms is not None:
            _check_ttl(ttl_ms)
        return self._queue(self._client._set, key, _to_bytes(value), ttl_ms)

    def delete(self, *keys: str) -> MemoryPipeline:
        return self._queue(self._client._delete, *keys)

    def expire(self, key: str, ttl_ms: int) -> MemoryPipeline:
        return self._queue(self._client._expire, key, ttl_ms)

    def hset(
        self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None
    ) -> MemoryPipeline:
        if ttl_ms is not None:
            _check_ttl(ttl_ms)
        encoded = {field: _to_bytes(value) for field, value in mapping.items()}
        return self._queue(self._client._hset, key, encoded, ttl_ms)

    def hgetall(self, key: str) -> MemoryPipeline:
        return self._queue(self._client._hgetall, key)

    def zadd(
        self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None
    ) -> MemoryPipeline:
        if ttl_ms is not None:
            _check_ttl(ttl_ms)
        scored = {member: _check_score(member, score) for member, score in mapping.items()}
        return self._queue(self._client._zadd, key, scored, ttl_ms)

    def zrange(
        self, key: str, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> MemoryPipeline:
        return self._queue(self._client._zrange, key, start, stop, desc)

    def zrem(self, key: str, *members: str) -> MemoryPipeline:
        return self._queue(self._client._zrem, key, *members)

    async def execute(self) -> list[Any]:
        commands, self._commands = self._commands, []
        results: list[Any] = []
        error: Exception | None = None
        for command, args in commands:
            try:
                results.append(command(*args))
            except Exception as exc:
                results.append(exc)
                if error is None:
                    error = exc
        if error is not None:
            raise error
        return results
