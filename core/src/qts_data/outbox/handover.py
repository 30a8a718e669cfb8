"""Outboxes of an earlier migration phase: delivered when the hybrid opens in a new one.

The outbox moves between phases: with Sheets primary it is a local file, with
the database primary it is in the database, and SHEETS_ONLY and DB_ONLY have
none. Records still waiting in the outbox of the phase before are delivered to
the side they were meant for when the hybrid opens:

* first, before the hybrid takes a write, when that side now takes writes
  directly (the file's records for the database once the database is the
  primary; the database's records for Sheets after a rollback to SHEETS_ONLY):
  an older write must not land after a newer one;
* in the background otherwise (the database's records for Sheets in DB_ONLY,
  where nothing else writes to Sheets).

An outbox another process holds is left to that process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from qts_data.errors import BackendError
from qts_data.interfaces import DataSourceAdapter
from qts_data.outbox.record import Outbox
from qts_data.outbox.relay import OutboxRelay

log = logging.getLogger("qts_data.outbox")


@dataclass
class EarlierOutbox:
    """An outbox the hybrid does not use in its current mode (``label``: "file" or
    "database"), over the hybrid's two sides."""

    label: str
    outbox: Outbox
    sheets: DataSourceAdapter
    db: DataSourceAdapter
    relay: OutboxRelay | None = None
    task: asyncio.Task[bool] | None = None
    problem: str | None = field(default=None)

    async def hand_over(
        self, writes_to: DataSourceAdapter, *, timeout_s: float, **relay: Any
    ) -> None:
        """Deliver what waits in it: at once when its records go to ``writes_to`` (the side
        the hybrid now writes first; raises when that takes longer than ``timeout_s``), in
        the background otherwise."""
        try:
            await self.outbox.open()
        except Exception as exc:  # e.g. a database whose schema predates the outbox
            log.info("earlier %s outbox not checked: %s", self.label, exc)
            return
        try:
            target = await self.outbox.recorded_target() or "db"
            primary, secondary = (
                (self.sheets, self.db) if target == "db" else (self.db, self.sheets)
            )
            first = secondary is writes_to
            if not await self.outbox.claim_delivery():
                await self.close()  # another process holds it and delivers it
                return
            waiting, _ = await self.outbox.depth()
            if waiting == 0:
                await self.close()
                return
        except Exception as exc:
            self.problem = f"earlier {self.label} outbox not checked: {exc}"
            log.warning("%s", self.problem)
            await self.close()
            return
        log.warning(
            "%d records of the earlier %s outbox still go to %s: delivering them %s",
            waiting,
            self.label,
            target,
            "before taking writes" if first else "in the background",
        )
        self.relay = OutboxRelay(self.outbox, primary, secondary, **relay)
        await self.relay.recover()
        if first:
            if not await self.relay.drain(timeout_s):
                depth, _ = await self.outbox.depth()
                error = self.relay.last_error or "no answer"
                await self.close()
                raise BackendError(
                    f"{depth} records of the earlier {self.label} outbox could not be delivered "
                    f"to {target} in {timeout_s:.0f} s ({error}); "
                    "the hybrid does not take writes before "
                    "they are, so that no newer write is overtaken by an older one"
                )
            await self.close()
            return
        self.task = asyncio.get_running_loop().create_task(
            self._drain_then_close(), name="qts-outbox-handover"
        )

    async def _drain_then_close(self) -> bool:
        assert self.relay is not None
        try:
            return await self.relay.drain(None)
        finally:
            await self.outbox.close()

    async def waiting(self) -> int:
        """Records still to deliver (0 once handed over)."""
        if self.task is None or self.task.done():
            return 0
        depth, _ = await self.outbox.depth()
        return depth

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.outbox.close()
