"""The delivery engine (docs/architecture.md): from an accepted event to a recorded attempt.

- :mod:`.ingest` accepts events (:mod:`webhookapp.engine.ingest.postgresql`: one statement on PostgreSQL);
- :mod:`.triggers` owns the trigger state and its every transition (:mod:`webhookapp.engine.triggers.postgresql`:
  the SQL twins the fast paths run inside their statements);
- :mod:`.dispatch` wakes workers and schedules retries through Redis and RQ;
- :mod:`.jobs` are the RQ jobs; :mod:`.delivery` is the loop a delivery job runs, and
  :mod:`.flight` the sends it has in flight;
- :mod:`.signing` builds and signs each request; :mod:`.transport` sends it through the SSRF guard;
- :mod:`.outcomes` records attempts and statistics (:mod:`webhookapp.engine.outcomes.postgresql`: a batch of
  successes in one statement);
- :mod:`.validations` calls validation webhooks synchronously;
- :mod:`.redelivery` sends a recorded attempt again now (Redeliver), apart from the trigger state;
- :mod:`.runtime` holds a process's state (the send threads and HTTP clients, the stop request,
  the event API's group commits), one per app, handed to what needs it;
- :mod:`.types` holds the data that flows between them, :mod:`.timing` the engine's constants.

The web side (``webhookapp.services``) and the blueprints call in; the engine never calls out
to them.
"""
