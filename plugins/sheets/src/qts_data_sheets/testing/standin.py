"""A local stand-in for the Google Sheets API v4, for tests that cannot reach Google.

:class:`SheetsStandIn` is a real HTTP server on a free loopback port (standard
library only: ``http.server`` in a thread) holding spreadsheets in memory. It
answers the endpoints gspread 6 calls, in Google's JSON shapes, so gspread's own
HTTP code talks to it when its base URL is rewritten (the ``sheets`` plugin's
``api_base_url`` setting)::

    GET  /v4/spreadsheets/{id}                         spreadsheets.get (metadata)
    POST /v4/spreadsheets/{id}:batchUpdate             spreadsheets.batchUpdate (addSheet, deleteSheet,
                                                       appendDimension, updateSheetProperties)
    GET  /v4/spreadsheets/{id}/values/{range}          values.get
    GET  /v4/spreadsheets/{id}/values:batchGet         values.batchGet
    PUT  /v4/spreadsheets/{id}/values/{range}          values.update
    POST /v4/spreadsheets/{id}/values/{range}:append   values.append
    POST /v4/spreadsheets/{id}/values:batchUpdate      values.batchUpdate
    POST /v4/spreadsheets/{id}/values/{range}:clear    values.clear
    POST /v4/spreadsheets/{id}/values:batchClear       values.batchClear
    POST /token                                        an OAuth token endpoint (service-account JWT grant)

Values keep their JSON type. ``valueInputOption=RAW`` stores them as given;
``USER_ENTERED`` parses text as a person typing it would be (numbers, ``TRUE``,
percentages, ISO dates become date serials, a leading ``'`` forces text;
formulas are refused with a 400, the stand-in does not calculate). Reads honour
``valueRenderOption`` (``FORMATTED_VALUE`` default, ``UNFORMATTED_VALUE``,
``FORMULA``), ``dateTimeRenderOption`` and ``majorDimension``; trailing empty
cells and rows are left out, as Google does. Writes past the grid of
``values.update`` fail with Google's "exceeds grid limits" error; appends grow it.

Faults, on demand, for the next matching requests (``match`` is an operation
name such as ``"values.append"`` or a collection of them; by default every
Sheets API request, never the token endpoint):

* :meth:`~SheetsStandIn.fail_next` -- answer an error status (429, 500, 503...) without applying;
* :meth:`~SheetsStandIn.slow` -- wait before handling (applied, answered late);
* :meth:`~SheetsStandIn.succeed_then_timeout` -- apply, then never answer (the
  client times out although the write landed);
* :meth:`~SheetsStandIn.drop_next` -- close the connection without applying or answering.

Every request is recorded (:attr:`~SheetsStandIn.requests`) with its operation,
parameters, body, arrival time and the status it got.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from qts_data_sheets.a1 import GridBox, column_letters, parse_box, quote_sheet, split_range

__all__ = [
    "API_OPERATIONS",
    "DateTimeValue",
    "RecordedRequest",
    "SheetsStandIn",
]

#: The Sheets API operations the stand-in answers (fault ``match`` names).
API_OPERATIONS = frozenset(
    {
        "spreadsheets.get",
        "spreadsheets.batchUpdate",
        "values.get",
        "values.batchGet",
        "values.update",
        "values.append",
        "values.batchUpdate",
        "values.clear",
        "values.batchClear",
    }
)
TOKEN_OPERATION = "oauth.token"

_EPOCH = datetime(1899, 12, 30)  # day 0 of spreadsheet date serials
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][+-]?\d+)?$")
_DATE = re.compile(
    r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?$"
)


@dataclass(frozen=True)
class DateTimeValue:
    """A date/time cell: a serial number of days since 1899-12-30, in the spreadsheet's zone."""

    serial: float

    @classmethod
    def of(cls, when: datetime | date) -> DateTimeValue:
        """The cell a person typing ``when`` (wall-clock time, no zone) would make."""
        if not isinstance(when, datetime):
            when = datetime(when.year, when.month, when.day)
        delta = when.replace(tzinfo=None) - _EPOCH
        return cls(delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400)

    def to_datetime(self) -> datetime:
        return _EPOCH + timedelta(days=self.serial)

    def formatted(self) -> str:
        when = self.to_datetime()
        when = when.replace(microsecond=0) + timedelta(seconds=round(when.microsecond / 1e6))
        if when.hour == when.minute == when.second == 0 and float(self.serial).is_integer():
            return when.strftime("%Y-%m-%d")
        return when.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class RecordedRequest:
    """One request the stand-in received."""

    method: str
    path: str
    operation: str
    spreadsheet_id: str | None
    params: dict[str, list[str]]
    body: Any
    received: float  # time.monotonic() on arrival
    authorization: str | None
    status: int = 0  # the status answered; 0 while in flight or when no answer was sent
    fault: str | None = None
    applied: bool = False

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def value_input_option(self) -> str | None:
        """``valueInputOption`` of a write (query parameter, or body of a batch update)."""
        if isinstance(self.body, dict) and "valueInputOption" in self.body:
            return str(self.body["valueInputOption"])
        return self.param("valueInputOption")


