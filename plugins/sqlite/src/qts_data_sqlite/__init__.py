"""qts-data-sqlite: a data-source adapter on one local SQLite file (plugin ``sqlite``).

Importing this module is cheap: the hook registers the factory and the settings
model only; the adapter (and ``sqlite3``) are imported when a stack builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from qts_data.plugins import BuildContext, Register, Settings, hookimpl

if TYPE_CHECKING:
    from qts_data_sqlite.adapter import SqliteAdapter

__version__ = "0.1.0"

#: The plugin's canonical name (its entry-point name) and the name of its adapter.
PLUGIN = "sqlite"

#: The path that opens a private in-memory database (gone when the adapter closes).
MEMORY = ":memory:"

__all__ = ["MEMORY", "PLUGIN", "SqliteAdapter", "SqliteSettings", "__version__"]


class SqliteSettings(Settings):
    """``[adapters.NAME] type = "sqlite"``."""

    path: str = Field(
        default="qts-data.sqlite3",
        min_length=1,
        description=(
            "the database file, created if missing (its folder must exist); a relative path is "
            "read from the configuration file's folder; ':memory:' for a private in-memory database"
        ),
    )
    journal_mode: Literal["WAL", "DELETE", "TRUNCATE", "PERSIST"] = Field(
        default="WAL",
        description="WAL lets other processes read while this one writes; DELETE for file systems without shared memory (NFS)",
    )
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="NORMAL",
        description="NORMAL is durable across application crashes in WAL mode (a power loss may drop the last commits); FULL syncs every commit",
    )
    busy_timeout_ms: int = Field(
        default=5_000,
        ge=0,
        le=600_000,
        description="how long a write waits for another process's lock before failing",
    )
    cache_size_kib: int = Field(
        default=32_768, gt=0, description="page cache of the connection, in KiB"
    )
    vacuum_threshold: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="maintain() runs VACUUM when free pages exceed this fraction of the file (seeds/001: 15 %)",
    )
    quick_check: bool = Field(
        default=False,
        description="health_check also runs PRAGMA quick_check (reads the whole file: slow on big databases)",
    )

    @field_validator("journal_mode", "synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def make_adapter(settings: SqliteSettings, ctx: BuildContext) -> SqliteAdapter:
    from qts_data_sqlite.adapter import SqliteAdapter

    if settings.path != MEMORY:
        settings = settings.model_copy(update={"path": ctx.resolve_path(settings.path)})
    return SqliteAdapter(settings)


@hookimpl
def qts_data_adapters(register: Register) -> None:
    register(
        PLUGIN,
        make_adapter,
        settings=SqliteSettings,
        description="every kind of data in one local SQLite file (WAL); gaps, maintenance, migrations",
    )


def __getattr__(name: str) -> Any:
    if name == "SqliteAdapter":
        from qts_data_sqlite.adapter import SqliteAdapter

        return SqliteAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
