"""The delivery engine (docs/architecture.md, "Layers"): from an accepted event to a recorded attempt.

The hot paths are packages: the portable code in ``__init__.py``, the PostgreSQL fast path in
``postgresql.py`` beside it.

- :mod:`webhookapp.engine.ingest` accepts events (:mod:`webhookapp.engine.ingest.postgresql`:
  one statement per event, or per group, on PostgreSQL, whose SQL is
  :mod:`webhookapp.engine.ingest.statements`);
- :mod:`webhookapp.engine.triggers` owns the trigger state and its every transition
  (:mod:`webhookapp.engine.triggers.claims`: the claim that moves due triggers into flight;
  :mod:`webhookapp.engine.triggers.leases`: the attempts in flight, released and reclaimed;
  :mod:`webhookapp.engine.triggers.schedule`: when triggers fall due;
  :mod:`webhookapp.engine.triggers.postgresql`: the SQL twins the fast paths run inside their
  statements);
- :mod:`webhookapp.engine.feeds` writes the rows of ``event_feeds`` (the other accounts an event
  matched) and :mod:`webhookapp.engine.matches` the match sets (the webhooks it matched,
  together) where the PostgreSQL statement does not; :mod:`webhookapp.engine.backfills` gives the
  events stored before such a table its rows;
- :mod:`webhookapp.engine.dispatch` wakes workers and schedules retries through Redis and RQ;
- :mod:`webhookapp.engine.jobs` are the RQ jobs;
- :mod:`webhookapp.engine.delivery` is the loop a delivery job runs,
  :mod:`webhookapp.engine.delivery.flight` the sends it has in flight, and
  :mod:`webhookapp.engine.delivery.recording` what it does with their outcomes;
- :mod:`webhookapp.engine.signing` builds and signs each request;
  :mod:`webhookapp.engine.transport` sends it (:mod:`webhookapp.engine.transport.sender`) through
  the SSRF guard (:mod:`webhookapp.engine.transport.ssrf`) and the egress proxy's tunnel
  (:mod:`webhookapp.engine.transport.proxy`), presents client certificates
  (:mod:`webhookapp.engine.transport.client_tls`), and says why a call got no answer
  (:mod:`webhookapp.engine.transport.failures`);
- :mod:`webhookapp.engine.outcomes` records attempts and statistics
  (:mod:`webhookapp.engine.outcomes.postgresql`: a batch of successes in one statement);
  :mod:`webhookapp.engine.attempt_counts` keeps each webhook's count of stored attempts where
  pruning deletes them, and counts the webhooks made before it was kept;
- :mod:`webhookapp.engine.reconnect` runs a statement again when the database dropped its
  connection;
- :mod:`webhookapp.engine.direct` holds the calls made at once, apart from the trigger state:
  :mod:`webhookapp.engine.direct.validations` calls validation webhooks synchronously,
  :mod:`webhookapp.engine.direct.probe` sends a test request with settings not yet saved, and
  :mod:`webhookapp.engine.direct.redelivery` sends a recorded attempt again now (Redeliver);
- :mod:`webhookapp.engine.recovery` sends a webhook's failed triggers of a time range again, a
  slice at a time from a committed cursor (:mod:`webhookapp.engine.recovery.selection`: which
  attempts);
- :mod:`webhookapp.engine.maintenance` prunes old rows and purges deleted webhooks' attempts,
  :mod:`webhookapp.engine.maintenance.hourly` sums attempts per hour for the chart, and
  :mod:`webhookapp.engine.maintenance.alerts` mails the users when a webhook goes Out of order;
- :mod:`webhookapp.engine.runtime` holds a process's state (the send threads and HTTP clients,
  the stop request, the event API's group commits), one per app, handed to what needs it;
- :mod:`webhookapp.engine.tracing` makes the spans of events and deliveries with each app's own
  tracer provider, and the ``traceparent`` they carry;
- :mod:`webhookapp.engine.types` holds the data that flows between them,
  :mod:`webhookapp.engine.timing` the engine's constants.

The web side (``webhookapp.services``) and the blueprints call in; the engine never calls out
to them.
"""
