"""Headers and rows: where each field sits in a worksheet, and turning rows into contracts.

A worksheet's first row holds the headers. :class:`SheetLayout` maps each
contract field to its column through the configured header names, and refuses
a sheet whose header row lacks a header a required field needs (the error names
the sheet and the header, and suggests a close match). Rows below are parsed
one by one: a bad row becomes a message naming the sheet and its row number,
and the good rows are still returned.

Reads use ``valueRenderOption=UNFORMATTED_VALUE`` with
``dateTimeRenderOption=SERIAL_NUMBER``, so a cell keeps its type: the texts
this adapter writes (``RAW``) come back exactly; a number typed by a person
comes back as a JSON number (turned into text for a text field, so a symbol
typed as ``5930`` reads ``"5930"``); a date typed by a person comes back as a
serial number of days, read in the sheet's time zone.
"""

from __future__ import annotations

import difflib
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AwareDatetime

from qts_data.contracts import Contract
from qts_data.errors import ContractError
from qts_data_sheets.a1 import column_letters

__all__ = [
    "HeaderError",
    "ParsedRows",
    "SheetLayout",
    "SymbolRule",
    "cell_text",
    "field_kinds",
    "parse_rows",
    "serial_to_datetime",
]

C = TypeVar("C", bound=Contract)

_SERIAL_EPOCH = datetime(1899, 12, 30)


class HeaderError(ContractError):
    """A worksheet's header row does not fit the configured headers (names the sheet and header)."""


