"""The stand-in itself: A1 notation, Google's answers and errors, faults, and gspread's own
high-level API working against it (so later tests can rely on it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import gspread
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from gspread.utils import ValueInputOption

from qts_data_sheets.a1 import (
    GridBox,
    column_index,
    column_letters,
    format_range,
    parse_box,
    split_range,
)
from qts_data_sheets.client import SheetsHTTPClient
from qts_data_sheets.testing import DateTimeValue, SheetsStandIn


@pytest.fixture
def gc(sheets_standin: SheetsStandIn) -> Iterator[gspread.Client]:
    client = gspread.Client(AnonymousCredentials(), http_client=SheetsHTTPClient)  # type: ignore[no-untyped-call]
    assert isinstance(client.http_client, SheetsHTTPClient)
    client.http_client.api_base_url = sheets_standin.base_url
    client.set_timeout(5)
    yield client
    client.http_client.session.close()


def test_a1_notation() -> None:
    assert [column_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert column_index("ab") == 27
    assert split_range("'It''s'!A1:B2") == ("It's", "A1:B2")
    assert split_range("Sheet1!C3") == ("Sheet1", "C3")
    assert split_range("Position") == (None, "Position")
    assert parse_box("A2:K") == GridBox(1, 0, None, 11)
    assert parse_box("3:5") == GridBox(2, 0, 5, None)
    assert parse_box("B") == GridBox(0, 1, None, 2)
    assert format_range("T_Ledger", 1, 0, 2, 11) == "'T_Ledger'!A2:K2"
    assert format_range("T_Ledger", 0, end_row=1) == "'T_Ledger'!1:1"
    assert format_range("L", 1, 0, None, 3) == "'L'!A2:C"
    for bad in ("A0", "1A", "B2:A1", "A:C2", ""):
        with pytest.raises(ValueError):
            parse_box(bad)


def test_gspread_high_level_api_works_against_the_stand_in(
    sheets_standin: SheetsStandIn, gc: gspread.Client
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [["symbol", "qty"], ["AAPL", 1]]})
    book = gc.open_by_key(sid)
    assert book.title == "qts"
    assert book.timezone == "Asia/Seoul"
    ws = book.worksheet("Position")
    assert ws.get_all_records() == [{"symbol": "AAPL", "qty": 1}]
    ws.append_row(["MSFT", "007"], value_input_option=ValueInputOption.raw)
    ws.append_row(["TSLA", "007"], value_input_option=ValueInputOption.user_entered)
    assert ws.get_all_values() == [["symbol", "qty"], ["AAPL", "1"], ["MSFT", "007"], ["TSLA", "7"]]
    ws.update([["GOOG", 2]], "A5", value_input_option=ValueInputOption.raw)
    assert ws.acell("A5").value == "GOOG"
    ws.batch_clear(["A5:B5"])
    assert ws.row_count >= 4
    added = book.add_worksheet("Extra", rows=10, cols=3)
    assert [w.title for w in book.worksheets()] == ["Position", "Extra"]
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits"):
        added.update([["x"]], "A11", value_input_option=ValueInputOption.raw)
    with pytest.raises(gspread.exceptions.WorksheetNotFound):
        book.worksheet("Nope")
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        gc.open_by_key("no-such-spreadsheet")


def test_reads_follow_google_s_shapes(sheets_standin: SheetsStandIn, gc: gspread.Client) -> None:
    when = DateTimeValue.of(datetime(2024, 1, 2, 9, 30))
    sid = sheets_standin.create_spreadsheet({"S": [["a", "b", "c"], [1.5, True, None], [], [when]]})
    http = gc.http_client
    formatted = http.values_get(sid, "'S'")
    assert formatted["range"] == "S!A1:Z1000"
    assert formatted["values"] == [["a", "b", "c"], ["1.5", "TRUE"], [], ["2024-01-02 09:30:00"]]
    raw = http.values_get(sid, "S!A2:C4", params={"valueRenderOption": "UNFORMATTED_VALUE"})
    assert raw["values"] == [[1.5, True], [], [when.serial]]
    assert when.serial == pytest.approx(45293 + 9.5 / 24)
    columns = http.values_get(sid, "S!A1:B2", params={"majorDimension": "COLUMNS"})
    assert columns["values"] == [["a", "1.5"], ["b", "TRUE"]]
    empty = http.values_get(sid, "S!D1:E5")
    assert "values" not in empty
    batch = http.values_batch_get(sid, ["S!A1", "S!B2"])
    assert [r["values"] for r in batch["valueRanges"]] == [[["a"]], [["TRUE"]]]


def test_writes_need_a_value_input_option_and_user_entered_parses(
    sheets_standin: SheetsStandIn, gc: gspread.Client
) -> None:
    sid = sheets_standin.create_spreadsheet({"S": []})
    http = gc.http_client
    with pytest.raises(gspread.exceptions.APIError, match="value_input_option"):
        http.values_update(sid, "S!A1", body={"values": [["x"]]})
    http.values_update(
        sid,
        "S!A1",
        params={"valueInputOption": "USER_ENTERED"},
        body={"values": [["001234", "1,234.5", "TRUE", "12%", "'007", "2024-01-02"]]},
    )
    row = sheets_standin.cells(sid, "S")[0]
    assert row[:5] == [1234, 1234.5, True, 0.12, "007"]
    assert row[5] == DateTimeValue(45293.0)
    with pytest.raises(gspread.exceptions.APIError, match="does not calculate formulas"):
        http.values_update(
            sid, "S!A2", params={"valueInputOption": "USER_ENTERED"}, body={"values": [["=1+1"]]}
        )
    answer = http.values_append(
        sid,
        "'S'",
        {"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        {"values": [["=1+1"]]},
    )
    assert answer["updates"]["updatedRange"] == "S!A2:A2"
    assert sheets_standin.cells(sid, "S")[1] == ["=1+1"]


def test_a_batch_update_is_applied_whole_or_not_at_all(
    sheets_standin: SheetsStandIn, gc: gspread.Client
) -> None:
    sid = sheets_standin.create_spreadsheet({"S": [["keep"]]}, rows=5)
    body: dict[str, Any] = {
        "valueInputOption": "RAW",
        "data": [{"range": "S!A1", "values": [["changed"]]}, {"range": "S!A9", "values": [["x"]]}],
    }
    with pytest.raises(gspread.exceptions.APIError, match=r"Range \('S'!A9\) exceeds grid limits"):
        gc.http_client.values_batch_update(sid, body)
    assert sheets_standin.cells(sid, "S") == [["keep"]]


def test_faults_are_consumed_in_order_and_only_by_matching_operations(
    sheets_standin: SheetsStandIn,
) -> None:
    sid = sheets_standin.create_spreadsheet({"S": [["a"]]})
    base = f"{sheets_standin.base_url}/v4/spreadsheets/{sid}"
    sheets_standin.fail_next(2, 503, match="values.get")
    sheets_standin.fail_next(1, 429, retry_after=7)
    with requests.Session() as session:
        assert session.get(base).status_code == 429  # metadata: only the second fault matches
        statuses = [session.get(f"{base}/values/S").status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        answer = session.get(f"{base}/values/S")
        assert answer.json()["values"] == [["a"]]
    first = sheets_standin.requests[0]
    assert (first.operation, first.status, first.fault) == ("spreadsheets.get", 429, "error 429")
    with pytest.raises(ValueError, match="unknown operation"):
        sheets_standin.fail_next(1, match="values.frobnicate")


def test_succeed_then_timeout_applies_and_never_answers(sheets_standin: SheetsStandIn) -> None:
    sid = sheets_standin.create_spreadsheet({"S": [["h"]]})
    url = f"{sheets_standin.base_url}/v4/spreadsheets/{sid}/values/S:append"
    sheets_standin.succeed_then_timeout(1, match="values.append", hold_s=1.0)
    with requests.Session() as session, pytest.raises(requests.exceptions.ReadTimeout):
        session.post(url, params={"valueInputOption": "RAW"}, json={"values": [["x"]]}, timeout=0.2)
    assert sheets_standin.cells(sid, "S") == [["h"], ["x"]]
    [append] = sheets_standin.requests_for("values.append")
    assert append.applied and append.status == 0 and append.fault == "succeed_then_timeout"


def test_drop_next_closes_without_applying(sheets_standin: SheetsStandIn) -> None:
    sid = sheets_standin.create_spreadsheet({"S": [["h"]]})
    url = f"{sheets_standin.base_url}/v4/spreadsheets/{sid}/values/S:append"
    sheets_standin.drop_next(1)
    with requests.Session() as session, pytest.raises(requests.exceptions.ConnectionError):
        session.post(url, params={"valueInputOption": "RAW"}, json={"values": [["x"]]}, timeout=2)
    assert sheets_standin.cells(sid, "S") == [["h"]]
