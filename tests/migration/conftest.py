"""The migration rehearsal needs the sheets plugin's stand-in and a real PostgreSQL."""

from qts_data_sheets.testing import sheets_standin, sheets_standin_server  # noqa: F401 - fixtures
