"""Strategy parameters and risk configuration (seeds/002, sections 3.1.3 and 3.1.4)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from qts_data.contracts._base import (
    ConfigValue,
    Contract,
    Name50,
    Name100,
    Prose,
    UtcDatetime,
    utc_now,
)

ValueType = Literal["string", "int", "float", "decimal", "bool", "json"]


class StrategyParam(Contract):
    """One parameter of a strategy (table ``strategies``), stored as text with its type.

    The seed declares ``strategy_id`` alone as the primary key, which allows one
    parameter per strategy; the key here is ``(strategy_id, param_name)``.
    """

    db_columns: ClassVar[tuple[str, ...]] = (
        "strategy_id",
        "param_name",
        "value",
        "value_type",
        "description",
        "updated_at",
    )

    strategy_id: Name50
    param_name: Name100
    value: Prose
    value_type: ValueType = "string"
    description: Prose | None = None
    updated_at: UtcDatetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _value_matches_type(self) -> StrategyParam:
        self.typed_value  # noqa: B018 - raises ValueError when the text does not parse
        return self

    @property
    def typed_value(self) -> Any:
        """The value converted to its ``value_type``."""
        text, kind = self.value, self.value_type
        try:
            if kind == "int":
                return int(text)
            if kind == "float":
                return float(text)
            if kind == "decimal":
                number = Decimal(text)
                if not number.is_finite():
                    raise ValueError
                return number
            if kind == "bool":
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return lowered in ("true", "1", "yes")
            if kind == "json":
                return json.loads(text)
        except (ValueError, InvalidOperation):
            raise ValueError(f"value {text!r} is not a valid {kind}") from None
        return text


class RiskConfig(Contract):
    """One risk limit or setting (table ``risk_configs``)."""

    db_columns: ClassVar[tuple[str, ...]] = ("config_key", "value", "description", "updated_at")

    config_key: Name100
    value: ConfigValue
    description: Prose | None = None
    updated_at: UtcDatetime = Field(default_factory=utc_now)
