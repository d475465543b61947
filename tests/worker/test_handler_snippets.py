"""The Handler code tab's snippets, run for real: each is taken from the tab as the page shows it,
saved and started with its own run line (its environment and command, the secret pasted in; Python
from this virtualenv, Node.js with the packages pinned in ``tests/handlers/package-lock.json``),
and called by the service's own deliveries at the webhook's URL (127.0.0.1, a free port). A
snippet that does not listen where the webhook calls, does not accept a good delivery, or accepts
a bad one, fails here."""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shlex
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
from urllib.parse import urlsplit

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import ROOT, api_token, post_event, run_worker, stop
from tests.servers import free_port, status_of
from webhookapp.core.times import utcnow
from webhookapp.engine import signing
from webhookapp.engine.types import snapshot
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
    # One install at a time: under `pytest -n` each worker process asks for the folder.
    with open(HANDLERS / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < (HANDLERS / "package-lock.json").stat().st_mtime:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HANDLERS, check=True, timeout=600,
                           stdout=subprocess.DEVNULL)  # fmt: skip
    return modules


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> dict[str, str]:
    """The language's snippet and what its Needs line installs (Node.js: the packages' folder)."""
    if request.param == "python":
        return {"key": "python"}
    return {"key": "node", "NODE_PATH": str(request.getfixturevalue("node_modules"))}


def shown_snippets(client, hook_id: str) -> dict[str, str]:
    """The Handler code tab's snippets as the page shows them, by key (``python``, ``node``)."""
    raw = client.get(f"/webhooks/{hook_id}?tab=handler").get_data(as_text=True)
    shown = {}
    for snippet in re.finditer(r'<code id="snippet-(\w+)">(.*?)</code></pre>', raw, re.S):
        shown[snippet[1]] = html.unescape(snippet[2])
    return shown


def run_line(code: str, secret: str) -> tuple[dict[str, str], list[str]]:
    """The snippet's ``Run:`` comment as a shell would take it, the secret pasted in where it
    says: its environment assignments and its command."""
    line = next(line for line in code.splitlines() if line.lstrip("#/ ").startswith("Run:"))
    words = shlex.split(line.split("Run:", 1)[1].replace("the JWT secret", secret).replace("the whsec_ secret", secret))
    assignments = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    return assignments, words


@contextmanager
def running(
    client, hook: Webhook, runtime: dict[str, str], secret: str, folder: Path, next_secret: str = ""
) -> Iterator[str]:
    """The snippet the Handler code tab shows for ``hook``, saved under its file name and run
    with its run line as shown (``next_secret``: set as its comment says, during a rotation);
    waits until it listens where the webhook's URL says, and yields its output so far."""
    code = shown_snippets(client, hook.id)[runtime["key"]]
    assignments, command = run_line(code, secret)
    (folder / command[-1]).write_text(code)  # saved under the name the run line runs
    # The interpreter the run line names, as a shell finds it: this virtualenv's python, the node on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("HOST", None)
    env.pop("PORT", None)
    env.update(assignments)
    if next_secret:
        env[f"{snippets.SECRET_ENV}_NEXT"] = next_secret
    if "NODE_PATH" in runtime:
        env["NODE_PATH"] = runtime["NODE_PATH"]  # where npm install put the packages
    address = urlsplit(hook.external_url)
    log_path = folder / f"{runtime['key']}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection((address.hostname, address.port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"The {runtime['key']} handler did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
        yield str(log_path)
    finally:
        stop(process)


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
    return status_of(request)


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_post_handler_accepts_deliveries_and_refuses_a_wrong_or_expired_jwt(
    app, client, auth, vendor, runtime, tmp_path
):
    port = free_port()
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/hooks/orders", data={"purpose": "demo"})
    secret = hook.jwt_secret  # the handler's; the row's changes below
    auth.login()
    with running(client, hook, runtime, secret, tmp_path):
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
    with running(client, hook, runtime, current, tmp_path, next_secret=following):
        assert trigger_now(app, client, hook.id).success  # signed with the current secret
        assert client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"}).status_code == 302
        after = trigger_now(app, client, hook.id)  # signed with the next one, now current
        assert (after.success, after.response_status) == (True, 200), after.error
    with running(client, hook, runtime, current, tmp_path):  # not given the next one
        assert trigger_now(app, client, hook.id).response_status == 401


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_get_handler_reads_the_jwt_alone(app, client, auth, vendor, runtime, tmp_path):
    port = free_port()
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/get-hook?from=connect", http_method="GET")
    auth.login()
    with running(client, hook, runtime, hook.jwt_secret, tmp_path):
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
    with running(client, hook, runtime, hook.jwt_secret, tmp_path):
        answered = trigger_now(app, client, hook.id)  # Trigger Now sends a sample draft
        assert (answered.success, answered.response_status) == (True, 200), answered.error
        assert json.loads(answered.response_body) == json.loads(answered.request_body)
        set_secret(hook.id, OTHER_SECRET)
        refused = trigger_now(app, client, hook.id)
        assert (refused.success, refused.response_status) == (False, 401)


