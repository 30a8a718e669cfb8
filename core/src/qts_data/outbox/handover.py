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

Records another process still delivers (a process of the earlier phase that is
still running) are waited for in the same way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from qts_data.errors import BackendError
from qts_data.interfaces import DataSourceAdapter
from qts_data.outbox.record import Outbox, OutboxMissingError
from qts_data.outbox.relay import OutboxRelay, RelayPacing

log = logging.getLogger("qts_data.outbox")


@dataclass
class EarlierOutbox:
    """An outbox the hybrid may have left in another phase (``label``: "file" or "database"),
    over the hybrid's two sides. ``current_target``: when the current phase uses this same
    outbox, the side it delivers to now; records already going there are left to its relay.
    """

    label: str
    outbox: Outbox
    sheets: DataSourceAdapter
    db: DataSourceAdapter
    current_target: str | None = None
    relay: OutboxRelay | None = None
    task: asyncio.Task[bool] | None = None
    #: Why what waits in it could not be handed over (the hybrid reports it DEGRADED).
    problem: str | None = None

    async def hand_over(
        self,
        writes_to: DataSourceAdapter,
        *,
        timeout_s: float,
        pacing: RelayPacing | None = None,
    ) -> None:
        """Deliver what waits in it: at once when its records go to ``writes_to`` (the side
        the hybrid now writes first; raises when that takes longer than ``timeout_s``), in
        the background otherwise. Records another process delivers are waited for the same
        way. When the outbox cannot be read (its database is down), :attr:`problem` says so
        and the hybrid opens all the same: a rollback must not depend on the database."""
        try:
            await self.outbox.open()
        except OutboxMissingError:
            return  # a schema from before the outbox: nothing can be waiting in it
        except Exception as exc:
            self._cannot_check(exc)
            return
        try:
            target = await self.outbox.recorded_target() or "db"
            waiting, _ = await self.outbox.depth()
        except Exception as exc:
            self._cannot_check(exc)
            await self.outbox.close()
            return
        if waiting == 0 or target == self.current_target:
            await self.outbox.close()
            return
        primary, secondary = (self.sheets, self.db) if target == "db" else (self.db, self.sheets)
        # the same outbox as the current phase's must be emptied before that one opens it
        first = secondary is writes_to or self.current_target is not None
        log.warning(
            "%d records of the earlier %s outbox still go to %s: delivering them %s",
            waiting,
            self.label,
            target,
            "before taking writes" if first else "in the background",
        )
        self.relay = OutboxRelay(self.outbox, primary, secondary, **(pacing or {}))
        try:
            if await self.outbox.claim_delivery():
                # intents of the dead process: replayed to the side it wrote first if it
                # can take them, delivered to ``target`` either way
                await self.relay.recover(best_effort=True)
        except Exception as exc:
            self._cannot_check(exc)
            await self.outbox.close()
            return
        if not first:
            self.task = asyncio.get_running_loop().create_task(
                self._drain_then_close(), name="qts-outbox-handover"
            )
            return
        try:
            if await self.relay.drain(timeout_s):
                return
            depth, _ = await self.outbox.depth()
        finally:
            await self.outbox.close()
        raise BackendError(
            f"{depth} records of the earlier {self.label} outbox could not be delivered to "
            f"{target} in {timeout_s:.0f} s ({self.relay.last_error or 'another process holds them'}); "
            "the hybrid does not take writes before they are, so that no newer write is "
            "overtaken by an older one"
        )

    def _cannot_check(self, exc: BaseException) -> None:
        self.problem = (
            f"earlier {self.label} outbox not checked ({type(exc).__name__}: {exc}): records "
            "left in it are delivered when it can be read, possibly after newer writes"
        )
        log.warning("%s", self.problem)

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
        try:
            depth, _ = await self.outbox.depth()
        except Exception:  # its database is down: still waiting
            return 1
        return depth

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.outbox.close()
