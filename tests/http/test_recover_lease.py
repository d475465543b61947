"""A recovery's slice on a slow machine (docs/architecture.md, "Recover"): its lease runs out while
its request is out, the sweeper revives it and another worker takes it. The old slice sends
nothing more, the new one resumes from the committed cursor: only the request that was in flight
is sent twice. Both slices run here, each on a thread of its own, against a real handler."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from tests.conftest import make_webhook
from tests.engine import api_token
from tests.http.test_recover import api, fresh_recovery, recover_body, resent, seed
from webhookapp.core.times import utcnow
from webhookapp.engine import recovery
from webhookapp.infra.extensions import db
from webhookapp.models import Recovery


def test_a_slice_taken_while_its_request_is_out_sends_nothing_more(app, client, vendor, handler):
    app.config["WEBHOOK_RECOVER_RATE"] = 1000
    release = threading.Event()
    hook = make_webhook(vendor, external_url=handler.behave("/recover", held_until=release))
    ids = seed(hook.id, [(minute, 1, False) for minute in (10, 11, 12)])
    started = api(client, api_token(vendor.account), "POST", f"/{hook.id}/recover", json=recover_body())
    recovery_id = started.get_json()["id"]
    sent: dict[str, int] = {}

    def run(name: str, generation: int) -> threading.Thread:
        def slice_() -> None:
            with app.app_context():
                sent[name] = recovery.run_slice(recovery_id, generation, queue_next=False)
                db.session.remove()

        thread = threading.Thread(target=slice_)
        thread.start()
        return thread

    old = run("old", fresh_recovery(recovery_id).generation)
    handler.wait_for("/recover")  # the old slice's first request is out, its answer held
    # Its worker looks dead: the lease runs out, the sweeper revives the slice, another takes it.
    db.session.execute(
        update(Recovery).where(Recovery.id == recovery_id).values(lease_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert recovery.revive() == 1
    new = run("new", fresh_recovery(recovery_id).generation)
    handler.wait_for("/recover", 2)  # the new owner sends the one in flight again
    release.set()
    old.join(30)
    new.join(30)

    assert sent == {"old": 1, "new": 3}
    assert len(handler.requests_to("/recover")) == 4  # three triggers, one of them in flight twice
    done = fresh_recovery(recovery_id)
    assert (done.state, done.sent, done.succeeded) == ("finished", 3, 3)
    # Both requests of the one in flight were made, so both are recorded.
    assert sorted(attempt.redelivery_of for attempt in resent(hook.id)) == [ids[0], *ids]
