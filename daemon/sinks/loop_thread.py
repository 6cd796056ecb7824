"""An asyncio event loop on a thread of its own, for the servers that are asyncio libraries
(OPC UA, Modbus TCP): the frame thread hands them coroutines and never waits longer than a
timeout."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self, coro: Coroutine, timeout: float) -> None:
        """Start the loop and run `coro` on it; raises what it raised, with the loop stopped."""
        self._thread.start()
        try:
            self.run(coro, timeout)
        except Exception:
            self.stop(timeout)
            raise

    def run(self, coro: Coroutine, timeout: float) -> Any:
        """`coro`'s result, waited for at most `timeout` seconds."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def submit(self, coro: Coroutine) -> None:
        """Run `coro` on the loop without waiting for it."""
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def later(self, seconds: float, call: Callable[[], None]) -> None:
        """Call `call` on the loop in `seconds` (from any thread)."""
        self.loop.call_soon_threadsafe(self.loop.call_later, seconds, call)

    def stop(self, timeout: float) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=timeout)
