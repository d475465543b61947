"""The Activity page: the account's audit trail, newest first, filterable by webhook (or any
object id), actor, action and time, paged by key like the Deliveries tab. Read-only: no page
changes or deletes an entry."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from webhookapp.auth.sessions import signed_in_user
from webhookapp.services import audit_queries as queries

blueprint = Blueprint("activity", __name__)
PER_PAGE = 50
MAX_POSITION = 10**12


def filters_from_request() -> queries.Filters:
    """The filters the query string names; an unknown action, or an unreadable time, is ignored."""
    action = request.args.get("action", "")
    return queries.Filters(
        object_id=request.args.get("object", "").strip()[: queries.ID_MAX],
        actor=request.args.get("actor", "").strip()[:200],
        action=action if action in queries.ACTIONS else "",
        since=queries.parse_time(request.args.get("since")),
        until=queries.parse_time(request.args.get("until"), end_of_day=True),
    )


def position() -> int | None:
    """``n``, the position the Older/Newer link knew for the page's first entry (display only)."""
    found = request.args.get("n", type=int)
    return found if found is not None and 1 <= found <= MAX_POSITION else None


def page_arguments(filters: queries.Filters) -> dict[str, str]:
    """The query string that keeps ``filters`` across the page links."""
    return {
        name: value
        for name, value in (
            ("object", filters.object_id), ("actor", filters.actor), ("action", filters.action),
            ("since", request.args.get("since", "").strip()[:40] if filters.since else ""),
            ("until", request.args.get("until", "").strip()[:40] if filters.until else ""),
        )
        if value
    }  # fmt: skip


@blueprint.get("/activity")
def index() -> str:
    account = signed_in_user().account
    filters = filters_from_request()
    entries = queries.entries_page(
        account, filters, per_page=PER_PAGE, before=request.args.get("before"), after=request.args.get("after"),
        oldest=request.args.get("at") == "oldest", first=position(),
    )  # fmt: skip
    return render_template(
        "activity/index.html", entries=entries, filters=filters, actions=queries.ACTIONS,
        actors=queries.actor_choices(account), arguments=page_arguments(filters),
    )  # fmt: skip
