"""The job functions under the names they were queued by before they moved to
``webhookapp.engine.jobs``: a job queued or scheduled before an upgrade still runs after it."""

from webhookapp.engine.jobs import deliver_due, prune_attempts, sweep

__all__ = ["deliver_due", "prune_attempts", "sweep"]
