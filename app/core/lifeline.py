"""A process that ends when the process that started it is gone (killed, say), instead of
running on as an orphan: pool workers waiting for work that will never come, or a server
started by a test or a benchmark that died."""

from __future__ import annotations

import os
import signal
import threading
import time


def exit_with_parent(parent: int, graceful: bool = False) -> None:
    """Watch for the parent ``parent`` to go; then exit at once, or with SIGTERM to this
    process (``graceful``: a server's own shutdown runs)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        if graceful:
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
