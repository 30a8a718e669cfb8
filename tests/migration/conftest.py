"""The migration rehearsal needs the sheets plugin's stand-in and a real PostgreSQL."""

from qts_data_sheets.testing import fixtures

sheets_standin_server = fixtures.sheets_standin_server
sheets_standin = fixtures.sheets_standin
