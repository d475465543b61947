"""The Handler code tab's snippets, run for real: each is rendered for a webhook, started as a
process on 127.0.0.1 (Python from this virtualenv, Node.js with the packages pinned in
``tests/handlers/package-lock.json``), and called by the service's own deliveries. A snippet that
does not accept a good delivery, or accepts a bad one, fails here."""

from __future__ import annotations

import html
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import ROOT, api_token, post_event, run_worker, stop
from tests.servers import free_port
from webhookapp.core.times import utcnow
from webhookapp.engine import signing
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.webhooks import snippets

HANDLERS = ROOT / "tests" / "handlers"
OTHER_SECRET = "not-the-secret-the-handler-was-given-at-all"
LANGUAGES = ["python", "node"]


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``tests/handlers/node_modules``, installed with ``npm ci`` when missing or older than the lock."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        message = "Node.js is not installed (node and npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the Node.js handler tests.")
        pytest.skip(message)
    modules = HANDLERS / "node_modules"
    installed = modules / ".package-lock.json"  # written by npm with what it installed
    if not installed.exists() or installed.stat().st_mtime < (HANDLERS / "package-lock.json").stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HANDLERS, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    return modules


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> dict[str, str]:
    """How to run the language's snippet: the interpreter and its environment."""
    if request.param == "python":
        return {"key": "python", "command": sys.executable}
    modules = request.getfixturevalue("node_modules")
    return {"key": "node", "command": shutil.which("node"), "NODE_PATH": str(modules)}


@contextmanager
def running(
    snippet: snippets.Snippet, runtime: dict[str, str], port: int, secret: str, folder: Path, next_secret: str = ""
) -> Iterator[str]:
    """The snippet as a process listening on ``port`` (``next_secret``: the one of a rotation);
    yields its output so far, on failure."""
    source = folder / snippet.filename
    source.write_text(snippet.code)
    env = {**os.environ, snippets.SECRET_ENV: secret, "PORT": str(port)}
    if next_secret:
        env[f"{snippets.SECRET_ENV}_NEXT"] = next_secret
    if "NODE_PATH" in runtime:
        env["NODE_PATH"] = runtime["NODE_PATH"]
    log_path = folder / f"{snippet.key}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([runtime["command"], str(source)], cwd=folder, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"The {snippet.key} handler did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
        yield str(log_path)
    finally:
        stop(process)


def snippet_for(hook: Webhook, key: str) -> snippets.Snippet:
    return next(snippet for snippet in snippets.render(hook) if snippet.key == key)


def last_attempt(hook_id: str) -> Attempt:
    db.session.expire_all()
    query = db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id.desc())
    return db.session.scalars(query).first()


def trigger_now(app, client, hook_id: str) -> Attempt:
    """Trigger Now (a trigger due now, or a validation's sample), delivered by a worker."""
    before = last_attempt(hook_id)
    assert client.post(f"/webhooks/{hook_id}/trigger").status_code == 302
    run_worker(app)
    attempt = last_attempt(hook_id)
    assert attempt is not None and attempt is not before
    return attempt


def set_secret(hook_id: str, secret: str) -> None:
    db.session.get(Webhook, hook_id).jwt_secret = secret
    db.session.commit()


