"""The Sheets → database migration toolkit: backfill and consistency verification."""

from qts_data.migration.backfill import BackfillReport, backfill
from qts_data.migration.verify import Mismatch, VerifyReport, verify

__all__ = ["BackfillReport", "Mismatch", "VerifyReport", "backfill", "verify"]
