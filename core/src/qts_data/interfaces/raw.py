"""The names ``fetch_raw_data`` knows, shared by the adapters so they accept the same ones."""

from __future__ import annotations

from qts_data.errors import QtsDataError

#: Canonical sheet (table) name -> the names it is also known by, compared
#: case-insensitively with spaces and hyphens read as underscores. The seed's
#: Sheets tabs are ``Position``, ``T_Ledger``, ``Strategy`` and ``Risk_Config``.
RAW_SHEETS: dict[str, tuple[str, ...]] = {
    "positions": ("position",),
    "ledger": ("t_ledger",),
    "strategies": ("strategy", "strategy_params"),
    "risk_configs": ("risk_config",),
    "execution_logs": ("execution_log",),
}
_ALIASES = {alias: name for name, aliases in RAW_SHEETS.items() for alias in (name, *aliases)}


def raw_sheet_name(sheet: str, adapter: str) -> str:
    """The canonical name of ``sheet``; an unknown one is an error listing the known names."""
    normal = "_".join(str(sheet).strip().lower().replace("-", " ").replace("_", " ").split())
    try:
        return _ALIASES[normal]
    except KeyError:
        known = ", ".join(sorted(RAW_SHEETS))
        aliases = ", ".join(sorted(alias for name in RAW_SHEETS for alias in RAW_SHEETS[name]))
        raise QtsDataError(
            f"unknown sheet {sheet!r}: the {adapter} has {known} (also known as {aliases})"
        ) from None
