"""``/metrics``: who may read it, what the event API and the delivery loop count, the state read
at scrape time, and multi-process mode with real gunicorn and worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_webhook
from tests.engine import ROOT, api_token, post_event, run_worker, start_worker, stop, worker_env
from tests.servers import free_port
from webhookapp.core.times import utcnow
from webhookapp.engine import triggers
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, Webhook
from webhookapp.services import tokens

OUTSIDE = {"REMOTE_ADDR": "10.1.2.3"}


def parse(text: str) -> dict[str, float]:
    """Samples by name and labels, as PromQL writes them: ``name{a="x",b="y"}``."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def scrape(client, **kwargs) -> dict[str, float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Cache-Control"] == "no-store"
    return parse(response.get_data(as_text=True))


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What of ours changed between two scrapes (this process's counters live as long as it does)."""
    return {
        name: value - before.get(name, 0)
        for name, value in after.items()
        if name.startswith("webhookapp_") and value != before.get(name, 0)
    }


# -- access ------------------------------------------------------------------------------------


def test_metrics_answer_the_metrics_networks_and_operators_only(app, client, vendor):
    assert 'webhookapp_deliveries_total{outcome="success"}' in scrape(client)  # loopback
    assert "webhookapp_triggers_due" in scrape(client, environ_base={"REMOTE_ADDR": "::1"})

    refused = client.get("/metrics", environ_base=OUTSIDE)
    assert refused.status_code == 404 and b"webhookapp_" not in refused.data
    vendor_token = api_token(vendor.account)
    for header in (f"Bearer {vendor_token}", "Bearer not-a-token", "Basic dXNlcjpwYXNz"):
        assert client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": header}).status_code == 404

    operator_token = api_token(vendor.account, platform=True)
    for scheme in ("Bearer", "ApiKey"):
        headers = {"Authorization": f"{scheme} {operator_token}"}
        assert "webhookapp_triggers_due" in scrape(client, environ_base=OUTSIDE, headers=headers)
    tokens.revoke_token(db.session.scalar(db.select(ApiToken).where(ApiToken.is_platform.is_(True))))
    headers = {"Authorization": f"Bearer {operator_token}"}
    assert client.get("/metrics", environ_base=OUTSIDE, headers=headers).status_code == 404


def test_the_metrics_networks_are_configurable(app, client):
    app.config["WEBHOOK_METRICS_NETWORKS"] = ["10.0.0.0/8"]
    assert "webhookapp_triggers_due" in scrape(client, environ_base=OUTSIDE)
    assert client.get("/metrics").status_code == 404  # loopback is no longer in the list
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "11.0.0.1"}).status_code == 404


# -- counters ----------------------------------------------------------------------------------


def test_events_are_counted_accepted_duplicate_or_refused_by_reason(app, client, vendor):
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    before = scrape(client)
    event = {"object_class": "fulfillment_request", "product_id": hook.product_id, "id": "order-1"}
    assert post_event(client, token, **event)[0] == 202
    assert post_event(client, token, **event)[0] == 200
    assert post_event(client, token, object_class="nonsense", product_id=hook.product_id)[0] == 400
    assert post_event(client, token, object_class="fulfillment_request", product_id="PRD-000-000-000")[0] == 404
    assert post_event(client, "wrong-token", **event)[0] == 401
    not_json = client.post("/public/v1/events", data="x", headers={"Authorization": f"ApiKey {token}"})
    assert not_json.status_code == 415
    changed = delta(before, scrape(client))
    assert 0 <= changed.pop("webhookapp_triggers_due_oldest_seconds") < 10
    assert changed == {
        'webhookapp_events_accepted_total{duplicate="false"}': 1,
        'webhookapp_events_accepted_total{duplicate="true"}': 1,
        'webhookapp_events_refused_total{reason="invalid"}': 1,
        'webhookapp_events_refused_total{reason="unknown_product"}': 1,
        'webhookapp_events_refused_total{reason="unauthenticated"}': 1,
        'webhookapp_events_refused_total{reason="not_json"}': 1,
        "webhookapp_triggers_due": 1,  # the one accepted event made a trigger due
        'webhookapp_rq_queue_length{queue="webhooks"}': 1,  # and queued a delivery job
    }


