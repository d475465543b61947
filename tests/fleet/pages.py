"""A person at the pages during a PostgreSQL failover: a browser-like client on the ``client``
host, signed in through the login form (CSRF token and all), asking for the webhooks list and
sending the new-token form while no server takes writes.

What is right then (docs/operations.md, "The fleet test"): the form gets the 503 page, with
``Retry-After`` and "briefly unavailable"; the list gets the same, or the list itself if a
server still answered the reads (the fleet's URL asks for a writable one, so in practice none
does). A 500, a traceback or anything else fails the run.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from collections import Counter

import requests

from tests.conftest import PASSWORD
from tests.fleet import hosts
from tests.fleet.cluster import WEB_PORT
from tests.fleet.load import session
from webhookapp.core import scopes

SITE = f"http://{hosts.address('web')}:{WEB_PORT}"
BRIEFLY = "The service is briefly unavailable"


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Browser:
    """One signed-in person; ``seen`` counts the statuses of the checks made during outages."""

    def __init__(self, email: str) -> None:
        self.http = session()
        self.seen: Counter[int] = Counter()
        login = self.call("GET", "/login")
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf_token(login.text)}
        signed_in = self.call("POST", "/login", data=form)
        assert signed_in.status_code == 302, f"login answered {signed_in.status_code}: {signed_in.text[:300]}"
        self.form_token = ""

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """One request, redirects not followed. Production's cookies are Secure, which a browser
        sends over HTTPS only; the fleet has no TLS proxy before gunicorn, so this client keeps
        them as plain ones and sends them over the hosts' HTTP, as a browser would through one."""
        response = self.http.request(method, f"{SITE}{path}", timeout=30, allow_redirects=False, **kwargs)
        for cookie in self.http.cookies:
            cookie.secure = False
        return response

    def ready(self) -> None:
        """Open the new-token form while the database is up, as a person would before sending it."""
        page = self.call("GET", "/settings/tokens")
        assert page.status_code == 200, f"the tokens page answered {page.status_code}"
        self.form_token = csrf_token(page.text)
        self.seen.clear()

    def during_outage(self, rounds: int = 3) -> list[str]:
        """The list and the form, ``rounds`` times, while no server takes writes; what was wrong."""
        problems = []
        for _ in range(rounds):
            problems += self.once_during_outage()
            time.sleep(0.2)
        return problems

    def once_during_outage(self) -> list[str]:
        """One look at the list and one send of the form."""
        listed = self.call("GET", "/webhooks")
        form = {"name": f"fleet {secrets.token_hex(4)}", "scopes": list(scopes.ALL_SCOPES),
                "creation_key": secrets.token_hex(16), "csrf_token": self.form_token}  # fmt: skip
        sent = self.call("POST", "/settings/tokens", data=form)
        self.seen.update([listed.status_code, sent.status_code])
        problems = [] if listing(listed) else briefly_unavailable(listed)
        return [f"GET /webhooks: {text}" for text in problems] + [
            f"POST /settings/tokens: {text}" for text in briefly_unavailable(sent)
        ]

    def after_outage(self, tries: int = 5) -> list[str]:
        """The list once a primary is back, the session having outlived the failover (a 503 page
        asks to come back: a few tries, a second apart)."""
        for _ in range(tries):
            listed = self.call("GET", "/webhooks")
            if listing(listed):
                return []
            if briefly_unavailable(listed):
                return [f"GET /webhooks after the failover answered {listed.status_code}: {listed.text[:300]!r}"]
            time.sleep(1)
        return [f"GET /webhooks still briefly unavailable {tries} s after the failover"]


def listing(response: requests.Response) -> bool:
    """The webhooks list itself, naming some of the fleet's webhooks."""
    return response.status_code == 200 and re.search(r"Fleet \d+", response.text) is not None


def briefly_unavailable(response: requests.Response) -> list[str]:
    """Empty if ``response`` is the 503 page that says to come back in a few seconds."""
    page = html.unescape(response.text)
    wrong = []
    if response.status_code != 503:
        wrong.append(f"answered {response.status_code}, not 503")
    if not response.headers.get("Retry-After", "").isdigit():
        wrong.append("no Retry-After")
    if BRIEFLY not in page or "Briefly unavailable" not in page:
        wrong.append("not the briefly-unavailable page")
    if "Traceback" in page:
        wrong.append("a traceback on the page")
    return [f"{'; '.join(wrong)}: {page[:300]!r}"] if wrong else []