def cell_text(cell: Any) -> str:
    """A cell as text: ``""`` for empty, integral numbers without ``.0``, booleans as TRUE/FALSE."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() and abs(cell) < 2**53 else repr(cell)
    return str(cell).strip()


def serial_to_datetime(serial: float, tz: tzinfo) -> datetime:
    """A spreadsheet date serial (days since 1899-12-30, wall-clock time in ``tz``), to the millisecond."""
    when = _SERIAL_EPOCH + timedelta(milliseconds=round(serial * 86_400_000))
    return when.replace(tzinfo=tz)


@cache
def field_kinds(contract: type[Contract]) -> dict[str, str]:
    """Field -> ``"datetime"``, ``"text"`` or ``"other"`` (how a typed cell must be prepared)."""
    kinds: dict[str, str] = {}
    for name, info in contract.model_fields.items():
        found = _base_types(info.annotation)
        if any(
            t is AwareDatetime or (isinstance(t, type) and issubclass(t, datetime)) for t in found
        ):
            kinds[name] = "datetime"
        elif str in found and not found & {Decimal, int, float, bool}:
            kinds[name] = "text"
        else:
            kinds[name] = "other"
    return kinds


def _base_types(annotation: Any) -> set[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _base_types(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        out: set[Any] = set()
        for arg in get_args(annotation):
            out |= _base_types(arg)
        return out
    if origin is Literal:
        return {type(arg) for arg in get_args(annotation)}
    return {annotation}


def _prepare(cell: Any, kind: str, tz: tzinfo) -> Any:
    if cell is None:
        return cell
    if isinstance(cell, bool):  # a checkbox, or TRUE typed by a person
        return cell_text(cell) if kind == "text" else cell
    if isinstance(cell, (int, float)):
        if kind == "datetime":
            return serial_to_datetime(float(cell), tz)
        if kind == "text":
            return cell_text(cell)
    return cell


@dataclass(frozen=True)
class SymbolRule:
    """How a symbol cell reads. A person typing a Korean stock code (``005930``) into a
    cell gets the number 5930; ``"krx"`` pads such codes back to ``digits`` digits."""

    format: Literal["text", "krx"] = "text"
    digits: int = 6

    def read(self, cell: Any) -> tuple[Any, bool]:
        """The symbol a cell holds, and whether the cell was a number."""
        if isinstance(cell, bool) or not isinstance(cell, (int, float)):
            text = cell.strip() if isinstance(cell, str) else cell
            return (self._pad(text) if isinstance(text, str) else text), False
        return self._pad(cell_text(cell)), True

    def _pad(self, text: str) -> str:
        if self.format == "krx" and text.isdigit() and len(text) < self.digits:
            return text.zfill(self.digits)
        return text

    def warning(self, where: str, cell: Any, read: str) -> str:
        hint = "" if self.format == "krx" else ' (if it is a KRX code, set symbol_format = "krx")'
        return (
            f"{where}: the number {cell_text(cell)} is in a symbol column; read as {read!r}{hint}. "
            "Type codes as text (a leading ') to keep their zeros"
        )


@dataclass
class SheetLayout:
    """The columns of a worksheet, from its header row, for one contract."""

    sheet: str
    contract: type[Contract]
    mapping: dict[str, str]  # field -> header
    header_row: list[str]  # the header texts as in the sheet (stripped)
    columns: dict[str, int]  # field -> 0-based column, for the fields whose header is present
    read_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_header(
        cls,
        sheet: str,
        header_cells: Sequence[Any],
        contract: type[Contract],
        mapping: Mapping[str, str],
    ) -> SheetLayout:
        """Check the header row against ``mapping``; raises :class:`HeaderError`.

        Every header of a required field must be there (once). Headers of
        optional fields may be missing: reads leave those fields unset, and
        writes refuse a value that has no column (see :meth:`cells_for`).
        """
        headers = [cell_text(cell) for cell in header_cells]
        while headers and not headers[-1]:
            headers.pop()
        if not headers:
            expected = ", ".join(mapping[name] for name in _required(contract))
            raise HeaderError(
                f"sheet {sheet!r} has no header row (row 1 is empty); expected headers: {expected}"
            )
        columns: dict[str, int] = {}
        for name, header in mapping.items():
            found = [i for i, text in enumerate(headers) if text == header]
            if len(found) > 1:
                where = " and ".join(column_letters(i) for i in found)
                raise HeaderError(
                    f"sheet {sheet!r}: header {header!r} appears more than once (columns {where})"
                )
            if found:
                columns[name] = found[0]
        missing = [name for name in _required(contract) if name not in columns]
        if missing:
            name = missing[0]
            header = mapping[name]
            others = [h for h in headers if h and h not in mapping.values()]
            close = difflib.get_close_matches(header, others, n=1, cutoff=0.6)
            hint = f" (renamed to {close[0]!r}?)" if close else ""
            also = (
                f"; also missing: {', '.join(repr(mapping[m]) for m in missing[1:])}"
                if len(missing) > 1
                else ""
            )
            raise HeaderError(
                f"sheet {sheet!r}: missing header {header!r} for {contract.__name__}.{name}{hint}"
                f"{also}; the header row has: {', '.join(repr(h) for h in headers if h)}"
            )
        return cls(sheet, contract, dict(mapping), headers, columns)

    @property
    def width(self) -> int:
        return len(self.header_row)

    def age(self) -> float:
        return time.monotonic() - self.read_at

    def same_header(self, header_cells: Sequence[Any]) -> bool:
        headers = [cell_text(c) for c in header_cells]
        while headers and not headers[-1]:
            headers.pop()
        return headers == self.header_row

    def cells_for(self, texts: Mapping[str, str]) -> list[str]:
        """A full row (header -> text, as ``Contract.to_sheets_row`` gives) in column order.

        Raises :class:`HeaderError` naming the sheet and the header when a
        non-empty value has no column: a write never drops a value.
        """
        row = [""] * self.width
        for name, header in self.mapping.items():
            text = texts.get(header, "")
            column = self.columns.get(name)
            if column is None:
                if text != "":
                    raise HeaderError(
                        f"sheet {self.sheet!r}: no header {header!r} to write "
                        f"{self.contract.__name__}.{name} = {text!r} into; add the column "
                        f"(the header row has: {', '.join(repr(h) for h in self.header_row if h)})"
                    )
                continue
            row[column] = text
        return row

    def runs(self) -> list[tuple[int, int]]:
        """The mapped columns as contiguous ``[start, end)`` runs (what an in-place update writes)."""
        cols = sorted(self.columns.values())
        runs: list[tuple[int, int]] = []
        for col in cols:
            if runs and runs[-1][1] == col:
                runs[-1] = (runs[-1][0], col + 1)
            else:
                runs.append((col, col + 1))
        return runs

    def text_at(self, row: Sequence[Any], name: str, symbols: SymbolRule | None = None) -> str:
        """The text of field ``name`` in a row, ``""`` when empty or without a column
        (a ``symbol`` read by ``symbols`` when given)."""
        column = self.columns.get(name)
        if column is None or column >= len(row):
            return ""
        if symbols is not None and name == "symbol":
            return cell_text(symbols.read(row[column])[0])
        return cell_text(row[column])


def _required(contract: type[Contract]) -> list[str]:
    return [name for name, info in contract.model_fields.items() if info.is_required()]


@dataclass
class ParsedRows(Generic[C]):
    """The outcome of reading a worksheet: good rows (with their row numbers) and bad-row messages."""

    layout: SheetLayout
    rows: list[tuple[int, C]]
    errors: list[str]
    values: list[list[Any]]  # what the API returned, header row included
    last_row: int  # 1-based number of the last row holding anything (1: the header alone)
    warnings: list[str] = field(default_factory=list)  # rows read, with a doubt (a cell named)

    def contracts(self) -> list[C]:
        return [row for _, row in self.rows]


def parse_rows(
    sheet: str,
    values: list[list[Any]],
    contract: type[C],
    mapping: Mapping[str, str],
    tz: tzinfo,
    *,
    key: Callable[[C], str | None] | None = None,
    key_name: str = "key",
    symbols: SymbolRule | None = None,
) -> ParsedRows[C]:
    """Parse the rows below the header; a bad row is reported (sheet and row number), not raised.

    ``key`` gives the key of a row (e.g. its symbol; None for a row without
    one): a later row with the key of an earlier good row is reported as a
    duplicate and left out.
    """
    layout = SheetLayout.from_header(sheet, values[0] if values else [], contract, mapping)
    kinds = field_kinds(contract)
    seen: dict[str, int] = {}
    good: list[tuple[int, C]] = []
    errors: list[str] = []
    warnings: list[str] = []
    rule = symbols or SymbolRule()
    symbol_column = layout.columns.get("symbol")
    for index, row in enumerate(values[1:], start=2):
        if not any(cell_text(cell) for cell in row):
            continue
        where = f"sheet {sheet!r} row {index}"
        cells = {
            layout.mapping[name]: _prepare(row[col] if col < len(row) else None, kinds[name], tz)
            for name, col in layout.columns.items()
        }
        if symbol_column is not None and symbol_column < len(row):
            symbol, was_number = rule.read(row[symbol_column])
            cells[layout.mapping["symbol"]] = symbol
            if was_number:
                cell = f"{column_letters(symbol_column)}{index}"
                warnings.append(
                    rule.warning(
                        f"sheet {sheet!r} cell {cell} ({layout.mapping['symbol']})",
                        row[symbol_column],
                        symbol,
                    )
                )
        try:
            item = contract.from_sheets_row(cells, headers=layout.mapping, tz=tz, where=where)
        except ContractError as exc:
            errors.append(str(exc))
            continue
        item_key = key(item) if key is not None else None
        if item_key is not None:
            first = seen.get(item_key)
            if first is not None:
                errors.append(
                    f"{where}: duplicate {key_name} {item_key!r} (first at row {first}); "
                    "this row is ignored"
                )
                continue
            seen[item_key] = index
        good.append((index, item))
    return ParsedRows(layout, good, errors, values, max(len(values), 1), warnings)
