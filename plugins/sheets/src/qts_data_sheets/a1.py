"""A1 notation: column letters, quoted sheet names and ranges (``'T_Ledger'!A2:K``).

Shared by the adapter (which builds the ranges it sends) and the local stand-in
(which parses them). Standard library only, so importing it is free.
Rows and columns are 0-based here; an end is exclusive, and ``None`` means "to the
edge of the grid".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "GridBox",
    "column_index",
    "column_letters",
    "format_range",
    "parse_box",
    "quote_sheet",
    "split_range",
]


def column_letters(index: int) -> str:
    """0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``."""
    if index < 0:
        raise ValueError(f"column index must be >= 0, got {index}")
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """``A`` -> 0, ``AA`` -> 26 (case-insensitive)."""
    if not letters or not letters.isalpha() or not letters.isascii():
        raise ValueError(f"not a column: {letters!r}")
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1


def quote_sheet(title: str) -> str:
    """The sheet name as A1 notation wants it: always quoted, quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


@dataclass(frozen=True)
class GridBox:
    """A rectangle of a sheet: 0-based start, exclusive end, ``None`` for the grid's edge."""

    start_row: int = 0
    start_col: int = 0
    end_row: int | None = None
    end_col: int | None = None


def format_range(
    title: str,
    start_row: int,
    start_col: int = 0,
    end_row: int | None = None,
    end_col: int | None = None,
) -> str:
    """A range of sheet ``title`` (0-based start, exclusive end) in A1 notation.

    ``format_range("Position", 1, 0, 2, 8)`` -> ``'Position'!A2:H2``;
    ``end_col=None`` means whole rows (``'L'!1:1``, ``end_row`` required);
    ``end_row=None`` runs to the last row (``'L'!A2:K``). The whole sheet is
    :func:`quote_sheet` alone.
    """
    sheet = quote_sheet(title)
    if end_col is None:
        if end_row is None or start_col != 0:
            raise ValueError("whole rows need an end row and start at column A")
        return f"{sheet}!{start_row + 1}:{end_row}"
    first = f"{column_letters(start_col)}{start_row + 1}"
    if end_row == start_row + 1 and end_col == start_col + 1:
        return f"{sheet}!{first}"
    last = column_letters(end_col - 1) + ("" if end_row is None else str(end_row))
    return f"{sheet}!{first}:{last}"


_CELL = re.compile(r"^(?P<col>[A-Za-z]{0,3})(?P<row>[0-9]{0,7})$")


def split_range(text: str) -> tuple[str | None, str | None]:
    """``'It''s'!A1:B2`` -> (``It's``, ``A1:B2``); ``Sheet1!A1`` -> (``Sheet1``, ``A1``).

    Text without ``!`` is ambiguous (a sheet name, or cells of the first sheet):
    it is returned as ``(None, text)`` and the caller decides. Raises ValueError
    for an unterminated quote.
    """
    text = text.strip()
    if text.startswith("'"):
        i, title = 1, []
        while True:
            j = text.find("'", i)
            if j < 0:
                raise ValueError(f"unterminated quote in range {text!r}")
            title.append(text[i:j])
            if text[j + 1 : j + 2] == "'":  # a doubled quote is a quote
                title.append("'")
                i = j + 2
                continue
            rest = text[j + 1 :]
            break
        name = "".join(title)
        if not rest:
            return name, None
        if not rest.startswith("!"):
            raise ValueError(f"expected '!' after the sheet name in range {text!r}")
        return name, rest[1:] or None
    if "!" in text:
        name, cells = text.rsplit("!", 1)
        return name, cells or None
    return None, text


def parse_box(cells: str) -> GridBox:
    """``A1`` / ``A1:C5`` / ``A:C`` / ``A2:C`` / ``1:1`` / ``2:5`` as a :class:`GridBox`."""
    parts = cells.strip().split(":")
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"not an A1 range: {cells!r}")
    refs = []
    for part in parts:
        match = _CELL.match(part)
        if match is None or not (match["col"] or match["row"]):
            raise ValueError(f"not an A1 range: {cells!r}")
        col = column_index(match["col"]) if match["col"] else None
        row = int(match["row"]) - 1 if match["row"] else None
        if row is not None and row < 0:
            raise ValueError(f"rows start at 1: {cells!r}")
        refs.append((row, col))
    (r0, c0) = refs[0]
    if len(refs) == 1:
        if r0 is None:  # "A" alone: the whole column
            assert c0 is not None
            return GridBox(0, c0, None, c0 + 1)
        if c0 is None:  # "3" alone: the whole row
            return GridBox(r0, 0, r0 + 1, None)
        return GridBox(r0, c0, r0 + 1, c0 + 1)
    (r1, c1) = refs[1]
    start_row = r0 if r0 is not None else 0
    start_col = c0 if c0 is not None else 0
    end_row = r1 + 1 if r1 is not None else None
    end_col = c1 + 1 if c1 is not None else None
    if (r0 is None) != (r1 is None) and r0 is None:
        raise ValueError(f"not an A1 range: {cells!r}")
    if (end_row is not None and end_row <= start_row) or (
        end_col is not None and end_col <= start_col
    ):
        raise ValueError(f"the end of {cells!r} comes before its start")
    return GridBox(start_row, start_col, end_row, end_col)
