"""``python -m qts_data_timescale.testing [--port N]``: run the TimescaleDB test engine."""

import sys

from qts_data_timescale.testing.engine import main

sys.exit(main())
