"""The base of every data contract: validation types, JSON, and row conversions.

A contract is an immutable pydantic model. Quantities, prices and amounts are
:class:`~decimal.Decimal` with the precision of the database schema (seeds/002),
times are timezone-aware and normalised to UTC. Invalid input raises
:class:`~qts_data.errors.ContractError`, whose message names the contract, the
field and the problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, ClassVar, TypeVar, cast, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
)
from pydantic._internal._model_construction import ModelMetaclass

from qts_data.errors import ContractError

UTC = timezone.utc
C = TypeVar("C", bound="Contract")
_TRUSTED: dict[type[Any], Any] = {}  # contract class -> its trusted builder
#: pydantic's own model_construct (Contract's validates).
_RAW_CONSTRUCT: Any = BaseModel.model_construct.__func__  # type: ignore[attr-defined]


def _to_utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


#: A timezone-aware datetime, normalised to UTC. Naive datetimes are rejected.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def _plain_decimal(value: Decimal) -> str:
    return format(value, "f")


def _unsigned_zero(value: Decimal) -> Decimal:
    """``-0`` (``-0.00``) is zero: stored and shown without the sign."""
    return value.copy_abs() if value.is_zero() and value.is_signed() else value


#: Every contract decimal: ``-0`` becomes ``0`` (same scale).
NoNegativeZero = AfterValidator(_unsigned_zero)


#: Decimals appear in JSON as plain strings with every digit ("0.00000001", never "1E-8").
PlainJson = PlainSerializer(_plain_decimal, return_type=str, when_used="json")

#: DECIMAL(18, 8): a price, never negative.
Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=8, allow_inf_nan=False),
    NoNegativeZero,
    PlainJson,
]
#: DECIMAL(18, 8): a quantity, never negative.
Quantity = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=8, allow_inf_nan=False),
    NoNegativeZero,
    PlainJson,
]
#: DECIMAL(18, 8), strictly positive: the quantity of an execution.
FillQuantity = Annotated[
    Decimal,
    Field(gt=0, max_digits=18, decimal_places=8, allow_inf_nan=False),
    NoNegativeZero,
    PlainJson,
]
#: DECIMAL(18, 2): a money amount (may be negative, e.g. an unrealised loss).
Amount = Annotated[
    Decimal, Field(max_digits=18, decimal_places=2, allow_inf_nan=False), NoNegativeZero, PlainJson
]
#: DECIMAL(18, 2), never negative: a fee.
Fee = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=2, allow_inf_nan=False),
    NoNegativeZero,
    PlainJson,
]
#: DECIMAL(5, 4): a fraction such as an exposure percentage.
Fraction = Annotated[
    Decimal, Field(max_digits=5, decimal_places=4, allow_inf_nan=False), NoNegativeZero, PlainJson
]
#: DECIMAL(10, 3), never negative: a latency in milliseconds.
LatencyMs = Annotated[
    Decimal,
    Field(ge=0, max_digits=10, decimal_places=3, allow_inf_nan=False),
    NoNegativeZero,
    PlainJson,
]
#: DECIMAL(18, 8): a configuration value.
ConfigValue = Annotated[
    Decimal, Field(max_digits=18, decimal_places=8, allow_inf_nan=False), NoNegativeZero, PlainJson
]

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$"
#: A ticker symbol: 1 to 20 characters, letters, digits and ``. _ : / -``
#: ("005930", "KRW-BTC", "BTC/USDT", "BRK.B").
Symbol = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20, pattern=SYMBOL_PATTERN),
]


#: No control character (C0, DEL, C1): checked by pydantic-core's regex engine, in Rust.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: Free text: tabs and line breaks allowed, no other control character.
NO_CONTROL_IN_PROSE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_CONTROL_PATTERNS = {
    NO_CONTROL: re.compile(r"[\x00-\x1f\x7f-\x9f]"),
    NO_CONTROL_IN_PROSE: re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"),
}

#: Free text (a description, a setting's value).
Prose = Annotated[str, StringConstraints(pattern=NO_CONTROL_IN_PROSE)]

# VARCHAR(n) columns: Text<n> may be empty, Name<n> may not. No control characters (NUL
# would be stored by memory and SQLite and refused by PostgreSQL: a hybrid's sides differ).
Text10 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10, pattern=NO_CONTROL)]
Text20 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20, pattern=NO_CONTROL)]
Text50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50, pattern=NO_CONTROL)]
Name50 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=NO_CONTROL)
]
Name64 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_CONTROL)
]
Name100 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NO_CONTROL),
]


def _control_message(err: Mapping[str, Any]) -> str | None:
    """``contains the control character U+0000 at 3`` for a failed no-control pattern."""
    if err["type"] != "string_pattern_mismatch":
        return None
    found_in = _CONTROL_PATTERNS.get(str(err.get("ctx", {}).get("pattern")))
    value = err.get("input")
    if found_in is None or not isinstance(value, str):
        return None
    found = found_in.search(value)
    if found is None:
        return None
    return f"contains the control character U+{ord(found.group()):04X} at {found.start()}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def describe_validation_error(exc: ValidationError, title: str, where: str | None = None) -> str:
    """One readable sentence per problem: ``Position.qty: must be >= 0 (got -1)``."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        msg = _control_message(err) or err["msg"].removeprefix("Value error, ")
        if (
            "input" in err
            and err["type"] not in ("missing",)
            and not isinstance(err["input"], dict)
        ):
            shown = repr(err["input"])
            if len(shown) > 60:
                shown = shown[:57] + "..."
            msg = f"{msg} (got {shown})"
        problems.append(f"{title}.{loc}: {msg}" if loc else f"{title}: {msg}")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(problems)


