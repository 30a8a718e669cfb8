"""Test support of the ``sheets`` plugin: the local Sheets API v4 stand-in.

Importing this package imports neither gspread nor requests (the stand-in is
standard library only), so other distributions' tests can use it freely::

    from qts_data_sheets.testing import SheetsStandIn, sheets_standin  # noqa: F401 (fixture)
"""

from qts_data_sheets.testing.fixtures import sheets_standin, standin_settings
from qts_data_sheets.testing.standin import (
    API_OPERATIONS,
    DateTimeValue,
    RecordedRequest,
    SheetsStandIn,
)

__all__ = [
    "API_OPERATIONS",
    "DateTimeValue",
    "RecordedRequest",
    "SheetsStandIn",
    "sheets_standin",
    "standin_settings",
]