def send(port: int, path: str, call) -> int:
    """Send the handler a request built by the service's signing, perhaps altered; its HTTP status."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=call.body, headers=call.headers,
                                     method=call.method)  # fmt: skip
    return status_of(request)


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_a_standard_webhooks_handler_verifies_and_refuses_tampering_age_and_other_secrets(
    app, client, auth, vendor, runtime, tmp_path
):
    port = free_port()
    hook = make_webhook(vendor, signature_format="standard", external_url=f"http://127.0.0.1:{port}/hooks/std",
                        data={"purpose": "demo"})  # fmt: skip
    secret = hook.jwt_secret
    auth.login()
    with running(client, hook, runtime, secret, tmp_path):
        post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
        run_worker(app)
        delivered = last_attempt(hook.id)
        assert (delivered.success, delivered.response_status) == (True, 200), delivered.error

        good = signing.build_call(snapshot(db.session.get(Webhook, hook.id)), triggered_at=utcnow(), api_url=None)
        assert send(port, "/hooks/std", good) == 200
        good.body = good.body.replace(b'"demo"', b'"dem0"')
        assert send(port, "/hooks/std", good) == 401  # a tampered body
        old = signing.build_call(snapshot(db.session.get(Webhook, hook.id)),
                                 triggered_at=utcnow() - timedelta(minutes=5, seconds=5), api_url=None)  # fmt: skip
        assert send(port, "/hooks/std", old) == 401  # a timestamp five minutes old

        set_secret(hook.id, signing.new_standard_secret())  # a secret the handler does not know
        wrong = trigger_now(app, client, hook.id)
        assert (wrong.success, wrong.response_status) == (False, 401)
        set_secret(hook.id, secret)

    # During a rotation both signatures are sent: a handler that knows either secret verifies.
    assert client.post(f"/webhooks/{hook.id}/secret/next").status_code == 302
    db.session.expire_all()
    following = db.session.get(Webhook, hook.id).jwt_secret_next
    assert following.startswith("whsec_")
    for known in (secret, following):
        with running(client, hook, runtime, known, tmp_path):
            assert trigger_now(app, client, hook.id).success


@pytest.mark.parametrize("runtime", LANGUAGES, indirect=True)
@pytest.mark.slow
def test_standard_webhooks_get_and_validation_handlers(app, client, auth, vendor, runtime, tmp_path):
    auth.login()
    port = free_port()
    get_hook = make_webhook(vendor, signature_format="standard", http_method="GET",
                            external_url=f"http://127.0.0.1:{port}/get-hook")  # fmt: skip
    with running(client, get_hook, runtime, get_hook.jwt_secret, tmp_path):
        delivered = trigger_now(app, client, get_hook.id)
        assert (delivered.request_method, delivered.success, delivered.response_status) == ("GET", True, 200)
        set_secret(get_hook.id, signing.new_standard_secret())
        assert trigger_now(app, client, get_hook.id).response_status == 401
    port = free_port()
    hook = make_webhook(vendor, signature_format="standard", type_key="fulfillment_request.validator",
                        product_id=vendor.products[1].id, external_url=f"http://127.0.0.1:{port}/validate")  # fmt: skip
    with running(client, hook, runtime, hook.jwt_secret, tmp_path):
        answered = trigger_now(app, client, hook.id)
        assert (answered.success, answered.response_status) == (True, 200), answered.error
        assert json.loads(answered.response_body) == json.loads(answered.request_body)
        set_secret(hook.id, signing.new_standard_secret())
        assert trigger_now(app, client, hook.id).response_status == 401


def test_a_standard_webhook_shows_the_standard_webhooks_snippets(client, auth, vendor):
    hook = make_webhook(vendor, signature_format="standard", external_url="https://handler.example.com/hooks/orders")
    auth.login()
    shown = shown_snippets(client, hook.id)
    assert "from standardwebhooks.webhooks import Webhook" in shown["python"]
    assert 'require("standardwebhooks")' in shown["node"]
    assert all("jwt" not in code.lower() for code in shown.values())
    for snippet in snippets.render(hook):
        assert run_line(snippet.code, "whsec_x")[0][snippets.SECRET_ENV] == "whsec_x"


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


@pytest.mark.parametrize(
    ("url", "host", "port", "notes"),
    [
        ("http://127.0.0.1:8765/webhook", "127.0.0.1", 8765, []),
        ("http://localhost:8000/hook", "localhost", 8000, []),
        ("http://[::1]:9000/", "::1", 9000, []),
        ("http://127.0.0.1/hook", "127.0.0.1", 80, ["below 1024"]),
        ("http://10.1.2.3:8080/hook", "0.0.0.0", 8080, ['every interface: the webhook calls "10.1.2.3"']),
        ("https://handler.example.com/hook", "0.0.0.0", 443,
         ['every interface: the webhook calls "handler.example.com"', "terminate TLS in front of it"]),
        ("https://handler.example.com:8443/hook", "0.0.0.0", 8443, ["port 8443) and set PORT"]),
    ],
)  # fmt: skip
def test_the_run_line_and_the_defaults_listen_where_the_url_points(app, vendor, url, host, port, notes):
    hook = make_webhook(vendor, external_url=url)
    for snippet in snippets.render(hook):
        assert run_line(snippet.code, "s3cret") == (
            {snippets.SECRET_ENV: "s3cret", "HOST": host, "PORT": str(port)},
            ["python" if snippet.key == "python" else "node", snippet.filename],
        )
        tail = snippet.code.rsplit("\n", 4)[1:]  # the defaults, when HOST and PORT are not set
        assert any(f'"{host}"' in line for line in tail) and any(str(port) in line for line in tail)
        header = snippet.code.split("import" if snippet.key == "python" else '"use strict"', 1)[0]
        for note in notes:
            assert note in header.replace("\n// ", " ").replace("\n# ", " ")
        assert ("every interface" in header) == (host == "0.0.0.0")
