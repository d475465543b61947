"""One warning per outage (docs/operations.md, "Logs"): a loop that reaches Redis a few times a
second would otherwise log the same warning on every turn for as long as Redis is gone.

The first failure logs a warning, the later ones only at DEBUG; the first success after them logs
an INFO line saying the outage is over and how long it lasted.
"""

from __future__ import annotations

import logging
import threading
import time


class Outage:
    """What one loop (``who``) saw of ``target``: out of reach since when, if it is. ``meanwhile``
    says in the warning what happens instead ("the sweeper delivers meanwhile")."""

    def __init__(self, log: logging.Logger, who: str, meanwhile: str = "", target: str = "Redis") -> None:
        self.log, self.who, self.target = log, who, target
        self.meanwhile = f"; {meanwhile}" if meanwhile else ""
        self.since: float | None = None  # time.monotonic() of the outage's first failure
        self._lock = threading.Lock()  # the doorbell's is shared by every job of the process

    def failed(self, exc: BaseException) -> None:
        """A call to the target failed: warn if this starts an outage."""
        with self._lock:
            starts = self.since is None
            if starts:
                self.since = time.monotonic()
        if starts:
            self.log.warning("%s could not reach %s (%s)%s. Said once until it is back.", self.who, self.target, exc,
                             self.meanwhile)  # fmt: skip
        else:
            self.log.debug("%s still cannot reach %s: %s", self.who, self.target, exc)

    def reached(self) -> None:
        """A call to the target succeeded: say so if it ends an outage."""
        if self.since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            self.log.info("%s reached %s again after %.1f s.", self.who, self.target, time.monotonic() - since)
