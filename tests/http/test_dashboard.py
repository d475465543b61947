"""rq-dashboard at /admin/rq: admins only (docs/architecture.md, "Security")."""

from __future__ import annotations

import html

import pytest
from redis import Redis
from rq import Queue

from tests.conftest import PASSWORD, make_webhook
from tests.engine import api_token, post_event
from webhookapp.engine import dispatch
from webhookapp.services import accounts

ADMIN_EMAIL = "root@acme.test"
QUEUES_JSON = "/admin/rq/0/data/queues.json"
QUEUED_JOBS_JSON = f"/admin/rq/0/data/jobs/{dispatch.QUEUE_NAME}/queued/8/asc/1.json"
SHORTCUTS = {"/admin/rq/workers": "/admin/rq/0/view/workers", "/admin/rq/queues": "/admin/rq/",
             "/admin/rq/jobs": "/admin/rq/0/view/jobs", "/admin/rq/view/workers": "/admin/rq/0/view/workers",
             "/admin/rq/0/workers": "/admin/rq/0/view/workers"}  # fmt: skip
PAGES = ["/admin/rq/", "/admin/rq/0/view/workers", QUEUES_JSON, QUEUED_JOBS_JSON, "/admin/rq/0/data/workers.json",
         *SHORTCUTS]  # fmt: skip


@pytest.fixture
def admin(vendor):
    return accounts.create_user(vendor.account.id, ADMIN_EMAIL, PASSWORD, name="Root", is_admin=True)


def webhooks_queue(app) -> Queue:
    return Queue(dispatch.QUEUE_NAME, connection=Redis.from_url(app.config["REDIS_URL"]))


@pytest.fixture
def queued_event(app, client, vendor) -> str:
    """An event posted with no worker running: one delivery job waits in the webhooks queue."""
    hook = make_webhook(vendor)
    status, _body = post_event(client, api_token(vendor.account), object_class="fulfillment_request",
                               product_id=hook.product_id)  # fmt: skip
    assert status == 202
    assert webhooks_queue(app).count == 1
    return hook.id


@pytest.mark.parametrize("url", PAGES)
def test_logged_out_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("url", PAGES)
def test_users_who_are_not_admins_get_403(client, auth, vendor, url):
    auth.login(vendor.email)
    assert client.get(url).status_code == 403


def test_an_admin_sees_the_dashboard(client, auth, admin):
    auth.login(ADMIN_EMAIL)
    response = client.get("/admin/rq/")
    assert response.status_code == 200
    assert "<title>RQ dashboard</title>" in response.get_data(as_text=True)
    assert "'unsafe-inline'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("url", SHORTCUTS)
def test_the_short_paths_lead_admins_to_the_dashboards_pages(client, auth, admin, url):
    auth.login(ADMIN_EMAIL)
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == SHORTCUTS[url]
    assert client.get(response.headers["Location"]).status_code == 200


@pytest.mark.parametrize("url", ["/admin/rq/", "/admin/rq/0/view/workers", "/admin/rq/0/view/jobs"])
def test_the_dashboards_pages_link_back_to_the_app_and_bring_its_dark_style(client, auth, admin, url):
    auth.login(ADMIN_EMAIL)
    page = client.get(url).get_data(as_text=True)
    assert '<link rel="stylesheet" href="/static/css/dashboard.css">' in page.split("</head>")[0]
    body = page.split("<body>", 1)[1]
    assert body.lstrip().startswith('<nav class="app-return" aria-label="webhookapp"><a href="/webhooks">')
    with client.get("/static/css/dashboard.css") as style:
        assert style.status_code == 200
    assert client.get(QUEUES_JSON).get_json()["queues"] is not None  # its data: untouched


def test_only_admins_see_the_queues_link(client, auth, vendor, admin):
    auth.login(vendor.email)
    page = html.unescape(client.get("/webhooks").get_data(as_text=True))
    assert "Queues" not in page and "/admin/rq" not in page
    assert "'unsafe-inline'" not in client.get("/webhooks").headers["Content-Security-Policy"]
    auth.logout()
    auth.login(ADMIN_EMAIL)
    page = html.unescape(client.get("/webhooks").get_data(as_text=True))
    assert '<a href="/admin/rq/">Queues</a>' in page


def test_the_queues_json_lists_the_waiting_delivery_job(client, auth, admin, queued_event):
    auth.login(ADMIN_EMAIL)
    response = client.get(QUEUES_JSON)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    queues = {queue["name"]: queue for queue in response.get_json()["queues"]}
    assert queues[dispatch.QUEUE_NAME]["count"] == 1
    assert queues[dispatch.QUEUE_NAME]["failed_job_registry_count"] == 0


def test_the_jobs_json_describes_the_waiting_delivery_job(client, auth, admin, queued_event):
    auth.login(ADMIN_EMAIL)
    response = client.get(QUEUED_JOBS_JSON)
    assert response.status_code == 200
    [job] = response.get_json()["jobs"]
    assert dispatch.DELIVER_JOB in job["description"] and queued_event in job["description"]
    detail = client.get(f"/admin/rq/0/data/job/{job['id']}.json")
    assert detail.status_code == 200 and detail.get_json()["status"] == "queued"


def test_the_workers_json_answers_for_admins(client, auth, admin):
    auth.login(ADMIN_EMAIL)
    response = client.get("/admin/rq/0/data/workers.json")
    assert response.status_code == 200 and response.get_json()["workers"] == []


def test_a_non_admin_cannot_empty_or_delete_through_the_dashboard(app, client, auth, vendor, queued_event):
    [job_id] = webhooks_queue(app).job_ids
    auth.login(vendor.email)
    assert client.post(f"/admin/rq/queue/{dispatch.QUEUE_NAME}/queued/empty").status_code == 403
    assert client.post(f"/admin/rq/job/{job_id}/delete").status_code == 403
    assert client.post(f"/admin/rq/requeue/{dispatch.QUEUE_NAME}").status_code == 403
    assert webhooks_queue(app).job_ids == [job_id]


def test_a_logged_out_visitor_cannot_empty_the_queue(app, client, queued_event):
    response = client.post(f"/admin/rq/queue/{dispatch.QUEUE_NAME}/queued/empty")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert webhooks_queue(app).count == 1


def test_dashboard_actions_need_a_page_of_this_site_as_their_origin(app, client, auth, admin, queued_event):
    [job_id] = webhooks_queue(app).job_ids
    auth.login(ADMIN_EMAIL)
    empty = f"/admin/rq/queue/{dispatch.QUEUE_NAME}/queued/empty"
    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/admin/rq/"},
                    {"Origin": "http://localhost:8080"}):  # fmt: skip
        assert client.post(empty, headers=headers).status_code == 403, headers
        assert client.post(f"/admin/rq/job/{job_id}/delete", headers=headers).status_code == 403, headers
    assert webhooks_queue(app).job_ids == [job_id]
    assert client.post(f"/admin/rq/job/{job_id}/delete", headers={"Origin": "http://localhost"}).status_code == 200
    assert webhooks_queue(app).job_ids == []


def test_requeueing_takes_a_post(client, auth, admin):
    auth.login(ADMIN_EMAIL)
    assert client.get(f"/admin/rq/requeue/{dispatch.QUEUE_NAME}").status_code == 405
    response = client.post(f"/admin/rq/requeue/{dispatch.QUEUE_NAME}", headers={"Referer": "http://localhost/admin/rq/"})
    assert response.status_code == 200 and response.get_json()["status"] == "OK"
