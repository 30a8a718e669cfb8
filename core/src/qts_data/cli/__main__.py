"""``python -m qts_data.cli``: the same as the ``qts-data`` command."""

from qts_data.cli.main import main

main()