class ApiError(Exception):
    """An error answer in Google's shape."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS_NAMES.get(code, HTTPStatus(code).phrase.upper())

    def payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class _Fault:
    kind: str  # "error" | "slow" | "timeout" | "drop"
    remaining: int | None  # None: until reset
    match: frozenset[str] | None
    status: int = 0
    seconds: float = 0.0
    retry_after: float | None = None
    message: str | None = None

    def matches(self, operation: str) -> bool:
        if self.remaining == 0:
            return False
        if self.match is None:
            return operation in API_OPERATIONS
        return operation in self.match


@dataclass
class _Sheet:
    sheet_id: int
    title: str
    rows: int
    cols: int
    cells: list[list[Any]] = field(default_factory=list)  # ragged; None = empty

    def properties(self, index: int) -> dict[str, Any]:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.rows, "columnCount": self.cols},
        }

    def get(self, row: int, col: int) -> Any:
        if row < len(self.cells) and col < len(self.cells[row]):
            return self.cells[row][col]
        return None

    def put(self, row: int, col: int, value: Any) -> None:
        while len(self.cells) <= row:
            self.cells.append([])
        line = self.cells[row]
        while len(line) <= col:
            line.append(None)
        line[col] = value

    def last_row_with_data(self, col0: int, col1: int) -> int:
        """Index of the last row with a value in columns [col0, col1), or -1."""
        for row in range(len(self.cells) - 1, -1, -1):
            if any(v is not None for v in self.cells[row][col0:col1]):
                return row
        return -1

    def trimmed(self) -> list[list[Any]]:
        rows = [list(r) for r in self.cells]
        for r in rows:
            while r and r[-1] is None:
                r.pop()
        while rows and not rows[-1]:
            rows.pop()
        return rows


@dataclass
class _Spreadsheet:
    spreadsheet_id: str
    title: str
    time_zone: str
    locale: str
    sheets: list[_Sheet] = field(default_factory=list)

    def sheet(self, title: str) -> _Sheet | None:
        return next((s for s in self.sheets if s.title == title), None)


class SheetsStandIn:
    """A local Sheets API v4 server with an in-memory model and fault injection.

    Use it as a context manager (or :meth:`start` / :meth:`stop`)::

        with SheetsStandIn() as standin:
            sid = standin.create_spreadsheet({"Position": [["symbol", "qty", "avg_price"]]})
            ...  # point the sheets adapter at standin.base_url

    ``require_auth=True`` makes every API request need a bearer token issued by
    the stand-in's ``/token`` endpoint (:attr:`token_url`), as Google does.
    """

    def __init__(self, *, host: str = "127.0.0.1", require_auth: bool = False) -> None:
        self.host = host
        self.require_auth = require_auth
        self._lock = threading.RLock()
        self._spreadsheets: dict[str, _Spreadsheet] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._tokens: set[str] = set()
        self.token_requests: list[dict[str, Any]] = []  # decoded JWT claims of token grants
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SheetsStandIn:
        if self._server is not None:
            return self
        self._stop.clear()
        handler = _make_handler(self)
        server = ThreadingHTTPServer((self.host, 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"sheets-standin:{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held by faults are released (their connections closed)."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:  # kept-alive connections would go on being served
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SheetsStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``api_base_url`` to give the sheets adapter."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint, for the ``token_uri`` of a test service account."""
        return f"{self.base_url}/token"

    # -- the model ---------------------------------------------------------------------------
    def create_spreadsheet(
        self,
        sheets: Mapping[str, Sequence[Sequence[Any]]] | None = None,
        *,
        spreadsheet_id: str | None = None,
        title: str = "qts",
        time_zone: str = "Asia/Seoul",
        locale: str = "ko_KR",
        rows: int = 1000,
        cols: int = 26,
    ) -> str:
        """A new spreadsheet with the given worksheets (title -> rows, stored as given); its id."""
        sid = spreadsheet_id or f"standin-{next(self._ids)}-{secrets.token_hex(4)}"
        with self._lock:
            if sid in self._spreadsheets:
                raise ValueError(f"spreadsheet {sid!r} exists")
            book = _Spreadsheet(sid, title, time_zone, locale)
            self._spreadsheets[sid] = book
            for name, values in (sheets or {"Sheet1": []}).items():
                sheet = self._new_sheet(book, name, rows, max(cols, *(len(r) for r in values), 1))
                sheet.rows = max(rows, len(values))
                for r, line in enumerate(values):
                    for c, value in enumerate(line):
                        if value is not None and value != "":
                            sheet.put(r, c, value)
        return sid

    def add_sheet(
        self, spreadsheet_id: str, title: str, rows: Sequence[Sequence[Any]] = (), *, cols: int = 26
    ) -> None:
        with self._lock:
            book = self._book(spreadsheet_id)
            sheet = self._new_sheet(book, title, max(1000, len(rows)), cols)
            for r, line in enumerate(rows):
                for c, value in enumerate(line):
                    if value is not None and value != "":
                        sheet.put(r, c, value)

    def put_rows(
        self,
        spreadsheet_id: str,
        title: str,
        rows: Sequence[Sequence[Any]],
        *,
        user_entered: bool = True,
        start_row: int | None = None,
    ) -> None:
        """Write rows as a person would (``user_entered``: text parsed as typed) after the last row,
        or from 0-based ``start_row``. Not recorded as a request and never faulted."""
        with self._lock:
            sheet = self._sheet(self._book(spreadsheet_id), title)
            row0 = sheet.last_row_with_data(0, sheet.cols) + 1 if start_row is None else start_row
            for r, line in enumerate(rows):
                for c, value in enumerate(line):
                    cell = _user_entered(value) if user_entered else value
                    sheet.put(row0 + r, c, None if cell == "" else cell)
            sheet.rows = max(sheet.rows, row0 + len(rows))

    def cells(self, spreadsheet_id: str, title: str) -> list[list[Any]]:
        """The stored values of a sheet (None for an empty cell), trailing empties left out."""
        with self._lock:
            return self._sheet(self._book(spreadsheet_id), title).trimmed()

    def data_rows(self, spreadsheet_id: str, title: str) -> int:
        """How many rows below the header row hold anything."""
        return max(0, len(self.cells(spreadsheet_id, title)) - 1)

    def sheet_titles(self, spreadsheet_id: str) -> list[str]:
        with self._lock:
            return [s.title for s in self._book(spreadsheet_id).sheets]

    def grid(self, spreadsheet_id: str, title: str) -> tuple[int, int]:
        """(rowCount, columnCount) of a sheet."""
        with self._lock:
            sheet = self._sheet(self._book(spreadsheet_id), title)
            return sheet.rows, sheet.cols

    # -- requests and faults ------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, *operations: str) -> list[RecordedRequest]:
        """Recorded requests of the given operations (all API requests when none is given)."""
        wanted = set(operations) or API_OPERATIONS
        return [r for r in self.requests if r.operation in wanted]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()
            self.token_requests.clear()

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        *,
        match: str | Collection[str] | None = None,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status``, without applying them."""
        self._add(
            _Fault(
                "error", n, _match(match), status=status, retry_after=retry_after, message=message
            )
        )

    def slow(
        self,
        seconds: float,
        *,
        n: int | None = None,
        match: str | Collection[str] | None = None,
    ) -> None:
        """Wait ``seconds`` before handling matching requests (the next ``n``, or all until reset).

        The request is applied after the wait: a client that gave up earlier may
        still see its write land later.
        """
        self._add(_Fault("slow", n, _match(match), seconds=seconds))

    def succeed_then_timeout(
        self,
        n: int = 1,
        *,
        match: str | Collection[str] | None = None,
        hold_s: float = 30.0,
    ) -> None:
        """Apply the next ``n`` matching requests, then hold the answer ``hold_s`` and close
        the connection without one: the client times out though the request succeeded."""
        self._add(_Fault("timeout", n, _match(match), seconds=hold_s))

    def drop_next(self, n: int = 1, *, match: str | Collection[str] | None = None) -> None:
        """Close the connection of the next ``n`` matching requests without applying or answering."""
        self._add(_Fault("drop", n, _match(match)))

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("n must be >= 1")
        with self._lock:
            self._faults.append(fault)

    def _take_faults(self, operation: str) -> tuple[_Fault | None, _Fault | None]:
        """(slow fault, other fault) for a request, each consumed once."""
        slow = other = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(operation):
                    continue
                if fault.kind == "slow" and slow is None:
                    slow = fault
                elif fault.kind != "slow" and other is None:
                    other = fault
                else:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining != 0]
        return slow, other

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # -- internals of the model --------------------------------------------------------------
    def _new_sheet(self, book: _Spreadsheet, title: str, rows: int, cols: int) -> _Sheet:
        if not title or book.sheet(title) is not None:
            raise ApiError(
                400,
                f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists. '
                "Please enter another name.",
            )
        sheet_id = 0 if not book.sheets else max(s.sheet_id for s in book.sheets) + 1
        sheet = _Sheet(sheet_id, title, rows, cols)
        book.sheets.append(sheet)
        return sheet

    def _book(self, spreadsheet_id: str) -> _Spreadsheet:
        book = self._spreadsheets.get(spreadsheet_id)
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        return book

    @staticmethod
    def _sheet(book: _Spreadsheet, title: str) -> _Sheet:
        sheet = book.sheet(title)
        if sheet is None:
            raise ApiError(400, f"Unable to parse range: {title}")
        return sheet

    def _resolve(self, book: _Spreadsheet, text: str) -> tuple[_Sheet, GridBox]:
        try:
            title, cells = split_range(text)
            if title is None:
                assert cells is not None
                if book.sheet(cells) is not None:  # a bare sheet name
                    title, cells = cells, None
                elif not book.sheets:
                    raise ValueError
                else:
                    title = book.sheets[0].title
            sheet = book.sheet(title)
            if sheet is None:
                raise ValueError
            box = parse_box(cells) if cells else GridBox()
        except ValueError:
            raise ApiError(400, f"Unable to parse range: {text}") from None
        return sheet, box

    @staticmethod
    def _grid_error(sheet: _Sheet, row: int, col: int) -> ApiError:
        return ApiError(
            400,
            f"Range ({quote_sheet(sheet.title)}!{column_letters(col)}{row + 1}) exceeds grid "
            f"limits. Max rows: {sheet.rows}, max columns: {sheet.cols}",
        )

    @staticmethod
    def _range_text(sheet: _Sheet, r0: int, c0: int, r1: int, c1: int) -> str:
        name = (
            sheet.title if re.fullmatch(r"[A-Za-z0-9_]+", sheet.title) else quote_sheet(sheet.title)
        )
        return f"{name}!{column_letters(c0)}{r0 + 1}:{column_letters(max(c1, c0 + 1) - 1)}{max(r1, r0 + 1)}"

    def _read(
        self, book: _Spreadsheet, text: str, params: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        sheet, box = self._resolve(book, text)
        if box.start_row >= sheet.rows or box.start_col >= sheet.cols:
            raise self._grid_error(sheet, box.start_row, box.start_col)
        r1 = min(box.end_row if box.end_row is not None else sheet.rows, sheet.rows)
        c1 = min(box.end_col if box.end_col is not None else sheet.cols, sheet.cols)
        render = _first(params, "valueRenderOption", "FORMATTED_VALUE")
        dt_render = _first(params, "dateTimeRenderOption", "SERIAL_NUMBER")
        major = _first(params, "majorDimension", "ROWS")
        rows: list[list[Any]] = []
        for r in range(box.start_row, r1):
            rows.append(
                [_render(sheet.get(r, c), render, dt_render) for c in range(box.start_col, c1)]
            )
        if major == "COLUMNS":
            rows = [list(col) for col in zip(*rows, strict=False)] if rows else []
        for line in rows:
            while line and line[-1] == "":
                line.pop()
        while rows and not rows[-1]:
            rows.pop()
        out: dict[str, Any] = {
            "range": self._range_text(sheet, box.start_row, box.start_col, r1, c1),
            "majorDimension": major,
        }
        if rows:
            out["values"] = rows
        return out

    def _plan_write(
        self,
        book: _Spreadsheet,
        text: str,
        values: Any,
        input_option: str | None,
        major: str = "ROWS",
    ) -> tuple[_Sheet, int, int, list[list[Any]]]:
        """Check a values.update (whole or nothing): the sheet, start and converted rows."""
        if input_option not in ("RAW", "USER_ENTERED"):
            raise ApiError(
                400,
                "Invalid value at 'value_input_option' (type.googleapis.com/"
                f"google.apps.sheets.v4.ValueInputOption), {input_option!r}",
            )
        rows = _rows(values, input_option)
        if major == "COLUMNS":
            width = max((len(r) for r in rows), default=0)
            rows = [[r[i] if i < len(r) else None for r in rows] for i in range(width)]
        sheet, box = self._resolve(book, text)
        height, width = len(rows), max((len(r) for r in rows), default=0)
        if box.end_row == box.start_row + 1 and box.end_col == box.start_col + 1:
            box = GridBox(box.start_row, box.start_col)  # a single cell is where writing starts
        if (box.end_row is not None and box.start_row + height > box.end_row) or (
            box.end_col is not None and box.start_col + width > box.end_col
        ):
            raise ApiError(
                400,
                f"Requested writing within range [{text}], but tried writing to row "
                f"[{box.start_row + height}]",
            )
        if (
            box.start_row + max(height, 1) > sheet.rows
            or box.start_col + max(width, 1) > sheet.cols
        ):
            raise self._grid_error(
                sheet, box.start_row + max(height, 1) - 1, box.start_col + max(width, 1) - 1
            )
        return sheet, box.start_row, box.start_col, rows

    @staticmethod
    def _apply_rows(sheet: _Sheet, r0: int, c0: int, rows: list[list[Any]]) -> dict[str, Any]:
        cells = 0
        for r, line in enumerate(rows):
            for c, value in enumerate(line):
                if value is _SKIP:
                    continue
                sheet.put(r0 + r, c0 + c, None if value == "" else value)
                cells += 1
        height, width = len(rows), max((len(r) for r in rows), default=0)
        return {
            "updatedRange": SheetsStandIn._range_text(sheet, r0, c0, r0 + height, c0 + width),
            "updatedRows": height,
            "updatedColumns": width,
            "updatedCells": cells,
        }

    # -- operations ------------------------------------------------------------------------------
    def handle(self, req: RecordedRequest, segments: dict[str, str]) -> Any:
        """Apply one API request to the model (under the lock) and return its JSON answer."""
        with self._lock:
            if req.operation == TOKEN_OPERATION:
                return self._token(req)
            if self.require_auth:
                token = (req.authorization or "").removeprefix("Bearer ").strip()
                if token not in self._tokens:
                    raise ApiError(
                        401,
                        "Request is missing required authentication credential. Expected OAuth 2 "
                        "access token.",
                    )
            book = self._book(segments["id"])
            op, params, body = req.operation, req.params, req.body
            if op == "spreadsheets.get":
                return self._metadata(book)
            if op == "spreadsheets.batchUpdate":
                return self._batch_update(book, body)
            if op == "values.get":
                return self._read(book, segments["range"], params)
            if op == "values.batchGet":
                return {
                    "spreadsheetId": book.spreadsheet_id,
                    "valueRanges": [self._read(book, r, params) for r in params.get("ranges", [])],
                }
            if op == "values.update":
                body = body or {}
                sheet, r0, c0, rows = self._plan_write(
                    book,
                    segments["range"],
                    body.get("values", []),
                    _first(params, "valueInputOption", None),
                    body.get("majorDimension", "ROWS"),
                )
                return {
                    "spreadsheetId": book.spreadsheet_id,
                    **self._apply_rows(sheet, r0, c0, rows),
                }
            if op == "values.append":
                return self._append(book, segments["range"], params, body or {})
            if op == "values.batchUpdate":
                body = body or {}
                option = body.get("valueInputOption")
                plans = [
                    self._plan_write(
                        book,
                        d.get("range", ""),
                        d.get("values", []),
                        option,
                        d.get("majorDimension", "ROWS"),
                    )
                    for d in body.get("data", [])
                ]
                responses = [
                    {"spreadsheetId": book.spreadsheet_id, **self._apply_rows(*plan)}
                    for plan in plans
                ]
                return {
                    "spreadsheetId": book.spreadsheet_id,
                    "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
                    "totalUpdatedColumns": max((r["updatedColumns"] for r in responses), default=0),
                    "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
                    "totalUpdatedSheets": len({p[0].title for p in plans}),
                    "responses": responses,
                }
            if op == "values.clear":
                return self._clear(book, [segments["range"]])
            if op == "values.batchClear":
                return self._clear(book, list((body or {}).get("ranges", [])))
        raise ApiError(404, f"Method not found: {req.method} {req.path}")

    def _metadata(self, book: _Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": book.spreadsheet_id,
            "properties": {
                "title": book.title,
                "locale": book.locale,
                "timeZone": book.time_zone,
                "autoRecalc": "ON_CHANGE",
            },
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(book.sheets)],
            "spreadsheetUrl": f"{self.base_url}/spreadsheets/d/{book.spreadsheet_id}",
        }

    def _append(
        self,
        book: _Spreadsheet,
        text: str,
        params: Mapping[str, list[str]],
        body: Mapping[str, Any],
    ) -> dict[str, Any]:
        option = _first(params, "valueInputOption", None)
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "'valueInputOption' is required but not specified")
        insert = _first(params, "insertDataOption", "OVERWRITE")
        rows = _rows(body.get("values", []), option)
        sheet, box = self._resolve(book, text)
        c0 = box.start_col
        # The table is searched in the range's columns; a single cell stands for the
        # table around it, i.e. every column from there on.
        single = box.end_col == c0 + 1 and box.end_row == box.start_row + 1
        c1 = box.end_col if box.end_col is not None and not single else sheet.cols
        table_first = box.start_row
        last = sheet.last_row_with_data(c0, c1)
        r0 = max(last + 1, table_first)
        width = max((len(r) for r in rows), default=0)
        if c0 + width > sheet.cols:
            raise self._grid_error(sheet, r0, c0 + width - 1)
        if insert == "INSERT_ROWS":
            # New rows are inserted at r0: everything below moves down.
            for _ in rows:
                if r0 < len(sheet.cells):
                    sheet.cells.insert(r0, [])
            sheet.rows += len(rows)
        else:
            sheet.rows = max(sheet.rows, r0 + len(rows))
        updates = self._apply_rows(sheet, r0, c0, rows)
        table_end = max(last + 1, table_first + 1)
        return {
            "spreadsheetId": book.spreadsheet_id,
            "tableRange": self._range_text(
                sheet, table_first, c0, table_end, max(c0 + width, c0 + 1)
            ),
            "updates": {"spreadsheetId": book.spreadsheet_id, **updates},
        }

    def _clear(self, book: _Spreadsheet, ranges: list[str]) -> dict[str, Any]:
        cleared = []
        for text in ranges:
            sheet, box = self._resolve(book, text)
            r1 = min(box.end_row if box.end_row is not None else sheet.rows, sheet.rows)
            c1 = min(box.end_col if box.end_col is not None else sheet.cols, sheet.cols)
            for r in range(box.start_row, min(r1, len(sheet.cells))):
                for c in range(box.start_col, min(c1, len(sheet.cells[r]))):
                    sheet.cells[r][c] = None
            cleared.append(self._range_text(sheet, box.start_row, box.start_col, r1, c1))
        return {"spreadsheetId": book.spreadsheet_id, "clearedRanges": cleared}

    def _batch_update(self, book: _Spreadsheet, body: Any) -> dict[str, Any]:
        requests = (body or {}).get("requests", [])
        # Validate every request first: a batchUpdate is applied whole or not at all.
        for i, request in enumerate(requests):
            (kind,) = request.keys() if len(request) == 1 else (None,)
            if kind not in ("addSheet", "deleteSheet", "appendDimension", "updateSheetProperties"):
                raise ApiError(
                    400, f"Invalid requests[{i}]: the stand-in does not support {kind!r}"
                )
            if kind == "addSheet":
                title = request["addSheet"].get("properties", {}).get("title", "")
                if book.sheet(title) is not None:
                    raise ApiError(
                        400,
                        f'Invalid requests[{i}].addSheet: A sheet with the name "{title}" already '
                        "exists. Please enter another name.",
                    )
            else:
                props = request[kind].get("properties", request[kind])
                sheet_id = props.get("sheetId")
                if not any(s.sheet_id == sheet_id for s in book.sheets):
                    raise ApiError(
                        400, f"Invalid requests[{i}].{kind}: No grid with id: {sheet_id}"
                    )
        replies: list[dict[str, Any]] = []
        for request in requests:
            kind = next(iter(request))
            spec = request[kind]
            if kind == "addSheet":
                props = spec.get("properties", {})
                grid = props.get("gridProperties", {})
                sheet = self._new_sheet(
                    book,
                    props["title"],
                    int(grid.get("rowCount", 1000)),
                    int(grid.get("columnCount", 26)),
                )
                replies.append({"addSheet": {"properties": sheet.properties(len(book.sheets) - 1)}})
                continue
            props = spec.get("properties", spec)
            sheet = next(s for s in book.sheets if s.sheet_id == props.get("sheetId"))
            if kind == "deleteSheet":
                book.sheets.remove(sheet)
            elif kind == "appendDimension":
                if spec.get("dimension") == "COLUMNS":
                    sheet.cols += int(spec.get("length", 0))
                else:
                    sheet.rows += int(spec.get("length", 0))
            else:  # updateSheetProperties
                grid = props.get("gridProperties", {})
                sheet.title = props.get("title", sheet.title)
                sheet.rows = int(grid.get("rowCount", sheet.rows))
                sheet.cols = int(grid.get("columnCount", sheet.cols))
            replies.append({})
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    def _token(self, req: RecordedRequest) -> dict[str, Any]:
        form = req.body if isinstance(req.body, dict) else {}
        assertion = form.get("assertion", "")
        try:
            payload = assertion.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            raise ApiError(
                400, "invalid_grant: the assertion is not a JWT", "invalid_grant"
            ) from None
        self.token_requests.append(claims)
        token = f"standin-token-{secrets.token_hex(8)}"
        self._tokens.add(token)
        return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


# -- value conversions -------------------------------------------------------------------------
class _Skip:
    """A JSON null in written values: leave the cell as it is."""

    def __repr__(self) -> str:
        return "SKIP"


_SKIP: Any = _Skip()


def _rows(values: Any, input_option: str) -> list[list[Any]]:
    if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
        raise ApiError(400, "Invalid values: expected a list of rows (lists)")
    out = []
    for line in values:
        row = []
        for value in line:
            if value is None:
                row.append(_SKIP)
            elif isinstance(value, (dict, list)):
                raise ApiError(400, f"Invalid value: {value!r} is not a scalar")
            elif input_option == "USER_ENTERED":
                row.append(_user_entered(value))
            else:
                row.append(value)
        out.append(row)
    return out


def _user_entered(value: Any) -> Any:
    """What a cell holds after a person typed ``value``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("'"):
        return value[value.index("'") + 1 :]
    if text.startswith("="):
        raise ApiError(400, f"the stand-in does not calculate formulas: {text!r}")
    if text.upper() in ("TRUE", "FALSE"):
        return text.upper() == "TRUE"
    if text.endswith("%") and _NUMBER.match(text[:-1].strip()):
        return _number(text[:-1].strip()) / 100
    if text and _NUMBER.match(text) and any(ch.isdigit() for ch in text):
        return _number(text)
    match = _DATE.match(text)
    if match:
        parts = {k: int(v) if v else 0 for k, v in match.groupdict().items() if k != "f"}
        micro = int((match["f"] or "0").ljust(6, "0"))
        try:
            when = datetime(
                parts["y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"], micro
            )
        except ValueError:
            return value
        return DateTimeValue.of(when)
    return value


