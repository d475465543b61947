"""Command line (``flask --app wsgi ...``): seed-demo, accounts, users, products, tokens, secrets, events,
attempts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NoReturn

import click
from flask import Flask

from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import isoformat, utcnow
from webhookapp.engine import attempt_counts, backfills, feeds, matches
from webhookapp.infra import crypto
from webhookapp.infra.extensions import db
from webhookapp.models import Account
from webhookapp.services import accounts, secret_storage, tokens


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """A refused request (:class:`ServiceError`) ends the command with its message and exit code 1."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except ServiceError as exc:
            _fail(str(exc))

    return wrapped


@click.command("seed-demo")
@click.option("--password", default=accounts.DEMO_PASSWORD, show_default=True, help="Password for the demo users.")
@click.option("--if-empty", is_flag=True, help="Do nothing unless the database has no account yet.")
@reports_errors
def seed_demo(password: str, if_empty: bool) -> None:
    """Create a demo vendor and distributor, a user each and three products; print the logins."""
    if if_empty and not accounts.is_empty():
        click.echo("The database already has accounts; not seeding.")
        click.echo(f"Demo login, unless changed: {accounts.DEMO_ACCOUNTS[0][3]} / {accounts.DEMO_PASSWORD}")
        return
    logins = accounts.seed_demo(password)
    for login in logins:
        click.echo(f"Demo {login.kind} {login.account_id}: log in as {login.email} / {password}")


@click.group("accounts")
def accounts_group() -> None:
    """Manage accounts."""


@accounts_group.command("create")
@click.option("--kind", type=click.Choice(["vendor", "distributor"]), required=True)
@click.option("--name", required=True)
@reports_errors
def create_account(kind: str, name: str) -> None:
    """Create a vendor or distributor account; prints its id."""
    account = accounts.create_account(kind, name)
    click.echo(account.id)


@click.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.option("--account", "account_id", required=True, help="Account id, e.g. VA-123-456.")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--admin", is_flag=True, help="May open the operator pages.")
@reports_errors
def create_user(account_id: str, email: str, password: str, name: str, admin: bool) -> None:
    """Create a user who logs in with email and password."""
    user = accounts.create_user(account_id, email, password, name=name, is_admin=admin)
    click.echo(f"User {user.email} created in {user.account_id}.")


@click.group("products")
def products_group() -> None:
    """Manage products."""


@products_group.command("create")
@click.option("--vendor", "vendor_id", required=True, help="Owning vendor account, e.g. VA-123-456.")
@click.option("--name", required=True)
@click.option("--dynamic-validation", is_flag=True, help="Capability: Dynamic Validation of the Change Requests.")
@reports_errors
def create_product(vendor_id: str, name: str, dynamic_validation: bool) -> None:
    """Create a product; prints its id."""
    product = accounts.create_product(vendor_id, name, dynamic_validation=dynamic_validation)
    click.echo(product.id)


