"""The Google Sheets adapter (seeds/002 §4.3): positions, the ledger and configuration in a spreadsheet.

What it does, in terms of Sheets API requests (each one passes the shared rate
limiter and the retry policy, and runs in a worker thread, since gspread is
synchronous):

* **open**: one ``spreadsheets.get`` (worksheet titles, the sheet's time zone);
  with ``ensure_sheets``, one ``batchUpdate`` adding missing worksheets and one
  ``values.batchUpdate`` writing the header rows of empty ones.
* **reads** (``fetch_positions``, ``fetch_ledger``, ``fetch_strategy_params``,
  ``fetch_risk_configs``): one ``values.get`` of the whole worksheet. The header
  row is checked (a missing or renamed header is a :class:`~qts_data_sheets.mapping.HeaderError`
  naming the sheet and the header); each row is parsed alone. Bad rows are not
  returned but never dropped silently: each is reported by sheet and row number
  in :attr:`SheetsAdapter.last_read_errors` (and :attr:`SheetsAdapter.read_errors`
  per sheet), logged as a warning on ``qts_data.sheets``, and counted in the
  health details. A later row repeating the key of an earlier one (a symbol, an
  idempotency key) is reported the same way.
* **positions** (``save_position``, ``save_positions``): one read to find each
  symbol's row, then one ``values.batchUpdate`` rewriting the rows of known
  symbols in place (only the mapped columns: other columns of the row are left
  alone) and one ``values.append`` for new symbols. Strategy and risk rows, when
  ``writable_config`` allows writing them, work the same way on their keys.
* **ledger** (``append_ledger``, ``append_ledger_batch``): one ``values.append``
  per batch, idempotent by :attr:`LedgerEntry.idempotency_key` (see below).

Every write uses ``valueInputOption=RAW``: what is written is stored as text,
exactly (``"001234"`` keeps its zeros, ``"=1+1"`` is not a formula), and every
number keeps all its digits. Times are written in ISO 8601, UTC.

Idempotency of the ledger. The adapter keeps the set of idempotency keys in the
sheet, loaded by one read before its first append and merged with every read of
the ledger since. An entry whose key is known is not sent (``append_ledger``
returns False). When an append's outcome is unknown (a timeout after sending, a
5xx, a lost connection: the request may have landed), the adapter does not send
it again blindly: it reads the sheet, and if the batch's keys are there (an
append is applied whole or not at all) the batch is done; only otherwise is it
sent again. Entries without an order id (no key) are found by comparing the rows
after the last row the adapter knew. Appends of new positions are reconciled the
same way on their symbols. The adapter assumes it is the only writer of the
ledger: rows deleted by hand keep their keys known until the adapter is reopened.

Not supported (``NotSupportedError``, as the seed says): ticks, candles and
execution logs. Strategy and risk sheets are read-only unless ``writable_config``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    HealthState,
    HealthStatus,
    Interval,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.contracts.checks import check_range as _check_range
from qts_data.errors import BackendError, ContractError, NotSupportedError, QtsDataError
from qts_data.interfaces import Capability, DataSourceAdapter, IngestResult, TickSource
from qts_data_sheets.a1 import column_letters, format_range, parse_box, quote_sheet, split_range
from qts_data_sheets.mapping import ParsedRows, SheetLayout, SymbolRule, cell_text, parse_rows
from qts_data_sheets.ratelimit import SlidingWindowLimiter, shared_limiter
from qts_data_sheets.retry import (
    CallStats,
    RetryPolicy,
    UncertainWriteError,
    call_with_retry,
)
from qts_data_sheets.settings import ROLE_CONTRACTS, ROLES, SheetsSettings

if TYPE_CHECKING:
    import gspread
    from gspread.http_client import HTTPClient

__all__ = ["SHEET_ALIASES", "SheetsAdapter"]

log = logging.getLogger("qts_data.sheets")
T = TypeVar("T")
C = TypeVar("C", bound=Contract)
UTC = timezone.utc

#: Other names ``fetch_raw_data`` accepts for each role (as the memory adapter does),
#: compared case-insensitively with spaces and hyphens read as underscores.
SHEET_ALIASES: dict[str, tuple[str, ...]] = {
    "positions": ("position",),
    "ledger": ("t_ledger",),
    "strategies": ("strategy", "strategy_params"),
    "risk_configs": ("risk_config",),
}

_READ_PARAMS = {
    "valueRenderOption": "UNFORMATTED_VALUE",
    "dateTimeRenderOption": "SERIAL_NUMBER",
    "majorDimension": "ROWS",
}
_RAW_PARAMS = {"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}
_APPEND_PARAMS = {"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"}


def _normal(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def _key_of(role: str) -> Callable[[Any], str | None]:
    if role == "positions":
        return lambda p: str(p.symbol)
    if role == "strategies":
        return lambda s: f"{s.strategy_id}\x1f{s.param_name}"
    if role == "risk_configs":
        return lambda r: str(r.config_key)
    return lambda e: e.idempotency_key


_KEY_NAMES = {
    "positions": "symbol",
    "ledger": "order_id#fill_id",
    "strategies": "strategy_id/param_name",
    "risk_configs": "config_key",
}


def _row_key(
    role: str, layout: SheetLayout, row: Sequence[Any], symbols: SymbolRule | None = None
) -> str | None:
    """The key of a row from its cells (works for rows that do not parse too); a symbol
    read by ``symbols``, as reads read it, so a write finds the row of a typed code."""
    if role == "ledger":
        order = layout.text_at(row, "order_id")
        if not order:
            return None
        fill = layout.text_at(row, "fill_id")
        return f"{order}#{fill}" if fill else order
    if role == "strategies":
        sid, name = layout.text_at(row, "strategy_id"), layout.text_at(row, "param_name")
        return f"{sid}\x1f{name}" if sid and name else None
    field = "symbol" if role == "positions" else "config_key"
    return layout.text_at(row, field, symbols) or None


class SheetsAdapter(DataSourceAdapter):
    """A :class:`~qts_data.interfaces.DataSourceAdapter` over one Google spreadsheet (gspread 6)."""

    capabilities = frozenset(
        {
            Capability.POSITIONS,
            Capability.LEDGER,
            Capability.STRATEGIES,
            Capability.RISK,
            Capability.RAW,
        }
    )

    def __init__(self, settings: SheetsSettings) -> None:
        self.settings = settings
        #: Capabilities whose data this adapter reads but does not write (the hybrid
        #: composition should send their writes elsewhere).
        self.read_only_capabilities: frozenset[str] = (
            frozenset()
            if settings.writable_config
            else frozenset({Capability.STRATEGIES, Capability.RISK})
        )
        self.stats = CallStats()
        #: Bad-row messages of the most recent read, whatever the sheet.
        self.last_read_errors: list[str] = []
        #: Bad-row messages of the most recent read of each sheet (by title).
        self.read_errors: dict[str, list[str]] = {}
        self.read_errors_total = 0
        #: Rows read with a doubt (a number in a symbol column), most recent read.
        self.last_read_warnings: list[str] = []
        self._symbols = SymbolRule(settings.symbol_format, settings.symbol_digits)
        self._policy = RetryPolicy(
            settings.max_retries, settings.backoff_base_s, settings.backoff_max_s
        )
        self._client: gspread.Client | None = None
        self._http: HTTPClient | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._limiter: SlidingWindowLimiter | None = None
        self._identity = ""
        self._titles: list[str] = []
        self._sheet_tz: tzinfo = UTC
        self._layouts: dict[str, SheetLayout] = {}
        self._ledger_keys: set[str] | None = None
        self._ledger_last_row = 0
        self._write_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._http is not None:
            return
        from qts_data_sheets import client as sheets_client

        settings = self.settings
        credentials, identity = sheets_client.load_credentials(settings)
        self._identity = identity
        # The quota is per user: one limiter per identity (and per stand-in, in tests).
        key = identity
        if settings.api_base_url is not None and settings.api_base_url not in identity:
            key = f"{identity}@{settings.api_base_url}"
        self._limiter = shared_limiter(key, settings.requests_per_minute, settings.quota_window_s)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qts-sheets")
        try:
            self._client = sheets_client.build_client(credentials, settings)
            self._http = self._client.http_client
            await self._refresh_metadata()
            if settings.ensure_sheets:
                await self._ensure_sheets()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client, self._http = self._client, None, None
        executor, self._executor = self._executor, None
        self._layouts.clear()  # a reopened adapter reads the sheets afresh
        self._ledger_keys = None
        if client is not None:
            from qts_data_sheets.client import close_client

            close_client(client)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return self.settings.public()

    # -- calls -----------------------------------------------------------------------------------
    @property
    def http(self) -> HTTPClient:
        """gspread's HTTP client (its methods are the Sheets API calls, by spreadsheet id)."""
        if self._http is None:
            raise QtsDataError(f"the sheets adapter {self.name or 'sheets'!r} is not open")
        return self._http

    @property
    def spreadsheet_id(self) -> str:
        return self.settings.spreadsheet_id

    async def _call(self, what: str, fn: Callable[[], T], *, idempotent: bool) -> T:
        """One API request through the rate limiter, in a worker thread, with retries."""
        from qts_data_sheets.client import classify

        limiter, executor = self._limiter, self._executor
        if limiter is None or executor is None:
            raise QtsDataError("the sheets adapter is not open")
        loop = asyncio.get_running_loop()

        async def attempt() -> T:
            self.stats.quota_wait_s += await limiter.acquire()
            self.stats.requests += 1
            return await loop.run_in_executor(executor, fn)

        return await call_with_retry(
            attempt, classify, self._policy, idempotent=idempotent, what=what, stats=self.stats
        )

    def _take_metadata(
        self, properties: dict[str, Any], sheets: list[dict[str, Any]] | None
    ) -> None:
        if sheets is not None:
            self._titles = [s["properties"]["title"] for s in sheets]
        if self.settings.timezone:
            self._sheet_tz = ZoneInfo(self.settings.timezone)
        else:
            try:
                self._sheet_tz = ZoneInfo(str(properties.get("timeZone") or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                self._sheet_tz = UTC

    async def _refresh_metadata(self) -> dict[str, Any]:
        http, sid = self.http, self.spreadsheet_id
        meta: dict[str, Any] = dict(
            await self._call(
                f"read the metadata of spreadsheet {sid}",
                lambda: http.fetch_sheet_metadata(sid),
                idempotent=True,
            )
        )
        self._take_metadata(meta.get("properties", {}), meta.get("sheets", []))
        return meta

    @property
    def timezone(self) -> tzinfo:
        """The zone of cells without an offset: ``timezone`` setting, else the spreadsheet's."""
        return self._sheet_tz

    async def _title(self, role: str) -> str:
        title = self.settings.worksheet(role)
        if title not in self._titles:
            await self._refresh_metadata()  # added since?
            if title not in self._titles:
                raise BackendError(
                    f"spreadsheet {self.settings.spreadsheet_id}: no worksheet {title!r} for "
                    f"{role} (worksheets: {', '.join(self._titles) or 'none'}); create it, set "
                    f"worksheets.{role}, or set ensure_sheets = true"
                )
        return title

    async def _ensure_sheets(self) -> None:
        http, sid = self.http, self.spreadsheet_id
        wanted = [self.settings.worksheet(role) for role in ROLES]
        missing = [t for t in wanted if t not in self._titles]
        if missing:
            body = {"requests": [{"addSheet": {"properties": {"title": t}}} for t in missing]}
            try:
                await self._call(
                    "add worksheets", lambda: http.batch_update(sid, body), idempotent=False
                )
            except UncertainWriteError:
                await self._refresh_metadata()
                still = [t for t in missing if t not in self._titles]
                if still:
                    body = {"requests": [{"addSheet": {"properties": {"title": t}}} for t in still]}
                    await self._call(
                        "add worksheets", lambda: http.batch_update(sid, body), idempotent=False
                    )
            await self._refresh_metadata()
        ranges = [format_range(t, 0, end_row=1) for t in wanted]
        got = await self._call(
            "read header rows",
            lambda: http.values_batch_get(sid, ranges, params=dict(_READ_PARAMS)),
            idempotent=True,
        )
        data = []
        for role, title, value_range in zip(
            ROLES, wanted, got.get("valueRanges", []), strict=False
        ):
            if not value_range.get("values"):
                headers = list(self.settings.header_map(role).values())
                data.append(
                    {"range": format_range(title, 0, 0, 1, len(headers)), "values": [headers]}
                )
        if data:
            write: dict[str, Any] = {"valueInputOption": "RAW", "data": data}
            await self._call(
                "write header rows", lambda: http.values_batch_update(sid, write), idempotent=True
            )

    # -- reading ---------------------------------------------------------------------------------
    async def _values(self, title: str, params: dict[str, str]) -> list[list[Any]]:
        http, sid = self.http, self.spreadsheet_id
        got = await self._call(
            f"read sheet {title!r}",
            lambda: http.values_get(sid, quote_sheet(title), params=dict(params)),
            idempotent=True,
        )
        values = got.get("values", [])
        return [list(row) for row in values]

    async def _read_role(
        self, role: str, *, public: bool
    ) -> tuple[ParsedRows[Any], dict[str, int]]:
        """Read and parse a role's sheet; also the key -> first row number of every row with a key.

        ``public`` reads record their bad rows (:attr:`last_read_errors`); reads made
        inside a write only use the sheet's state.
        """
        title = await self._title(role)
        values = await self._values(title, _READ_PARAMS)
        parsed = parse_rows(
            title,
            values,
            ROLE_CONTRACTS[role],
            self.settings.header_map(role),
            self._sheet_tz,
            key=_key_of(role),
            key_name=_KEY_NAMES[role],
            symbols=self._symbols,
        )
        self._layouts[role] = parsed.layout
        keys: dict[str, int] = {}
        for number, row in enumerate(values[1:], start=2):
            key = _row_key(role, parsed.layout, row, self._symbols)
            if key is not None and key not in keys:
                keys[key] = number
        if role == "ledger" and self._ledger_keys is not None:
            self._ledger_keys |= keys.keys()  # a union: never forget a key this adapter wrote
        if public:
            self._record_errors(title, parsed.errors)
            self.last_read_warnings = list(parsed.warnings)
            for message in parsed.warnings:
                log.warning("%s", message)
        return parsed, keys

    def _record_errors(self, title: str, errors: list[str]) -> None:
        self.read_errors[title] = list(errors)
        self.last_read_errors = list(errors)
        self.read_errors_total += len(errors)
        for message in errors:
            log.warning("bad row skipped: %s", message)

    async def fetch_positions(self) -> list[Position]:
        parsed, _ = await self._read_role("positions", public=True)
        return sorted(parsed.contracts(), key=lambda p: p.symbol)

    async def fetch_ledger(
        self,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LedgerEntry]:
        _check_range(start, end, "fetch_ledger")
        parsed, _ = await self._read_role("ledger", public=True)
        entries: list[LedgerEntry] = [
            e
            for e in parsed.contracts()
            if (symbol is None or e.symbol == symbol)
            and (start is None or e.timestamp >= start)
            and (end is None or e.timestamp < end)
        ]
        entries.sort(key=lambda e: e.timestamp)  # stable: equal times keep the sheet's order
        return entries

    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        parsed, _ = await self._read_role("strategies", public=True)
        params: list[StrategyParam] = [
            p for p in parsed.contracts() if strategy_id is None or p.strategy_id == strategy_id
        ]
        return sorted(params, key=lambda p: (p.strategy_id, p.param_name))

    async def fetch_risk_configs(self) -> list[RiskConfig]:
        parsed, _ = await self._read_role("risk_configs", public=True)
        return sorted(parsed.contracts(), key=lambda c: c.config_key)

    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        """The rows of a worksheet as header -> displayed text (``FORMATTED_VALUE``), read-only.

        ``sheet`` is a role (``positions``, ``ledger``, ``strategies``,
        ``risk_configs``), one of its aliases (``Position``, ``T_Ledger``,
        ``Strategy``, ``Risk_Config``), a configured worksheet title or one of
        ``raw_sheets``, case-insensitively. A column without a header is keyed
        ``"column F"``, and a repeated header ``"qty (column F)"``, so no cell is lost.
        """
        title = self._raw_title(sheet)
        if title not in self._titles:
            await self._refresh_metadata()
            if title not in self._titles:
                raise BackendError(
                    f"spreadsheet {self.settings.spreadsheet_id}: no worksheet {title!r} "
                    f"(worksheets: {', '.join(self._titles) or 'none'})"
                )
        values = await self._values(title, _RAW_PARAMS)
        if not values:
            return []
        names: list[str] = []
        for index, cell in enumerate(values[0]):
            text = cell_text(cell)
            if not text:
                text = f"column {column_letters(index)}"
            elif text in names:
                text = f"{text} (column {column_letters(index)})"
            names.append(text)
        width = max([len(names), *(len(row) for row in values[1:])])
        while len(names) < width:
            names.append(f"column {column_letters(len(names))}")
        rows = []
        for row in values[1:]:
            texts = [cell_text(cell) for cell in row]
            if not any(texts):
                continue
            texts += [""] * (width - len(texts))
            rows.append(dict(zip(names, texts, strict=True)))
        return rows

    def _raw_title(self, sheet: str) -> str:
        wanted = _normal(sheet)
        known: dict[str, str] = {}
        for role in ROLES:
            title = self.settings.worksheet(role)
            for alias in (role, *SHEET_ALIASES[role], title):
                known.setdefault(_normal(alias), title)
        for title in self.settings.raw_sheets:
            known.setdefault(_normal(title), title)
        if wanted in known:
            return known[wanted]
        roles = ", ".join(ROLES)
        titles = ", ".join(
            [self.settings.worksheet(r) for r in ROLES] + list(self.settings.raw_sheets)
        )
        raise QtsDataError(
            f"unknown sheet {sheet!r}: the sheets adapter knows {roles} (worksheets {titles})"
        )

    # -- positions and keyed rows ------------------------------------------------------------------
    async def save_position(self, position: Position) -> None:
        await self.save_positions([position])

    async def save_positions(self, positions: Iterable[Position]) -> int:
        """Insert or replace many positions (by symbol) in at most three requests; returns how many.

        One read finds the rows; one ``values.batchUpdate`` rewrites the known
        symbols in place; one ``values.append`` adds the new ones. When a symbol
        is given twice, the last one wins. Each position is written atomically;
        should the append fail after the update landed, saving the same batch
        again is safe (positions are keyed by symbol).
        """
        items = _typed(positions, Position, "save_positions")
        return await self._upsert("positions", items)

    async def save_strategy_param(self, param: StrategyParam) -> None:
        self._require_writable(Capability.STRATEGIES, "save_strategy_param", "strategies")
        await self._upsert("strategies", _typed([param], StrategyParam, "save_strategy_param"))

    async def save_risk_config(self, config: RiskConfig) -> None:
        self._require_writable(Capability.RISK, "save_risk_config", "risk_configs")
        await self._upsert("risk_configs", _typed([config], RiskConfig, "save_risk_config"))

    def _require_writable(self, capability: str, operation: str, role: str) -> None:
        if capability in self.read_only_capabilities:
            raise NotSupportedError(
                f"{self.name or 'sheets'} (SheetsAdapter) does not support {operation}: the "
                f"worksheet {self.settings.worksheet(role)!r} is read-only (set writable_config = "
                "true to allow writing it)"
            )

    async def _upsert(self, role: str, items: list[Any]) -> int:
        if not items:
            return 0
        key_of = _key_of(role)
        mapping = self.settings.header_map(role)
        async with self._write_lock:
            parsed, rows_by_key = await self._read_role(role, public=False)
            layout = parsed.layout
            title = layout.sheet
            latest: dict[str, Any] = {}
            for item in items:
                latest[str(key_of(item))] = item
            updates: dict[int, list[str]] = {}
            appends: dict[str, list[str]] = {}
            for key, item in latest.items():
                cells = layout.cells_for(item.to_sheets_row(mapping))  # raises before any write
                if key in rows_by_key:
                    updates[rows_by_key[key]] = cells
                else:
                    appends[key] = cells
            if updates:
                data = [
                    {
                        "range": format_range(title, number - 1, c0, number, c1),
                        "values": [cells[c0:c1]],
                    }
                    for number, cells in sorted(updates.items())
                    for c0, c1 in layout.runs()
                ]
                body = {"valueInputOption": "RAW", "data": data}
                http, sid = self.http, self.spreadsheet_id
                await self._call(
                    f"update rows of {title!r}",
                    lambda: http.values_batch_update(sid, body),
                    idempotent=True,
                )
            if appends:

                async def still_missing() -> set[str]:
                    _, now = await self._read_role(role, public=False)
                    return {k for k in appends if k not in now}

                await self._append_reconciled(title, appends, still_missing)
            return len(latest)

    async def _append_reconciled(
        self,
        title: str,
        rows: dict[str, list[str]],
        still_missing: Callable[[], Awaitable[set[str]]],
    ) -> dict[str, Any] | None:
        """Append ``rows`` (key -> cells) once, even when an answer is lost.

        After an uncertain outcome, ``still_missing()`` reads the sheet and
        returns the keys not in it; only those are sent again. Returns the
        append's answer, or None when the sheet showed that the rows had landed.
        """
        http, sid = self.http, self.spreadsheet_id
        pending = dict(rows)
        uncertain = 0
        while True:
            values = list(pending.values())
            try:
                answer: dict[str, Any] = await self._call(
                    f"append {len(values)} row(s) to {title!r}",
                    functools.partial(
                        http.values_append,
                        sid,
                        quote_sheet(title),
                        dict(_APPEND_PARAMS),
                        {"values": values},
                    ),
                    idempotent=False,
                )
                return answer
            except UncertainWriteError as exc:
                self.stats.uncertain_writes += 1
                if uncertain >= self.settings.max_retries:
                    raise BackendError(
                        f"{exc}; still not in the sheet after {uncertain + 1} attempt(s)"
                    ) from exc
                wait = self._policy.delay(uncertain)
                self.stats.backoffs.append(wait)
                log.info("%s; checking the sheet in %.3fs before sending it again", exc, wait)
                await asyncio.sleep(wait)
                uncertain += 1
                missing = await still_missing()
                if len(missing) < len(pending):
                    self.stats.reconciled_landed += 1
                if not missing:
                    return None
                pending = {k: v for k, v in pending.items() if k in missing}

    # -- ledger ------------------------------------------------------------------------------------
    async def append_ledger(self, entry: LedgerEntry) -> bool:
        return (await self._append_ledger(_typed([entry], LedgerEntry, "append_ledger")))[0]

    async def append_ledger_batch(self, entries: Iterable[LedgerEntry]) -> int:
        """Append many entries in one request; returns how many were new.

        Entries whose idempotency key is already in the sheet (or earlier in the
        batch) are skipped. Every entry is checked before anything is sent.
        """
        results = await self._append_ledger(_typed(entries, LedgerEntry, "append_ledger_batch"))
        return sum(results)

    async def _ledger_layout(self) -> SheetLayout:
        """The ledger's layout, with the known keys loaded; row 1 re-read when older than
        ``layout_ttl_s``."""
        layout = self._layouts.get("ledger")
        if self._ledger_keys is None or layout is None:
            parsed, keys = await self._read_role("ledger", public=False)
            self._ledger_keys = set(keys) | (self._ledger_keys or set())
            self._ledger_last_row = parsed.last_row
            return parsed.layout
        if layout.age() > self.settings.layout_ttl_s:
            title = await self._title("ledger")
            http, sid = self.http, self.spreadsheet_id
            got = await self._call(
                f"read the header row of {title!r}",
                lambda: http.values_get(
                    sid, format_range(title, 0, end_row=1), params=dict(_READ_PARAMS)
                ),
                idempotent=True,
            )
            header = (got.get("values") or [[]])[0]
            if layout.same_header(header):
                layout.read_at = time.monotonic()
            else:
                layout = SheetLayout.from_header(
                    title, header, LedgerEntry, self.settings.header_map("ledger")
                )
                self._layouts["ledger"] = layout
        return layout

    async def _append_ledger(self, entries: list[LedgerEntry]) -> list[bool]:
        results = [False] * len(entries)
        if not entries:
            return results
        mapping = self.settings.header_map("ledger")
        async with self._write_lock:
            layout = await self._ledger_layout()
            known = self._ledger_keys
            assert known is not None
            batch: list[tuple[int, str | None, list[str]]] = []
            in_batch: set[str] = set()
            for index, entry in enumerate(entries):
                key = entry.idempotency_key
                if key is not None and (key in known or key in in_batch):
                    continue
                cells = layout.cells_for(entry.to_sheets_row(mapping))  # raises before any write
                if key is not None:
                    in_batch.add(key)
                batch.append((index, key, cells))
            if not batch:
                return results
            title = layout.sheet
            before = self._ledger_last_row
            rows = {f"\x00{i}" if key is None else key: cells for i, key, cells in batch}
            sent = [cells for _, _, cells in batch]

            async def still_missing() -> set[str]:
                parsed, keys = await self._read_role("ledger", public=False)
                self._ledger_last_row = max(self._ledger_last_row, parsed.last_row)
                keyed = {k for k in rows if not k.startswith("\x00")}
                if keyed:
                    landed = keyed & keys.keys()
                    if landed:  # an append lands whole: its keyless rows landed with it
                        return keyed - landed
                    return set(rows)
                tail = [_trimmed(r) for r in parsed.values[before:]]
                return set() if _contains(tail, [_trimmed(r) for r in sent]) else set(rows)

            answer = await self._append_reconciled(title, rows, still_missing)
            updated = ((answer or {}).get("updates") or {}).get("updatedRange")
            if updated:
                self._ledger_last_row = max(self._ledger_last_row, _last_row_of(updated))
            for index, key, _ in batch:
                results[index] = True
                if key is not None:
                    known.add(key)
        return results

    # -- not supported -----------------------------------------------------------------------------
    def _unsupported(self, capability: str, operation: str, what: str) -> NotSupportedError:
        return NotSupportedError(
            f"Google Sheets does not support {what}: {operation} is not available on the sheets "
            f"adapter {self.name or 'sheets'!r} (capability {capability!r}); keep {what} in a "
            "database adapter (the hybrid composition sends them there)"
        )

    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        raise self._unsupported(Capability.TICKS, "ingest_ticks", "tick data")

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        raise self._unsupported(Capability.TICKS, "fetch_tick_data", "tick data")

    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        raise self._unsupported(Capability.OHLCV, "upsert_ohlcv", "candles")

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        raise self._unsupported(Capability.OHLCV, "fetch_ohlcv", "candles")

    async def store_execution_result(self, log: ExecutionLog) -> bool:
        raise self._unsupported(
            Capability.EXECUTION_LOGS, "store_execution_result", "execution logs"
        )

    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        raise self._unsupported(Capability.EXECUTION_LOGS, "fetch_execution_logs", "execution logs")

    # -- health -------------------------------------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        component = self.name or "sheets"
        details: dict[str, Any] = {
            "spreadsheet_id": self.settings.spreadsheet_id,
            **self.stats.as_dict(),
            "read_errors_total": self.read_errors_total,
            "last_read_errors": len(self.last_read_errors),
            "last_read_warnings": len(self.last_read_warnings),
        }
        if self._limiter is not None:
            details["quota"] = (
                f"{self._limiter.in_window()}/{self._limiter.limit} per {self._limiter.window_s:g}s"
            )
        if self._http is None:
            return HealthStatus(
                component=component,
                state=HealthState.UNHEALTHY,
                message="not open",
                details=details,
            )
        started = time.perf_counter()
        try:
            meta = await self._refresh_metadata()
        except QtsDataError as exc:
            return HealthStatus(
                component=component,
                state=HealthState.UNHEALTHY,
                latency_ms=(time.perf_counter() - started) * 1000,
                message=str(exc),
                details=details,
            )
        latency = (time.perf_counter() - started) * 1000
        details["title"] = meta.get("properties", {}).get("title")
        missing = [
            self.settings.worksheet(r)
            for r in ROLES
            if self.settings.worksheet(r) not in self._titles
        ]
        details["missing_worksheets"] = missing
        state, message = HealthState.HEALTHY, ""
        if missing:
            state, message = HealthState.DEGRADED, f"missing worksheet(s): {', '.join(missing)}"
        elif self.last_read_errors:
            state = HealthState.DEGRADED
            message = f"{len(self.last_read_errors)} bad row(s) in the last read"
        elif self.last_read_warnings and self.settings.symbol_format == "text":
            state = HealthState.DEGRADED  # a code may have lost its zeros
            message = f"{len(self.last_read_warnings)} number(s) in symbol columns in the last read"
        return HealthStatus(
            component=component, state=state, latency_ms=latency, message=message, details=details
        )


def _typed(items: Iterable[Any], kind: type[C], operation: str) -> list[C]:
    out = list(items)
    for index, item in enumerate(out):
        if not isinstance(item, kind):
            raise ContractError(
                f"{operation}: element {index} is a {type(item).__name__}, not a {kind.__name__}"
            )
    return out


def _trimmed(row: Sequence[Any]) -> list[str]:
    texts = [cell_text(c) for c in row]
    while texts and not texts[-1]:
        texts.pop()
    return texts


def _contains(haystack: list[list[str]], needle: list[list[str]]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def _last_row_of(a1: str) -> int:
    """The last row number of an A1 range such as ``T_Ledger!A5:K7`` (7)."""
    _, cells = split_range(a1)
    box = parse_box(cells or "A1")
    return box.end_row if box.end_row is not None else box.start_row + 1