def _number(text: str) -> int | float:
    plain = text.replace(",", "")
    number = float(plain)
    if number.is_integer() and "e" not in plain.lower() and abs(number) < 2**53:
        return int(number)
    return number


def _render(value: Any, render: str, dt_render: str) -> Any:
    if value is None:
        return ""
    if isinstance(value, DateTimeValue):
        if render == "FORMATTED_VALUE" or dt_render == "FORMATTED_STRING":
            return value.formatted()
        return value.serial
    if render == "FORMATTED_VALUE":
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else repr(value)
        return str(value)
    return value


def _first(params: Mapping[str, list[str]], name: str, default: Any) -> Any:
    values = params.get(name)
    return values[0] if values else default


def _match(match: str | Collection[str] | None) -> frozenset[str] | None:
    if match is None:
        return None
    names = frozenset([match] if isinstance(match, str) else match)
    unknown = names - API_OPERATIONS - {TOKEN_OPERATION}
    if unknown:
        raise ValueError(
            f"unknown operation(s) {sorted(unknown)}; known: {sorted(API_OPERATIONS | {TOKEN_OPERATION})}"
        )
    return names


# -- HTTP ----------------------------------------------------------------------------------------
_PREFIX = "/v4/spreadsheets/"


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """(operation, path segments) of a request; ("", {}) when unknown."""
    if path == "/token" and method == "POST":
        return TOKEN_OPERATION, {}
    if not path.startswith(_PREFIX):
        return "", {}
    rest = path[len(_PREFIX) :]
    if "/values" not in rest:
        if rest.endswith(":batchUpdate") and method == "POST":
            return "spreadsheets.batchUpdate", {"id": unquote(rest[: -len(":batchUpdate")])}
        if "/" not in rest and ":" not in rest and method == "GET":
            return "spreadsheets.get", {"id": unquote(rest)}
        return "", {}
    sid, _, tail = rest.partition("/values")
    segments = {"id": unquote(sid)}
    if tail.startswith(":"):
        name = tail[1:]
        table = {("GET", "batchGet"), ("POST", "batchUpdate"), ("POST", "batchClear")}
        if (method, name) in table:
            return f"values.{name}", segments
        return "", {}
    if not tail.startswith("/"):
        return "", {}
    encoded, colon, suffix = tail[1:].rpartition(":")
    if not colon:
        encoded, suffix = tail[1:], ""
    segments["range"] = unquote(encoded)
    if suffix == "" and method == "GET":
        return "values.get", segments
    if suffix == "" and method == "PUT":
        return "values.update", segments
    if suffix in ("append", "clear") and method == "POST":
        return f"values.{suffix}", segments
    return "", {}


