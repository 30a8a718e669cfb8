"""The data commands (`migrate`, `ingest ticks`, `query ohlcv`, `db status|gaps|maintain`) as a
user meets them, on the memory stack and on a test plugin offering the optional operations.

The PostgreSQL / TimescaleDB paths are tested by the timescale plugin's own tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from qts_data.testing import PluginSite

#: A store plugin whose adapter (the memory adapter) also implements Migratable,
#: StorageInspectable, GapChecking and Maintainable, and holds three daily candles
#: of BTC (2024-01-02, 01-03 and 01-05) from the moment it opens.
OPS_PLUGIN = """
from datetime import datetime, timedelta, timezone

from qts_data.contracts import OHLCV, Interval
from qts_data.interfaces import MaintenanceReport, MigrationReport, StorageReport
from qts_data.plugins import hookimpl

DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)

def make(settings, ctx):
    from qts_data_memory.adapter import MemoryAdapter

    class OpsAdapter(MemoryAdapter):
        async def open(self):
            await self.upsert_ohlcv([
                OHLCV(time=DAY + timedelta(days=d), symbol="BTC", open="100.5", high="110",
                      low="99.12345678", close="105", volume=10 + d)
                for d in (0, 1, 3)
            ])

        async def migrate(self, *, dry_run=False):
            report = MigrationReport(from_version=1, to_version=2, notes=["ops flavour"])
            report.applied = ["0002_more"]
            if dry_run:
                report.statements = ["CREATE TABLE more (id int);"]
            return report

        async def storage_report(self):
            return StorageReport(
                backend="ops",
                tables=[{"name": "candles", "rows": 3, "bytes": 2048}],
                details={"flavour": "ops", "candle_series": [
                    {"symbol": "BTC", "interval": "1d",
                     "first": "2024-01-02T00:00:00+00:00", "last": "2024-01-05T00:00:00+00:00"}
                ]},
            )

        async def find_gaps(self, symbol, interval, start, end):
            have = {c.time for c in await self.fetch_ohlcv(symbol, start, end, interval)}
            step = Interval(interval)
            out, when = [], step.floor(start)
            if when < start:
                when += step.delta
            while when < end:
                if when not in have:
                    out.append(when)
                when += step.delta
            return out

        async def maintain(self):
            return MaintenanceReport(actions=["compacted the candles"], details={"freed": 1})

    return OpsAdapter()

@hookimpl
def qts_data_adapters(register):
    register("ops", make)