@click.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Duration(click.ParamType[timedelta, Any]):
    """A lifetime such as ``90s``, ``30m``, ``12h`` or ``30d``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip()
        number, unit = text[:-1], text[-1:]
        if unit not in DURATION_UNITS or not number.isdigit() or int(number) == 0:
            self.fail(f"'{value}' is not a lifetime: a whole number and a unit (s, m, h or d), such as 30d.",
                      param, ctx)  # fmt: skip
        try:
            return timedelta(**{DURATION_UNITS[unit]: int(number)})
        except OverflowError:
            self.fail(f"'{value}' is too long a lifetime.", param, ctx)


@tokens_group.command("create")
@click.option("--account", "account_id", required=True)
@click.option("--name", default="Command line", show_default=True)
@click.option("--platform", is_flag=True, help="A platform token: its events reach every account's webhooks.")
@click.option(
    "--scope", "scope_names", multiple=True, type=click.Choice(scopes.ALL_SCOPES),
    help="A scope of the token; repeat for more. Default: every scope.",
)  # fmt: skip
@click.option("--expires-in", type=Duration(), help="Expire after this long: 90s, 30m, 12h or 30d. Default: never.")
@reports_errors
def create_token(
    account_id: str, name: str, platform: bool, scope_names: tuple[str, ...], expires_in: timedelta | None
) -> None:
    """Create an API token; the token alone is printed on the last line."""
    account = db.session.get(Account, account_id)
    if account is None:
        _fail(f"No account {account_id}.")
    expires_at = utcnow() + expires_in if expires_in else None
    token, plain = tokens.create_token(
        account, name, platform=platform, scope_names=scope_names or None, expires_at=expires_at
    )
    kind = "Platform token" if token.is_platform else "Token"
    rights = "every scope" if token.scope_names == list(scopes.ALL_SCOPES) else "scopes " + ", ".join(token.scope_names)
    until = f", expires {isoformat(token.expires_at)}" if token.expires_at else ""
    click.echo(f"{kind} “{token.name}” created for {account.id} ({rights}{until}). It is shown once:")
    click.echo(plain)


@click.group("secrets")
def secrets_group() -> None:
    """Keys of the secrets stored encrypted (docs/operations.md, "Encryption keys")."""


@secrets_group.command("new-key")
def new_key() -> None:
    """Print a new key for WEBHOOK_ENCRYPTION_KEYS (put it first to encrypt with it)."""
    click.echo(crypto.new_key())


@secrets_group.command("reencrypt")
@click.option("--batch-size", default=secret_storage.BATCH_SIZE, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--verbose", is_flag=True, help="Say where it is after every batch.")
def reencrypt(batch_size: int, verbose: bool) -> None:
    """Rewrite every stored secret with the first key of WEBHOOK_ENCRYPTION_KEYS, in short
    transactions; then the other keys can be dropped from the list."""
    try:
        done = secret_storage.reencrypt(batch_size, progress=click.echo if verbose else None)
    except crypto.CryptoError as exc:
        _fail(str(exc))
    tables = ", ".join(f"{count} in {name}" for name, count in done.rewritten.items())
    click.echo(f"Re-encrypted the secrets of {done.total} rows under key {done.key_id} ({tables}); "
               f"{done.already} rows were under it already.")  # fmt: skip
    click.echo("Every stored secret is now under the first key: the other keys may be dropped.")


@click.group("events")
def events_group() -> None:
    """Maintenance of the stored events."""


@events_group.command("backfill-feeds")
@click.option("--batch-size", default=backfills.BATCH_SIZE, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--verbose", is_flag=True, help="Say where it is after every batch.")
def backfill_feeds(batch_size: int, verbose: bool) -> None:
    """Give the events stored before migration 0024 their rows of event_feeds (the accounts that
    see a platform token's events), in short transactions, beside the running service; stopped,
    it resumes where it was."""
    added = feeds.backfill(batch_size, progress=click.echo if verbose else None)
    click.echo(f"Event feeds backfilled: {added} rows added; every event has its rows.")


@events_group.command("backfill-matches")
@click.option("--batch-size", default=backfills.BATCH_SIZE, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--verbose", is_flag=True, help="Say where it is after every batch.")
def backfill_matches(batch_size: int, verbose: bool) -> None:
    """Note on the events stored before migration 0026 their match set (the webhooks they matched,
    together), in short transactions, beside the running service; stopped, it resumes where it
    was. Until it is done, a webhook's events are read the slower way."""
    updated = matches.backfill(batch_size, progress=click.echo if verbose else None)
    click.echo(f"Event matches backfilled: {updated} events given their set; every event has its set.")


@click.group("attempts")
def attempts_group() -> None:
    """Maintenance of the stored attempts."""


@attempts_group.command("backfill-counts")
@click.option(
    "--batch-size", default=attempt_counts.BATCH_SIZE, show_default=True, type=click.IntRange(1, 100_000)
)
@click.option("--all", "recount", is_flag=True, help="Count every webhook again (once, after a rolling upgrade).")
@click.option("--verbose", is_flag=True, help="Say where it is after every batch.")
def backfill_attempt_counts(batch_size: int, recount: bool, verbose: bool) -> None:
    """Count the stored attempts of the webhooks made before migration 0027 (of every webhook with
    --all), in short transactions, beside the running service; stopped, it resumes where it was.
    Until a webhook is counted, a deep page of its attempts is read the slower way."""
    counted = attempt_counts.backfill(batch_size, progress=click.echo if verbose else None, recount=recount)
    click.echo(f"Attempt counts backfilled: {counted} webhooks counted; every webhook has its count.")


def register(app: Flask) -> None:
    """Attach the commands to ``app.cli``."""
    groups = (seed_demo, accounts_group, users_group, products_group, tokens_group, secrets_group, events_group,
              attempts_group)
    for command in groups:
        app.cli.add_command(command)