def _make_handler(standin: SheetsStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SheetsStandIn/1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm
            # and the client's delayed ACK add ~40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with standin._lock:
                standin._connections.add(self.connection)

        def finish(self) -> None:
            with standin._lock:
                standin._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            operation, segments = _route(method, parts.path)
            body: Any = None
            if raw:
                if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode(errors="replace")
            req = RecordedRequest(
                method=method,
                path=parts.path,
                operation=operation or "unknown",
                spreadsheet_id=segments.get("id"),
                params=dict(parse_qs(parts.query, keep_blank_values=True)),
                body=body,
                received=time.monotonic(),
                authorization=self.headers.get("Authorization"),
            )
            with standin._lock:
                standin._requests.append(req)
            slow, fault = standin._take_faults(req.operation)
            if slow is not None:
                standin._wait(slow.seconds)
            if fault is not None and fault.kind == "error":
                req.fault = f"error {fault.status}"
                message = fault.message or _FAULT_MESSAGES.get(
                    fault.status, f"injected error {fault.status}"
                )
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                self._answer(req, fault.status, ApiError(fault.status, message).payload(), headers)
                return
            if fault is not None and fault.kind == "drop":
                req.fault = "drop"
                self.close_connection = True
                return
            if not operation:
                self._answer(req, 404, ApiError(404, f"Not found: {method} {parts.path}").payload())
                return
            try:
                result = standin.handle(req, segments)
            except ApiError as exc:
                self._answer(req, exc.code, exc.payload())
                return
            except Exception as exc:  # a bug of the stand-in: say so, as a 500
                self._answer(req, 500, ApiError(500, f"stand-in error: {exc!r}").payload())
                return
            req.applied = True
            if fault is not None and fault.kind == "timeout":
                req.fault = "succeed_then_timeout"
                standin._wait(fault.seconds)
                self.close_connection = True
                return
            self._answer(req, 200, result)

        def _answer(
            self,
            req: RecordedRequest,
            status: int,
            payload: Any,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            data = json.dumps(payload).encode()
            req.status = (
                status  # before answering: the client may look as soon as it has the answer
            )
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client went away
                req.status = 0
                self.close_connection = True

    return Handler


_FAULT_MESSAGES = {
    429: "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute per user' "
    "of service 'sheets.googleapis.com' (stand-in fault)",
    500: "Internal error encountered. (stand-in fault)",
    502: "Bad Gateway (stand-in fault)",
    503: "The service is currently unavailable. (stand-in fault)",
    504: "Deadline exceeded (stand-in fault)",
}
