"""The engine's timing constants, in one place, each with the reason for its value.

The settings a deployment may change (timeouts, the retry ladder, ``WEBHOOK_IDLE_WAIT``) are in
``config.py``; these are the engine's own. See docs/architecture.md, "Timing".
"""

# Delivery jobs (delivery.py, dispatch.py)
DRAIN_BUDGET = 60.0
"""Seconds a delivery job keeps taking new work before it hands over: long enough that a busy
worker seldom pays for a new job, short enough that the worker soon runs its other jobs."""
JOB_TIMEOUT_MARGIN = 60
"""Seconds RQ allows a job beyond its budget: a job returns at its budget (sends still in flight
record themselves), so RQ's own timeout only catches a job that is truly stuck."""
LINGER = 2.0
"""A retry due within this many seconds is sent by the running job: cheaper than a new job and
RQ's scheduler, which polls once a second."""
POLL = 0.02
"""Seconds between looks for new work while sends are in flight: short against a send, long
against the cost of a claim."""
RECLAIM_EVERY = 1.0
"""Seconds between lease sweeps inside a running job, as often as the cron sweeper runs."""

# Sends in flight (flight.py)
FAST_WINDOW = 1
"""Young sends at once: one keeps a core busy when handlers answer at once, and more would only
hand the interpreter back and forth between threads."""
SLOW_AFTER = 0.001
"""Seconds after which a send is waiting on its handler, not on us, and leaves the window."""
READY_AHEAD = 0.5
"""Claimed and signed calls a job keeps ready beyond its threads, as a share of the thread count:
a thread whose send ends finds its next call at once, not after the job's next claim. Half covers
the job's slowest round (gathering, recording, claiming and signing) at a thread per 3 ms."""
LINGER_SLOW = POLL
"""Seconds a thread whose send waited on its handler waits for the window or for the next call
before it goes back to the pool: as long as the job may take to look again."""
GATHER = 0.02
"""Seconds to gather outcomes into one batch before recording it: every commit has a fixed cost."""

# Redis (dispatch.py)
WAKE_FLAG_TTL = 30
"""Seconds the "a job is queued" flag lives: a lost job (Redis flushed) blocks new wake-ups for
no longer than this, and the sweeper covers the gap."""
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_SOCKET_TIMEOUT = 5.0
"""Seconds before a Redis call gives up: Redis is transport, and the database carries on without it."""
DOORBELL_WAIT_MAX = 4.0
"""The longest single wait on the doorbell: below the socket timeout, which would cut it."""

# HTTP (transport/sender.py)
WATCHDOG_TICK = 0.1
"""Seconds between the watchdog's looks for requests past their deadline: an attempt ends at
most this long after the delivery timeout."""
CONNECT_TIMEOUT_MAX = 10.0
"""The longest connect: a handler that takes longer to accept is down, whatever the timeout."""
LEASE_MARGIN_MAX = 30.0
"""The most a lease adds to the longest possible attempt before the sweeper takes it back."""

# Hourly sums (hourly.py)
HOUR_SETTLE_MARGIN = 120.0
"""Seconds past an hour's end and the longest attempt before the hour is summed: an attempt is
recorded when it ends, after its watchdog tick, the gathering of outcomes and, if the database
balks, up to ``RECORD_PATIENCE`` of retries; this covers them with room to spare."""

# A database that drops its connections (reconnect.py, recording.py)
RECONNECT_TRIES = 3
"""Tries of a statement whose connection died: the second runs on a fresh connection, the third
covers a pool whose connections died one after another."""
RECONNECT_PAUSE = 0.2
"""Seconds before the next try, times the try's number: a restarting database gets a moment."""
RECORD_PATIENCE = 30.0
"""Seconds a job that is done keeps trying to record outcomes the database would not take; after
that their leases expire and the triggers are sent again (a repeat, never a loss)."""

# Recoveries (recovery/)
RECOVER_SLICE = 1.0
"""Seconds of sending one recovery job does before it hands the worker back: deliveries queued
meanwhile wait at most this long (plus one request) for a worker busy with a recovery."""
RECOVER_POLL = 0.25
"""Seconds between the workers' looks for a recovery slice that is due: a recovery at the
default rate is sent in slices a second apart, and this keeps each close to its due time."""
RECOVER_READ = 200
"""Trigger attempts read per statement while looking for failed ones: a short read, and few
statements when failures are rare among successes."""
RECOVER_LEASE_MARGIN = 5.0
"""Seconds past the longest request (``WEBHOOK_VALIDATION_TIMEOUT``) before the sweeper takes a
running slice for lost (its worker died) and queues a job to resume it."""
RECOVER_REVIVE_AFTER = 10.0
"""Seconds past a slice's due time before the sweeper takes the job queued for it for lost
(Redis lost it, or it waits behind long jobs) and queues another; only one of them runs it."""
