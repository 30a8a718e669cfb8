"""The position workload of the cache fault tests: one writer, readers checking what they get.

A memory store behind ``cached``: the writer updates every symbol's position every
50 ms; readers compare each position they read with what the store held once the
writer's last update before their read returned (older is stale).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from qts_data.stack import Stack


class Workload:
    """One writer updating positions every 50 ms, readers checking what they get."""

    def __init__(self, stack: Stack, symbols: list[str]) -> None:
        self.stack = stack
        self.adapter = stack.adapter
        self.symbols = symbols
        #: symbol -> the quantity the store held once the writer's update returned
        self.committed: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.stale: list[tuple[str, int, int]] = []
        self.reads: dict[str, int] = dict.fromkeys(symbols, 0)
        self.stop = asyncio.Event()

    async def prime(self) -> None:
        for symbol in self.symbols:
            await self.adapter.update_position(symbol, "1", "100")
            self.committed[symbol] = 1

    async def writer(self) -> None:
        qty = 1
        while not self.stop.is_set():
            qty += 1
            for symbol in self.symbols:
                await self.adapter.update_position(symbol, str(qty), "100")
                self.committed[symbol] = qty
            await asyncio.sleep(0.05)

    async def reader(self, n: int) -> None:
        while not self.stop.is_set():
            symbol = self.symbols[n % len(self.symbols)]
            floor = self.committed[symbol]
            try:
                position = await self.adapter.fetch_position(symbol)
            except BaseException as exc:  # no caller may see an error
                self.errors.append(exc)
                return
            assert position is not None
            if position.qty < Decimal(floor):  # older than what was committed before the read
                self.stale.append((symbol, int(position.qty), floor))
            self.reads[symbol] += 1
            await asyncio.sleep(0.001)

    def start(self, readers: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.writer())] + [
            asyncio.create_task(self.reader(n)) for n in range(readers)
        ]

    async def finish(self, tasks: list[asyncio.Task[None]]) -> None:
        self.stop.set()
        await asyncio.gather(*tasks)
