"""How many streams the server serves at once, and the threads their shard reads may use."""

from __future__ import annotations

import asyncio
import logging

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("antifit.stream")


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


class WriteTimeoutStreamingResponse(StreamingResponse):
    """A stream that ends when its client has taken nothing for ``write_timeout`` seconds
    (each write waits for the client: a stalled one would hold its slot for ever)."""

    def __init__(self, *args: object, write_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.write_timeout = write_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_or_give_up(message: Message) -> None:
            await asyncio.wait_for(send(message), self.write_timeout)

        try:
            await super().__call__(scope, receive, send_or_give_up)
        except TimeoutError:
            log.info(
                "%s: the client took nothing for %g s; stream ended",
                scope["path"],
                self.write_timeout,
            )
            await self.body_iterator.aclose()  # type: ignore[attr-defined]  # its slot, now
            raise


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
