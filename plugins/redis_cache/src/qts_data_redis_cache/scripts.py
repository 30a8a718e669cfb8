"""The server-side scripts of versioned writes (``hset_if_newer``, ``zreplace_if_newer``).

Each runs atomically in Redis: it compares the version stored at the key with
the write's, and writes only when the stored one is not newer, with an absolute
expiry. So a write that the client gave up on and that Redis executes later
(a frozen server, a slow network) can neither replace a newer value nor live
past the moment it was meant to expire. Running one twice leaves the same
state, so they are safe to send again on a fresh connection.

The time check uses the server's clock (``TIME``) against the client's
``expire_at_ms``: clocks that disagree shift expiries by their difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["HSET_IF_NEWER", "IDEMPOTENT", "ZREPLACE_IF_NEWER", "Script"]


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA-1 (``EVALSHA``; ``EVAL`` when the server does not know it)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


_NOW_MS = """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

#: KEYS[1] the hash; ARGV: version field, version, expire-at (Unix ms), then field, value...
HSET_IF_NEWER = Script(
    _NOW_MS
    + """
local expire_at = tonumber(ARGV[3])
if expire_at <= now_ms then return 0 end
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored and tonumber(stored) > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], expire_at)
return 1
"""
)

#: KEYS[1] the sorted set, KEYS[2] its version string; ARGV: version, expire-at (Unix ms),
#: then score, member...
ZREPLACE_IF_NEWER = Script(
    _NOW_MS
    + """
local expire_at = tonumber(ARGV[2])
if expire_at <= now_ms then return 0 end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'zset' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local stored = redis.call('GET', KEYS[2])
if stored and tonumber(stored) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
if #ARGV > 2 then
  redis.call('ZADD', KEYS[1], unpack(ARGV, 3))
  redis.call('PEXPIREAT', KEYS[1], expire_at)
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], expire_at)
return 1
"""
)

#: The SHA-1s and sources of the scripts above: sending one again cannot change the outcome.
IDEMPOTENT = frozenset(
    part for script in (HSET_IF_NEWER, ZREPLACE_IF_NEWER) for part in (script.sha, script.source)
)
