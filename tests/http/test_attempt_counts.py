"""Each webhook's count of stored attempts, and the API's pages past the middle of a long list of
attempts, read from its far end with it (docs/architecture.md, "Scale")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import make_webhook
from tests.engine import api_token, insert_attempts, post_event, run_worker, statements
from tests.plans import analyze, scans
from webhookapp.core.times import utcnow
from webhookapp.engine import attempt_counts, maintenance
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.services import attempt_pages

URL = "/public/v1/notifications/webhooks"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {token}"}


def counts(*hook_ids: str) -> dict[str, tuple[int | None, int]]:
    """Each webhook's stored count next to the attempts it has."""
    db.session.rollback()
    stored = dict(db.session.execute(select(Webhook.id, Webhook.attempts_kept).where(Webhook.id.in_(hook_ids))).all())
    rows = db.session.execute(
        select(Attempt.webhook_id, func.count()).where(Attempt.webhook_id.in_(hook_ids)).group_by(Attempt.webhook_id)
    ).all()
    actual = dict(rows)
    return {hook_id: (stored[hook_id], actual.get(hook_id, 0)) for hook_id in hook_ids}


def test_every_writer_of_attempts_keeps_the_count(app, client, vendor, handler):
    """Successes (in a batch), failures, retries, a redelivery, a validation's sample and pruning
    each change the count in the transaction that changes the attempts."""
    app.config.update(WEBHOOK_RETRY_BASE=0.2, WEBHOOK_MAX_ATTEMPTS=2)  # a retry within one job
    token = api_token(vendor.account)
    good = [make_webhook(vendor, label=f"Good {n}", external_url=handler.behave(f"/good{n}")) for n in range(3)]
    broken = make_webhook(vendor, label="Broken", external_url=handler.behave("/broken", status=500))
    validator = make_webhook(vendor, type_key="fulfillment_request.validator", external_url=handler.behave("/v"))
    ids = [hook.id for hook in (*good, broken, validator)]
    for _ in range(2):
        assert post_event(client, token, object_class="fulfillment_request", product_id=broken.product_id)[0] == 202
        run_worker(app)
    assert client.post(f"{URL}/{validator.id}/trigger", headers=auth(token)).status_code == 200
    failed = db.session.scalar(select(func.max(Attempt.id)).where(Attempt.webhook_id == broken.id))
    redelivered = client.post(f"{URL}/{broken.id}/attempts/{failed}/redeliver", headers=auth(token))
    assert redelivered.status_code in (200, 201), redelivered.get_data(as_text=True)
    now = counts(*ids)
    assert all(stored == actual for stored, actual in now.values()), now
    # Broken: a failure, its retry when the job is still there when it is due (then Out of order),
    # and the redelivery.
    assert now[broken.id][1] in (2, 3) and now[good[0].id][1] == 2 and now[validator.id][1] >= 1

    # Pruning: the older half of each webhook's attempts past the retention.
    app.config.update(WEBHOOK_ATTEMPT_RETENTION_DAYS=1)
    for hook_id in ids:
        older = select(Attempt.id).where(Attempt.webhook_id == hook_id).order_by(Attempt.id).limit(2)
        db.session.execute(
            update(Attempt).where(Attempt.id.in_(older)).values(started_at=utcnow() - timedelta(days=3))
        )
    db.session.commit()
    assert maintenance.prune() is not None
    after = counts(*ids)
    assert all(stored == actual for stored, actual in after.values()), after
    assert after[broken.id][1] == now[broken.id][1] - 2 and after[good[0].id][1] == 0


def add_attempts(hook: Webhook, count: int) -> list[int]:
    """``count`` attempts, three to a second (ties on the time: the id orders them), counted as
    the service counts them; returns their ids newest first, as the API lists them."""
    start = utcnow() - timedelta(hours=1)
    for n in range(count):
        db.session.add(
            Attempt(webhook_id=hook.id, number=1, started_at=start + timedelta(seconds=n // 3), duration_ms=5.0,
                    success=n % 4 != 0, request_method="POST", request_url="https://h.test/", request_headers={})
        )  # fmt: skip
    db.session.flush()
    db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(attempts_kept=None))
    db.session.commit()
    attempt_counts.backfill()
    rows = db.session.execute(
        select(Attempt.id).where(Attempt.webhook_id == hook.id).order_by(Attempt.started_at.desc(), Attempt.id.desc())
    )
    return [row.id for row in rows]