class _ContractMeta(ModelMetaclass):
    """Turns a failed construction (``Position(qty=-1, ...)``) into a ContractError.

    Done in the metaclass rather than in ``__init__`` so that pydantic keeps its
    fast validation path (a model with its own ``__init__`` is validated through it).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            raise ContractError(describe_validation_error(exc, cls.__name__)) from None


class Contract(BaseModel, metaclass=_ContractMeta):
    """Base class of the data contracts: immutable, validated, JSON round-trip exact."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    #: Column order of the database row (seeds/002); subclasses set it.
    db_columns: ClassVar[tuple[str, ...]] = ()
    #: Field name -> default Sheets header; subclasses may override entries.
    sheets_headers: ClassVar[Mapping[str, str]] = {}

    # -- no unchecked instances ------------------------------------------
    def model_copy(self: C, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> C:
        """A copy; with ``update``, validated like a new instance (ContractError), so a
        changed copy is never an invalid contract that an adapter would store."""
        if not update:
            return super().model_copy(deep=deep)
        unknown = set(update) - set(type(self).model_fields)
        if unknown:
            raise ContractError(
                f"{type(self).__name__}: unknown field(s) {', '.join(sorted(unknown))}"
            )
        return type(self)(**{**self.__dict__, **update})

    # pydantic's mypy plugin declares model_construct on every model too.
    @classmethod  # type: ignore[no-redef, unused-ignore]
    def model_construct(  # type: ignore[override, unused-ignore]
        cls: type[C], _fields_set: set[str] | None = None, **values: Any
    ) -> C:
        """Validated, unlike pydantic's: a contract is never built unchecked by accident.
        (Values validated before - rows a schema enforces - go through :meth:`trusted`.)"""
        return cls(**values)

    # -- validation from foreign data ------------------------------------
    @classmethod
    def parse(cls: type[C], data: Mapping[str, Any], *, where: str | None = None) -> C:
        """Validate a mapping; errors name ``where`` (e.g. ``sheet 'ledger' row 7``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ContractError(describe_validation_error(exc, cls.__name__, where)) from None

    # -- JSON ------------------------------------------------------------
    def to_json(self) -> str:
        """The JSON form: Decimals as strings with every digit, times in ISO 8601 with microseconds."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls: type[C], data: str | bytes) -> C:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ContractError(describe_validation_error(exc, cls.__name__, "JSON")) from None

    # -- database rows ---------------------------------------------------
    def to_db_row(self) -> tuple[Any, ...]:
        """The values in :attr:`db_columns` order, ready for a parameterised INSERT or COPY."""
        return tuple(getattr(self, column) for column in self.db_columns)

    @classmethod
    def from_db_row(cls: type[C], row: Mapping[str, Any], *, trusted: bool = False) -> C:
        """Build from a database row (a mapping of column to value).

        ``trusted=True`` skips validation for rows read back from a schema that
        already enforces the contract (the hot read path of the SQL adapters).
        """
        values = {column: row[column] for column in cls.db_columns if column in row}
        if trusted:
            return cls.trusted(values)
        return cls.parse(values, where="database row")

    @classmethod
    def trusted(cls: type[C], values: dict[str, Any]) -> C:
        """Build from values that were validated before, without validating them again:
        rows read back from a schema that enforces the contract, entries of a cache the
        project wrote. The only way to an unchecked instance; ``values`` is taken over."""
        if len(values) == len(cls.model_fields):
            from qts_data.contracts.trusted import trusted_builder

            build = _TRUSTED.get(cls)
            if build is None:
                build = _TRUSTED[cls] = trusted_builder(cls)
            return cast(C, build(values))
        return cast(C, _RAW_CONSTRUCT(cls, **values))

    # -- Google Sheets rows ----------------------------------------------
    @classmethod
    def headers(cls, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Field name -> Sheets header, with ``overrides`` applied."""
        mapping = {name: cls.sheets_headers.get(name, name) for name in cls.sheet_fields()}
        if overrides:
            unknown = set(overrides) - set(mapping)
            if unknown:
                raise ContractError(
                    f"{cls.__name__}: unknown field(s) in header mapping: {', '.join(sorted(unknown))}"
                )
            mapping.update(overrides)
        return mapping

    @classmethod
    def sheet_fields(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    def to_sheets_row(self, headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Header -> cell text. Numbers keep every digit; times are ISO 8601 in UTC."""
        out: dict[str, str] = {}
        for name, header in self.headers(headers).items():
            out[header] = format_cell(getattr(self, name))
        return out

    @classmethod
    def from_sheets_row(
        cls: type[C],
        row: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        tz: tzinfo = UTC,
        where: str | None = None,
    ) -> C:
        """Build from a Sheets row (header -> cell). Empty cells are missing values.

        Numbers in text follow :data:`NUMBER_CONVENTION` (anything else is an error
        naming the column); times without an offset are read in ``tz`` (the sheet's
        timezone). Errors name ``where``.
        """
        values: dict[str, Any] = {}
        for name, header in cls.headers(headers).items():
            if header not in row:
                continue
            cell = row[header]
            if cell is None or (isinstance(cell, str) and cell.strip() == ""):
                continue
            info = cls.model_fields[name]
            try:
                values[name] = parse_cell(cell, info.annotation, tz, _places_of(cls)[name])
            except ValueError as exc:
                prefix = f"{where}: " if where else ""
                raise ContractError(f"{prefix}column {header!r}: {exc}") from None
        return cls.parse(values, where=where)


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return str(value.value)  # enums
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


#: A number as a person writes it: ``,`` only between groups of three digits, ``.`` as the
#: decimal point, an optional sign and exponent ("1,234,500", "-0.5", "71000.25", "1E-8").
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?")
NUMBER_CONVENTION = "',' only between groups of three digits, '.' as the decimal point"


def parse_number_text(text: str) -> Decimal:
    """``text`` as a Decimal by :data:`NUMBER_CONVENTION`; ValueError for anything else
    ("71.000,5", "1,0", "1,2,3", "1_000" are not numbers: guessing would change them)."""
    stripped = text.strip()
    if not _NUMBER_TEXT.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a number ({NUMBER_CONVENTION})")
    return Decimal(stripped.replace(",", ""))


_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
)


def _annotation_has(annotation: Any, kind: type) -> bool:
    if annotation is kind or (kind is datetime and annotation is AwareDatetime):
        return True
    return any(_annotation_has(arg, kind) for arg in getattr(annotation, "__args__", ()) or ())


def decimal_places(info: Any) -> int | None:
    """The decimal places a field (a pydantic FieldInfo) declares, or None."""
    stack: list[Any] = [info]
    while stack:
        item = stack.pop()
        places = getattr(item, "decimal_places", None)
        if isinstance(places, int):
            return places
        stack.extend(getattr(item, "metadata", None) or ())
        stack.extend(getattr(item, "__metadata__", None) or ())
        annotation = getattr(item, "annotation", None)
        if annotation is not None:
            stack.extend(get_args(annotation))
    return None


_PLACES: dict[type[Any], dict[str, int | None]] = {}  # contract class -> field -> places


def _places_of(cls: type[Contract]) -> dict[str, int | None]:
    """:func:`decimal_places` of every field of ``cls``, worked out once per class."""
    places = _PLACES.get(cls)
    if places is None:
        places = _PLACES[cls] = {
            name: decimal_places(info) for name, info in cls.model_fields.items()
        }
    return places


#: A float within this many units in the last place of a decimal of the field's scale is
#: that decimal: 8.84% typed into a cell is the double 0.0884, a formula's 0.0884 may be
#: 0.08839999999999999; a float farther away has digits the field cannot hold.
FLOAT_ULPS = 4


def float_to_decimal(cell: float, places: int | None) -> Decimal:
    """``cell`` as the Decimal a person meant: rounded half-even to ``places`` when it is
    within :data:`FLOAT_ULPS` of that; otherwise every digit (validation names the field)."""
    exact = Decimal(repr(cell))
    exponent = exact.as_tuple().exponent
    if places is None or not isinstance(exponent, int) or exponent >= -places:
        return exact
    rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if abs(float(rounded) - cell) <= FLOAT_ULPS * math.ulp(cell):
        return rounded
    return exact


def parse_cell(cell: Any, annotation: Any, tz: tzinfo, places: int | None = None) -> Any:
    """Turn a Sheets cell into the value a field expects; leave anything odd to validation.

    ``places``: the decimal places of the field (floats are rounded to them, see
    :func:`float_to_decimal`)."""
    if _annotation_has(annotation, datetime):
        return parse_sheet_datetime(cell, tz)
    if _annotation_has(annotation, Decimal) or _annotation_has(annotation, int):
        if isinstance(cell, float):
            return float_to_decimal(cell, places)
        if isinstance(cell, str):
            return parse_number_text(cell)  # ValueError: from_sheets_row names the column
        return cell
    if _annotation_has(annotation, bool) and isinstance(cell, str):
        lowered = cell.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
    return cell


def parse_sheet_datetime(cell: Any, tz: tzinfo) -> Any:
    if isinstance(cell, datetime):
        return cell if cell.tzinfo else cell.replace(tzinfo=tz)
    if isinstance(cell, date):
        return datetime(cell.year, cell.month, cell.day, tzinfo=tz)
    if not isinstance(cell, str):
        return cell
    text = cell.strip()
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for fmt in _DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            return cell  # validation reports it with the field name
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def rows_to_json(contracts: Sequence[Contract]) -> str:
    """A JSON array of contracts (for ``--json`` outputs)."""
    return "[" + ",".join(c.to_json() for c in contracts) + "]"
