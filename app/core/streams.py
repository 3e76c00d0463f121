"""How many streams the server serves at once, and the threads their shard reads may use."""

from __future__ import annotations

import anyio


class StreamSlots:
    """At most ``limit`` open streams; their shard reads share ``threads`` threads of the
    worker pool, so streams cannot starve the other requests. Create it on the event loop."""

    def __init__(self, limit: int, threads: int) -> None:
        self.limit = limit
        self.open = 0
        self.readers = anyio.CapacityLimiter(threads)

    def take(self) -> Slot | None:
        if self.open >= self.limit:
            return None
        self.open += 1
        return Slot(self)


class Slot:
    def __init__(self, slots: StreamSlots) -> None:
        self._slots = slots
        self._held = True
        self.readers = slots.readers

    def release(self) -> None:
        """Give the slot back (once, however often called)."""
        if self._held:
            self._held = False
            self._slots.open -= 1