def far_end_read(seen: list[str]) -> bool:
    """Whether a statement read the attempts oldest first (the far end)."""
    return any("ORDER BY attempts.started_at, attempts.id" in statement for statement in seen)


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_every_page_past_the_middle_is_the_page_read_from_the_near_end(client, vendor, limit):
    hook = make_webhook(vendor)
    newest_first = add_attempts(hook, 37)
    token = api_token(vendor.account)
    for offset in range(0, 40):
        with statements() as seen:
            page = client.get(f"{URL}/{hook.id}/attempts?limit={limit}&offset={offset}", headers=auth(token))
        assert page.status_code == 200
        expected = newest_first[offset : offset + limit]
        assert [attempt["id"] for attempt in page.get_json()] == expected, offset
        last = offset + len(expected) - 1 if expected else offset
        assert page.headers["Content-Range"] == f"items {offset}-{last}/37"
        assert far_end_read(seen) is (offset * 2 >= 37 and offset < 37), offset


def test_a_filter_an_order_or_an_unknown_count_reads_from_the_near_end(client, vendor):
    hook = make_webhook(vendor)
    newest_first = add_attempts(hook, 20)
    token = api_token(vendor.account)
    base = f"{URL}/{hook.id}/attempts"
    for query in ("eq(success,true)&limit=3&offset=12", "ordering=started_at&limit=3&offset=15"):
        with statements() as seen:
            assert client.get(f"{base}?{query}", headers=auth(token)).status_code == 200
        assert not far_end_read(seen), query
    db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(attempts_kept=None))
    db.session.commit()
    with statements() as seen:
        page = client.get(f"{base}?limit=3&offset=17", headers=auth(token))
    assert not far_end_read(seen)
    assert [attempt["id"] for attempt in page.get_json()] == newest_first[17:20]


def test_the_backfill_counts_in_batches_and_skips_what_is_counted(app, vendor):
    hooks = [make_webhook(vendor, label=f"Hook {n}") for n in range(5)]
    for n, hook in enumerate(hooks):
        add_attempts(hook, n)
    db.session.execute(update(Webhook).values(attempts_kept=None))
    db.session.execute(update(Webhook).where(Webhook.id == hooks[0].id).values(attempts_kept=0))
    db.session.commit()
    said: list[str] = []
    assert attempt_counts.backfill(batch_size=2, progress=said.append) == 4
    assert len(said) == 2  # two full batches; the empty last one says nothing
    assert all(stored == actual for stored, actual in counts(*(hook.id for hook in hooks)).values())
    assert attempt_counts.backfill() == 0
    # What an old process left uncounted during a rolling upgrade: --all counts it again.
    db.session.execute(update(Webhook).where(Webhook.id == hooks[4].id).values(attempts_kept=1))
    db.session.commit()
    assert attempt_counts.backfill(recount=True) == 5
    assert counts(hooks[4].id) == {hooks[4].id: (4, 4)}


@pytest.mark.postgresql
def test_the_last_page_of_a_long_list_reads_a_page_of_the_index(postgresql, vendor):
    """Proved by the rows the executed plan read: the far end's offset steps over the rows
    between the page and that end, not over the whole list before the page."""
    hook = make_webhook(vendor)
    insert_attempts(hook.id, 3000)
    db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(attempts_kept=None))
    db.session.commit()
    attempt_counts.backfill()
    analyze("attempts")
    for offset, limit, expected in ((2900, 100, 100), (2000, 100, 1000), (2990, 100, 10)):
        read = scans(attempt_pages.far_end_keys(hook.id, offset, limit))
        attempts = [scan for scan in read if scan.get("Relation Name") == "attempts"]
        assert [scan["Index Name"] for scan in attempts] == ["ix_attempts_webhook_started_id"], read
        assert attempts[0]["read"] == expected, (offset, read)
    db.session.rollback()
