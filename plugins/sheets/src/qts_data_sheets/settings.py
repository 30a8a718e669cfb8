"""Settings of the ``sheets`` adapter (``[adapters.NAME] type = "sheets"``).

Importable without gspread: the plugin registers this model at discovery, and
gspread is imported only when a stack builds the adapter.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, field_validator, model_validator

from qts_data.config.secrets import register_secret
from qts_data.contracts import Contract, LedgerEntry, Position, RiskConfig, StrategyParam
from qts_data.errors import ContractError
from qts_data.plugins import Settings

__all__ = [
    "DEFAULT_WORKSHEETS",
    "ROLES",
    "ROLE_CONTRACTS",
    "Role",
    "SheetsSettings",
]

#: What a worksheet holds: the adapter's four kinds of sheet.
Role = Literal["positions", "ledger", "strategies", "risk_configs"]
ROLES: tuple[Role, ...] = ("positions", "ledger", "strategies", "risk_configs")

#: The contract of each role's rows.
ROLE_CONTRACTS: dict[str, type[Contract]] = {
    "positions": Position,
    "ledger": LedgerEntry,
    "strategies": StrategyParam,
    "risk_configs": RiskConfig,
}

#: The current system's tab names (seeds/002 §4.3 reads ``Position``; the memory
#: adapter knows the same four names).
DEFAULT_WORKSHEETS: dict[Role, str] = {
    "positions": "Position",
    "ledger": "T_Ledger",
    "strategies": "Strategy",
    "risk_configs": "Risk_Config",
}

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SheetsSettings(Settings):
    """``[adapters.NAME] type = "sheets"``: one Google spreadsheet holding the trading sheets."""

    # Inputs are left out of pydantic's error texts (a secret may be among them).
    model_config = ConfigDict(hide_input_in_errors=True)

    spreadsheet_id: str = Field(
        min_length=1, description="the key of the spreadsheet (from its URL: /spreadsheets/d/KEY/)"
    )
    credentials_file: str | None = Field(
        default=None,
        description="path of a service-account (or authorized-user) JSON key file",
    )
    credentials_env: str | None = Field(
        default=None,
        description="name of the environment variable holding the service-account JSON (a secret: "
        "never printed)",
    )
    timezone: str | None = Field(
        default=None,
        description="IANA zone of cells written without an offset (e.g. Asia/Seoul); default: the "
        "spreadsheet's own time zone",
    )
    worksheets: dict[Role, str] = Field(
        default_factory=lambda: dict(DEFAULT_WORKSHEETS),
        description="role -> worksheet title; roles not given keep their default "
        "(Position, T_Ledger, Strategy, Risk_Config)",
    )
    headers: dict[Role, dict[str, str]] = Field(
        default_factory=dict,
        description="role -> {field: header} where a sheet's header differs from the field name",
    )
    raw_sheets: list[str] = Field(
        default_factory=list,
        description="further worksheet titles fetch_raw_data may read (read-only)",
    )
    writable_config: bool = Field(
        default=False,
        description="allow save_strategy_param / save_risk_config (the strategy and risk sheets "
        "are read-only by default)",
    )
    ensure_sheets: bool = Field(
        default=False,
        description="at open, add missing worksheets and write the header row of empty ones",
    )
    requests_per_minute: int = Field(
        default=60,
        gt=0,
        description="Sheets API quota per user; shared by every adapter with the same credentials",
    )
    quota_window_s: float = Field(
        default=60.0,
        gt=0,
        description="the window requests_per_minute is counted over (only tests shorten it)",
    )
    max_retries: int = Field(
        default=5, ge=0, le=20, description="retries of a request on 429, 5xx and timeouts"
    )
    backoff_base_s: float = Field(
        default=1.0, gt=0, description="first backoff; doubled per retry, with jitter"
    )
    backoff_max_s: float = Field(default=32.0, gt=0, description="longest backoff")
    timeout_s: float = Field(
        default=30.0, gt=0, description="connect and read timeout of a request"
    )
    layout_ttl_s: float = Field(
        default=60.0,
        ge=0,
        description="how long a sheet's header layout is trusted for appends before row 1 is read again",
    )
    symbol_format: Literal["text", "krx"] = Field(
        default="text",
        description='how symbol cells read: "text" as written; "krx" restores Korean stock '
        "codes a person typed as numbers (5930 -> 005930, left-padded with zeros to "
        "symbol_digits), on reads and when a write looks for a symbol's row",
    )
    symbol_digits: int = Field(
        default=6, ge=1, le=20, description='digits of a "krx" code (6 for KRX stock codes)'
    )
    api_base_url: str | None = Field(
        default=None,
        description="test only: base URL of a local Sheets API stand-in (http://127.0.0.1:PORT); "
        "with it no Google host is ever contacted",
        json_schema_extra={"hidden": True},
    )

    @field_validator("worksheets")
    @classmethod
    def _merge_worksheets(cls, value: dict[str, str]) -> dict[str, str]:
        merged: dict[str, str] = {str(k): v for k, v in DEFAULT_WORKSHEETS.items()}
        merged.update({k: v.strip() for k, v in value.items()})
        for role, title in merged.items():
            if not title:
                raise ValueError(f"worksheets.{role}: a worksheet title cannot be empty")
        titles = list(merged.values())
        twice = sorted({t for t in titles if titles.count(t) > 1})
        if twice:
            raise ValueError(f"two roles use the same worksheet: {', '.join(twice)}")
        return merged

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for role, mapping in value.items():
            contract = ROLE_CONTRACTS[role]
            try:
                full = contract.headers(mapping)
            except ContractError as exc:
                raise ValueError(f"headers.{role}: {exc}") from None
            for name, header in mapping.items():
                if not header.strip():
                    raise ValueError(f"headers.{role}.{name}: a header cannot be empty")
            shown = [h.strip() for h in full.values()]
            twice = sorted({h for h in shown if shown.count(h) > 1})
            if twice:
                raise ValueError(f"headers.{role}: two fields use the header {twice[0]!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Asia/Seoul)"
            ) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _check_env_name(cls, data: Any) -> Any:
        # Checked on the whole input, so the error carries the table, not the value:
        # a service-account JSON pasted here by mistake is never echoed.
        value = data.get("credentials_env") if isinstance(data, dict) else None
        if isinstance(value, str) and not _ENV_NAME.match(value):
            register_secret(value)
            raise ValueError(
                "credentials_env is the NAME of an environment variable (letters, digits, _), "
                f"not its value ({len(value)} characters given, not shown)"
            )
        return data

    @field_validator("api_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_base_url must be http(s)://host[:port], got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_source_of_credentials(self) -> SheetsSettings:
        if self.credentials_file and self.credentials_env:
            raise ValueError("give credentials_file or credentials_env, not both")
        if not (self.credentials_file or self.credentials_env or self.api_base_url):
            raise ValueError(
                "credentials missing: set credentials_file (a service-account JSON key file) or "
                "credentials_env (the environment variable holding it)"
            )
        return self

    # -- derived --------------------------------------------------------------------------
    def worksheet(self, role: str) -> str:
        return self.worksheets[role]  # type: ignore[index]

    def header_map(self, role: str) -> dict[str, str]:
        """Field -> header of a role's sheet (the field name unless ``headers`` says otherwise)."""
        contract = ROLE_CONTRACTS[role]
        mapping = contract.headers(self.headers.get(role))  # type: ignore[call-overload]
        return {name: header.strip() for name, header in mapping.items()}

    def credentials_source(self) -> str:
        """Where the credentials come from, safe to show."""
        if self.credentials_file:
            return f"file {self.credentials_file}"
        if self.credentials_env:
            return f"environment variable {self.credentials_env}"
        return "none (anonymous, stand-in)"

    def public(self) -> dict[str, Any]:
        """What ``describe()`` shows: no secret is in the settings, only where it is found."""
        out: dict[str, Any] = {
            "spreadsheet_id": self.spreadsheet_id,
            "credentials": self.credentials_source(),
            "worksheets": dict(self.worksheets),
            "timezone": self.timezone or "(the spreadsheet's)",
            "requests_per_minute": self.requests_per_minute,
            "writable_config": self.writable_config,
        }
        if self.quota_window_s != 60.0:
            out["quota_window_s"] = self.quota_window_s
        if self.api_base_url:
            out["api_base_url"] = self.api_base_url
        return out