"""

OPS_CONFIG = """
[stack]
adapter = "main"
[adapters.main]
type = "memory"
[adapters.store]
type = "ops"
"""

TICKS = """time,symbol,price,volume,bid,ask,source,trade_id
2024-01-02T00:00:05Z,BTC,100,1,,,upbit,t1
2024-01-02T00:00:30Z,BTC,105.5,2,105,106,upbit,t2
2024-01-02T00:01:00+09:00,BTC,101,4,,,,
2024-01-02T00:00:05Z,BTC,100,1,,,upbit,t1
"""


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("qts-data: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def ops(plugin_site: PluginSite, tmp_path: Path) -> tuple[dict[str, str], str]:
    """(environment with the ops plugin installed, path of a config using it)."""
    plugin_site.add("ops", OPS_PLUGIN)
    config = tmp_path / "ops.toml"
    config.write_text(OPS_CONFIG)
    return plugin_site.env(COLUMNS="200"), str(config)


# -- choosing the adapter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "operation", "protocol"),
    [
        (["migrate"], "migrate", "Migratable"),
        (["db", "status"], "db status", "StorageInspectable"),
        (
            ["db", "gaps", "BTC", "--interval", "1d", "--from", "2024-01-01", "--to", "2024-01-02"],
            "db gaps",
            "GapChecking",
        ),
        (["db", "maintain"], "db maintain", "Maintainable"),
    ],
)
def test_memory_stack_has_no_adapter_for_the_optional_operations(
    args: list[str], operation: str, protocol: str
) -> None:
    result = run_cli(*args)
    assert result.code == 2, result.out + result.err
    assert_one_line_error(
        result.err,
        f"no adapter supports {operation} ({protocol})",
        "store (memory)",
        "main (cached)",
        "installed adapter types:",
        "memory",
    )


def test_adapter_option_names_an_unknown_or_unfit_adapter() -> None:
    unknown = run_cli("migrate", "--adapter", "nope")
    assert unknown.code == 2
    assert_one_line_error(unknown.err, "no adapter named 'nope'", "store (memory)")
    unfit = run_cli("migrate", "--adapter", "store")
    assert unfit.code == 2
    assert_one_line_error(unfit.err, "adapters.store (memory) does not support migrate")


def test_the_first_adapter_that_can_is_chosen(ops: tuple[dict[str, str], str]) -> None:
    env, config = ops
    result = run_cli("migrate", config, env=env)
    assert result.code == 0, result.err
    assert "adapters.store: schema version 1 -> 2, applied 0002_more" in result.out
    assert "ops flavour" in result.out


# -- migrate ---------------------------------------------------------------------------------------


def test_migrate_dry_run_prints_the_sql(ops: tuple[dict[str, str], str]) -> None:
    env, config = ops
    result = run_cli("migrate", config, "--dry-run", env=env)
    assert result.code == 0, result.err
    assert "CREATE TABLE more (id int);" in result.out
    assert "-- ops flavour" in result.out
    as_json = json.loads(run_cli("migrate", config, "--dry-run", "--json", env=env).out)
    assert as_json["statements"] == ["CREATE TABLE more (id int);"]
    assert as_json["dry_run"] is True


# -- ingest ticks ---------------------------------------------------------------------------------


def test_ingest_ticks_reports_received_inserted_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(TICKS)
    result = run_cli("ingest", "ticks", str(path))
    assert result.code == 0, result.err
    assert "received 4, inserted 3, duplicates 1" in result.out
    data = json.loads(run_cli("ingest", "ticks", str(path), "--json", "--batch-size", "2").out)
    assert (data["received"], data["inserted"], data["duplicates"]) == (4, 3, 1)
    assert data["adapter"] == "main"


def test_ingest_stops_at_a_bad_row_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    good = "".join(f"2024-01-02T00:00:{i:02d}Z,BTC,100,1,t{i}\n" for i in range(5))
    path.write_text(
        "time,symbol,price,volume,trade_id\n" + good + "2024-01-02T00:01:00Z,BTC,-5,1,bad\n"
    )
    result = run_cli("ingest", "ticks", str(path), "--batch-size", "2")
    assert result.code == 1, result.out + result.err
    assert_one_line_error(
        result.err,
        "line 7",
        "TickData.price",
        "the 4 ticks before its batch were stored (4 new, 0 already there), nothing of its batch",
    )


def test_a_nul_in_a_row_is_refused_with_its_line_and_what_the_store_took(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    rows = [f"2024-01-02T00:00:{i:02d}Z,BTC,100,1,t{i}\n" for i in range(6)]
    rows[4] = "2024-01-02T00:00:04Z,BTC,100,1,t\x004\n"  # data row 5, line 6
    path.write_text("time,symbol,price,volume,trade_id\n" + "".join(rows))
    result = run_cli("ingest", "ticks", str(path), "--batch-size", "3")
    assert result.code == 1, result.out + result.err
    assert_one_line_error(
        result.err,
        f"{path}: line 6: ",  # the csv module names no field on Python 3.10, the contract does
        "contains the control character U+0000",
        "the 3 ticks before its batch were stored (3 new, 0 already there), nothing of its batch",
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            'x,BTC,100,1,t1\n2024-01-02T00:00:02Z,BTC,100,1,"t2\nx,BTC,100,1,t3\nx,BTC,100,1,t4\n',
            "line 3: a quoted field opened here is never closed (the record runs to line 5)",
        ),
        ("2024-01-02T00:00:01Z,BTC,100,1," + "x" * 140_000 + "\n", "line 2: a field is longer than 131,072 characters"),
        ('2024-01-02T00:00:01Z,BTC,"1"0,1,t1\n', "line 2: ',' expected after"),
    ],
    ids=["unclosed-quote", "field-too-long", "bad-quoting"],  # short: the id goes into the env
)  # fmt: skip
def test_csv_errors_are_one_line_with_the_file_and_the_line(
    tmp_path: Path, body: str, fragment: str
) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "time,symbol,price,volume,trade_id\n" + body.replace("x,", "2024-01-02T00:00:01Z,", 1)
    )
    result = run_cli("ingest", "ticks", str(path))
    assert result.code == 1, result.out + result.err
    assert_one_line_error(result.err, f"{path}: {fragment}", "nothing was stored")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ingest", "ticks", "{dir}/absent.csv"], "Invalid value for 'FILE': File '{dir}/absent.csv' does not exist"),
        (["ingest", "ticks", "{dir}"], "Invalid value for 'FILE': File '{dir}' is a directory"),
        (["check", "{dir}"], "Invalid value for '[CONFIG]': File '{dir}' is a directory"),
        (["query", "ohlcv", "BTC", "--from", "2024-01-02", "--to", "2024-01-01"], "Invalid value for '--from': 2024-01-02 is after --to 2024-01-01"),
    ],
)  # fmt: skip
def test_a_bad_argument_is_one_line_naming_it(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = run_cli(*(a.format(dir=tmp_path) for a in args))
    assert result.code == 2, result.out + result.err
    assert_one_line_error(result.err, fragment.format(dir=tmp_path), "--help`)")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "the file is empty"),
        ("time,symbol,price\n", "missing volume"),
        ("time,symbol,price,volume,colour\n", "unknown colour"),
        (
            "time,symbol,price,volume\n2024-01-02T00:00:00Z,BTC,1\n",
            "line 2: 3 fields, the header has 4",
        ),
        ("time,symbol,price,volume\n2024-01-02T00:00:00,BTC,1,1\n", "line 2"),
        (
            "time,symbol,price,volume\n2024-01-02T00:00:00Z,BTC'; DROP TABLE x;--,1,1\n",
            "TickData.symbol",
        ),
    ],
)
def test_ingest_rejects_bad_files_in_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(content)
    result = run_cli("ingest", "ticks", str(path))
    assert result.code == 1, result.out + result.err
    assert_one_line_error(result.err, str(path), fragment)


# -- query ohlcv -----------------------------------------------------------------------------------


def test_query_ohlcv_in_every_format(ops: tuple[dict[str, str], str]) -> None:
    env, config = ops
    base = [
        "query",
        "ohlcv",
        "BTC",
        config,
        "--adapter",
        "store",
        "--from",
        "2024-01-02",
        "--to",
        "2024-01-05",
    ]
    table = run_cli(*base, env=env)
    assert table.code == 0, table.err
    assert "99.12345678" in table.out
    assert "2 candle(s)" in table.out
    csv_out = run_cli(*base, "--format", "csv", env=env)
    assert csv_out.out.splitlines() == [
        "time,open,high,low,close,volume",
        "2024-01-02T00:00:00+00:00,100.5,110,99.12345678,105,10",
        "2024-01-03T00:00:00+00:00,100.5,110,99.12345678,105,11",
    ]
    data = json.loads(run_cli(*base, "--format", "json", env=env).out)
    assert [c["volume"] for c in data] == [10, 11]
    assert data[0]["low"] == "99.12345678"


def test_query_ohlcv_uses_the_stack_adapter_by_default() -> None:
    result = run_cli(
        "query", "ohlcv", "BTC", "--from", "2024-01-01", "--to", "2024-01-02", "--format", "json"
    )
    assert result.code == 0, result.err
    assert json.loads(result.out) == []


def test_query_ohlcv_rejects_bad_times_and_intervals() -> None:
    bad_time = run_cli("query", "ohlcv", "BTC", "--from", "yesterday", "--to", "2024-01-02")
    assert bad_time.code == 2  # a usage error, like the bad interval
    assert "'--from'" in bad_time.err
    assert "'yesterday' is not an ISO 8601 time" in bad_time.err
    assert "Traceback" not in bad_time.err
    bad_interval = run_cli(
        "query", "ohlcv", "BTC", "--from", "2024-01-01", "--to", "2024-01-02", "--interval", "7m"
    )
    assert bad_interval.code == 2
    assert "7m" in bad_interval.err


# -- db status, gaps, maintain ----------------------------------------------------------------------


def test_db_status_shows_tables_details_and_candle_gaps(ops: tuple[dict[str, str], str]) -> None:
    env, config = ops
    result = run_cli("db", "status", config, env=env)
    assert result.code == 0, result.err
    assert "adapter: store" in result.out
    assert "candles" in result.out
    assert "2.0 kB" in result.out
    assert "flavour: ops" in result.out
    assert "gaps in stored candles" in result.out
    assert "2024-01-04T00:00:00+00:00" in result.out
    data = json.loads(run_cli("db", "status", config, "--json", env=env).out)
    assert data["backend"] == "ops"
    assert data["gaps"] == [
        {
            "symbol": "BTC",
            "interval": "1d",
            "first": "2024-01-02T00:00:00+00:00",
            "last": "2024-01-05T00:00:00+00:00",
            "missing": 1,
            "first_missing": ["2024-01-04T00:00:00+00:00"],
        }
    ]


def test_db_gaps_prints_the_missing_bucket_starts(ops: tuple[dict[str, str], str]) -> None:
    env, config = ops
    args = [
        "db",
        "gaps",
        "BTC",
        config,
        "--interval",
        "1d",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-06",
    ]
    result = run_cli(*args, env=env)
    assert result.code == 0, result.err
    assert result.out.splitlines()[:2] == ["2024-01-01T00:00:00+00:00", "2024-01-04T00:00:00+00:00"]
    assert "2 missing 1d bucket(s) of BTC" in result.out
    data = json.loads(run_cli(*args, "--json", env=env).out)
    assert data["missing"] == ["2024-01-01T00:00:00+00:00", "2024-01-04T00:00:00+00:00"]


def test_db_maintain_prints_what_was_done(ops: tuple[dict[str, str], str]) -> None:
    env, config = ops
    result = run_cli("db", "maintain", config, env=env)
    assert result.code == 0, result.err
    assert "- compacted the candles" in result.out
    data = json.loads(run_cli("db", "maintain", config, "--json", env=env).out)
    assert data == {
        "adapter": "store",
        "actions": ["compacted the candles"],
        "details": {"freed": 1},
    }
