"""qts-data-sheets: the Google Sheets adapter (plugin ``sheets``), on gspread 6.

Importing this module is cheap: it registers the adapter factory and its
settings model. gspread (with google-auth and requests) is imported only when
a stack builds the adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qts_data.plugins import BuildContext, Register, hookimpl
from qts_data_sheets.settings import DEFAULT_WORKSHEETS, SheetsSettings

if TYPE_CHECKING:
    from qts_data_sheets.adapter import SheetsAdapter

__version__ = "0.1.0"

#: The plugin's canonical name (its entry-point name) and its adapter's name.
PLUGIN = "sheets"

__all__ = ["DEFAULT_WORKSHEETS", "PLUGIN", "SheetsAdapter", "SheetsSettings", "__version__"]


def make_adapter(settings: SheetsSettings, ctx: BuildContext) -> SheetsAdapter:
    from qts_data_sheets.adapter import SheetsAdapter

    if settings.credentials_file:
        settings = settings.model_copy(
            update={"credentials_file": ctx.resolve_path(settings.credentials_file)}
        )
    return SheetsAdapter(settings)


@hookimpl
def qts_data_adapters(register: Register) -> None:
    register(
        PLUGIN,
        make_adapter,
        settings=SheetsSettings,
        description="Google Sheets (gspread): positions, ledger, strategy and risk sheets; no ticks",
    )


def __getattr__(name: str) -> Any:
    if name == "SheetsAdapter":
        from qts_data_sheets.adapter import SheetsAdapter

        return SheetsAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