def test_deliveries_retries_and_out_of_order_are_counted(app, client, vendor, handler):
    app.config.update(WEBHOOK_RETRY_BASE=0.2, WEBHOOK_MAX_ATTEMPTS=2)  # a retry within LINGER: one job does it all
    good = make_webhook(vendor, label="Good", external_url=handler.behave("/good"))
    make_webhook(vendor, label="Broken", external_url=handler.behave("/broken", status=500))
    before = scrape(client)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=good.product_id)
    run_worker(app)
    assert len(handler.requests_to("/broken")) == 2
    changed = delta(before, scrape(client))
    assert changed['webhookapp_deliveries_total{outcome="success"}'] == 1
    assert changed['webhookapp_deliveries_total{outcome="failure"}'] == 2
    assert changed["webhookapp_delivery_duration_seconds_count"] == 3
    assert 0 < changed["webhookapp_delivery_duration_seconds_sum"] < 30
    assert changed['webhookapp_delivery_duration_seconds_bucket{le="+Inf"}'] == 3
    assert changed["webhookapp_retries_scheduled_total"] == 1
    assert changed["webhookapp_webhooks_went_out_of_order_total"] == 1
    assert changed["webhookapp_webhooks_out_of_order"] == 1  # the gauge, read from the database


# -- state read at scrape time -----------------------------------------------------------------


def test_due_and_leased_triggers_are_read_when_scraped(app, client, vendor):
    hook = make_webhook(vendor)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    db.session.execute(db.update(Webhook).values(next_trigger_at=utcnow() - timedelta(seconds=90)))
    db.session.commit()
    samples = scrape(client)
    assert samples["webhookapp_triggers_due"] == 1 and samples["webhookapp_triggers_leased"] == 0
    assert 90 <= samples["webhookapp_triggers_due_oldest_seconds"] < 120
    [claim] = triggers.claim_due(10)
    samples = scrape(client)
    assert samples["webhookapp_triggers_due"] == 0 and samples["webhookapp_triggers_leased"] == 1
    assert samples["webhookapp_triggers_due_oldest_seconds"] == 0
    assert samples['webhookapp_state_up{source="database"}'] == 1 and claim.webhook.id == hook.id


@pytest.mark.skipif(bool(os.environ.get("TEST_REDIS_URL")), reason="stops Redis: needs the private redis-server")
def test_a_scrape_with_redis_down_still_answers_and_says_so(client, redis_server):
    redis_server.stop()
    try:
        samples = scrape(client)
    finally:
        redis_server.start()
    assert samples['webhookapp_state_up{source="redis"}'] == 0
    assert samples['webhookapp_state_up{source="database"}'] == 1 and "webhookapp_triggers_due" in samples
    assert not any(name.startswith("webhookapp_rq_") for name in samples)


# -- multi-process mode ------------------------------------------------------------------------


@pytest.mark.slow
def test_every_web_and_worker_process_counts_in_multiprocess_mode(app, vendor, handler, tmp_path):
    """gunicorn (two workers, gunicorn.conf.py's child_exit hook) and ``python -m workers`` share
    ``PROMETHEUS_MULTIPROC_DIR``; one scrape of the web server sees what all of them counted."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    hook = make_webhook(vendor, external_url=handler.behave("/counted"))
    token = api_token(vendor.account)
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=worker_env(app, PROMETHEUS_MULTIPROC_DIR=metrics_dir),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    worker = start_worker(app, PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        for number in range(4):  # spread over both gunicorn workers, most likely
            response = requests.post(
                f"{base}/public/v1/events",
                json={"object_class": "fulfillment_request", "product_id": hook.product_id, "id": f"order-{number}"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert response.status_code == 202
            handler.wait_for("/counted", number + 1, timeout=15)
        deadline = time.monotonic() + 15
        while True:
            samples = parse(requests.get(f"{base}/metrics", timeout=10).text)
            if samples.get('webhookapp_deliveries_total{outcome="success"}') == 4:
                break
            assert time.monotonic() < deadline, samples.get('webhookapp_deliveries_total{outcome="success"}')
            time.sleep(0.2)
    finally:
        stop(worker)
        stop(web)
    assert samples['webhookapp_events_accepted_total{duplicate="false"}'] == 4
    assert samples["webhookapp_delivery_duration_seconds_count"] == 4
    # The worker's counts come from its own files: one set per process.
    pids = {path.stem.rsplit("_", 1)[1] for path in Path(metrics_dir).glob("counter_*.db")}
    assert str(worker.pid) in pids and len(pids) >= 2