def call(port: int, path: str, token: str, body: object) -> int:
    """Send the handler a request of our own making; its HTTP status."""
    data = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_post_handler_accepts_deliveries_and_refuses_a_wrong_or_expired_jwt(
    app, client, auth, vendor, runtime, tmp_path
):
    port = free_port()
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/hooks/orders", data={"purpose": "demo"})
    secret = hook.jwt_secret  # the handler's; the row's changes below
    auth.login()
    with running(snippet_for(hook, runtime["key"]), runtime, port, secret, tmp_path):
        post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
        run_worker(app)
        delivered = last_attempt(hook.id)
        assert (delivered.success, delivered.response_status) == (True, 200), delivered.error
        assert json.loads(delivered.response_body) == {"ok": True}

        set_secret(hook.id, OTHER_SECRET)  # the service now signs with a secret the handler does not know
        wrong = trigger_now(app, client, hook.id)
        assert (wrong.success, wrong.response_status) == (False, 401)

        set_secret(hook.id, secret)
        app.config["WEBHOOK_PROCESSING_TIMEOUT"] = -120  # exp = triggered_at - 2 minutes: expired on arrival
        expired = trigger_now(app, client, hook.id)
        assert (expired.success, expired.response_status) == (False, 401)
        app.config["WEBHOOK_PROCESSING_TIMEOUT"] = 600
        assert trigger_now(app, client, hook.id).success

        # What the service never sends, sent by hand: a JWT without exp, a body that is not the claims.
        payload = json.loads(delivered.request_body)
        no_exp = jwt.encode(payload, secret, algorithm="HS256", headers={"typ": "JWT"})
        assert call(port, "/hooks/orders", no_exp, payload) == 401
        good = signing.sign(payload, secret, triggered_at=utcnow(), processing_timeout=600)
        assert call(port, "/hooks/orders", good, payload) == 200
        assert call(port, "/hooks/orders", good, {**payload, "product_id": "PRD-000-000-999"}) == 400
        past = signing.sign(payload, secret, triggered_at=utcnow() - timedelta(hours=1), processing_timeout=600)
        assert call(port, "/hooks/orders", past, payload) == 401


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_handler_given_the_next_secret_too_works_through_a_staged_rotation(
    app, client, auth, vendor, runtime, tmp_path
):
    port = free_port()
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/hooks/orders")
    current = hook.jwt_secret
    auth.login()
    assert client.post(f"/webhooks/{hook.id}/secret/next").status_code == 302  # Generate next secret
    db.session.expire_all()
    following = db.session.get(Webhook, hook.id).jwt_secret_next
    with running(snippet_for(hook, runtime["key"]), runtime, port, current, tmp_path, next_secret=following):
        assert trigger_now(app, client, hook.id).success  # signed with the current secret
        assert client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"}).status_code == 302
        after = trigger_now(app, client, hook.id)  # signed with the next one, now current
        assert (after.success, after.response_status) == (True, 200), after.error
    with running(snippet_for(hook, runtime["key"]), runtime, port, current, tmp_path):  # not given the next one
        assert trigger_now(app, client, hook.id).response_status == 401


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_get_handler_reads_the_jwt_alone(app, client, auth, vendor, runtime, tmp_path):
    port = free_port()
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/get-hook?from=connect", http_method="GET")
    auth.login()
    with running(snippet_for(hook, runtime["key"]), runtime, port, hook.jwt_secret, tmp_path):
        post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
        run_worker(app)
        delivered = last_attempt(hook.id)
        assert (delivered.request_method, delivered.success, delivered.response_status) == ("GET", True, 200)
        set_secret(hook.id, OTHER_SECRET)
        assert trigger_now(app, client, hook.id).response_status == 401


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_validation_handler_answers_the_draft(app, client, auth, vendor, runtime, tmp_path):
    port = free_port()
    hook = make_webhook(vendor, type_key="fulfillment_request.validator", product_id=vendor.products[1].id,
                        external_url=f"http://127.0.0.1:{port}/validate")  # fmt: skip
    auth.login()
    with running(snippet_for(hook, runtime["key"]), runtime, port, hook.jwt_secret, tmp_path):
        answered = trigger_now(app, client, hook.id)  # Trigger Now sends a sample draft
        assert (answered.success, answered.response_status) == (True, 200), answered.error
        assert json.loads(answered.response_body) == json.loads(answered.request_body)
        set_secret(hook.id, OTHER_SECRET)
        refused = trigger_now(app, client, hook.id)
        assert (refused.success, refused.response_status) == (False, 401)


def test_the_tab_shows_both_snippets_escaped_with_copy_buttons(client, auth, vendor):
    hook = make_webhook(vendor, label='Orders </code><script>alert("x")</script>',
                        external_url="https://handler.example.com/hooks/orders?token=<x>")  # fmt: skip
    auth.login()
    response = client.get(f"/webhooks/{hook.id}?tab=handler")
    assert response.status_code == 200
    raw = response.get_data(as_text=True)
    main = raw.split('<main id="main"', 1)[1]
    assert "<script>" not in main and "</code><script>" not in main
    assert '<a href="/webhooks/' in raw and 'aria-current="page">Handler code</a>' in raw
    for snippet in snippets.render(hook):
        shown = html.unescape(raw.split(f'<code id="snippet-{snippet.key}">', 1)[1].split("</code></pre>", 1)[0])
        assert shown == snippet.code
        assert f'data-copy-from="snippet-{snippet.key}" hidden>Copy' in raw
        assert '@app.route("/hooks/orders", methods=["POST"])' in shown or 'app.post("/hooks/orders"' in shown
        assert 'Orders </code><script>alert(\\"x\\")</script>' in shown  # a JSON literal, in a comment
        assert "WEBHOOK_SECRET" in shown and '"HS256"' in shown


def test_tabs_keep_their_order(client, auth, vendor):
    get_hook = make_webhook(vendor, http_method="GET")
    auth.login()
    text = client.get(f"/webhooks/{get_hook.id}?tab=handler").get_data(as_text=True)
    labels = [label for label in ("Statistics", "HTTP Settings", "Custom Data", "Handler code", "Deliveries")
              if f">{label}</a>" in text]  # fmt: skip
    assert labels == ["Statistics", "HTTP Settings", "Handler code", "Deliveries"]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://h.test", "/"),
        ("https://h.test/a/b-c_d.e~f/", "/a/b-c_d.e~f/"),
        ("https://h.test/hook?x=1#y", "/hook"),
        ("https://h.test/<int:id>", None),
        ("https://h.test/:id", None),
        ("https://h.test/a%20b", None),
        ("https://h.test/a*(b)", None),
    ],
)
def test_a_path_is_routed_literally_or_not_at_all(url, path):
    assert snippets.route_path(url) == path


def test_a_path_that_is_route_syntax_gets_a_plain_route_and_a_note(app, vendor):
    hook = make_webhook(vendor, external_url="https://h.test/hooks/:id")
    for snippet in snippets.render(hook):
        assert '"/webhook"' in snippet.code and ":id" not in snippet.code.split("\n", 3)[3]
        assert "route it here yourself" in snippet.code
