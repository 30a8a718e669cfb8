"""The versioned schema: numbered SQL migrations in two flavours.

Each version ``NNNN_name`` has up to three files beside this module:
``NNNN_name.common.sql`` (run on both flavours, first), ``NNNN_name.timescale.sql``
(TimescaleDB: hypertables, continuous aggregates, policies) and
``NNNN_name.plain.sql`` (plain PostgreSQL: BRIN indexes, views, retention rows).
A version is applied in one transaction and recorded in ``qts_schema_version``
with the flavour and a checksum of its SQL; later versions build on earlier ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Flavour = Literal["timescale", "plain"]
FLAVOURS: tuple[Flavour, ...] = ("timescale", "plain")

_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.(?P<part>common|timescale|plain)\.sql$"
)


@dataclass(frozen=True)
class Migration:
    """One schema version in one flavour."""

    version: int
    name: str
    flavour: Flavour
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@cache
def _files() -> dict[tuple[int, str], dict[str, str]]:
    found: dict[tuple[int, str], dict[str, str]] = {}
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        key = (int(match["version"]), match["name"])
        found.setdefault(key, {})[match["part"]] = entry.read_text(encoding="utf-8")
    return found


@cache
def migrations(flavour: Flavour) -> tuple[Migration, ...]:
    """Every migration of ``flavour``, oldest first."""
    result = []
    for (version, name), parts in sorted(_files().items()):
        sql = "\n".join(parts[part] for part in ("common", flavour) if part in parts).strip()
        result.append(Migration(version, name, flavour, sql + "\n"))
    versions = [m.version for m in result]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"schema migrations must be numbered 1, 2, 3...: found {versions}")
    return tuple(result)


def latest_version() -> int:
    return len(migrations("plain"))
