"""The OpenAPI paths of the webhooks resource: the Connect-compatible webhooks, Trigger Now,
secret rotation, the attempt log and Redeliver (:mod:`.openapi`)."""

from __future__ import annotations

from typing import Any

from webhookapp.api.openapi_parts import content, error, json_errors, operation, page, parameter, rql, shared
from webhookapp.api.openapi_schemas import ref
from webhookapp.api.webhook_views import ATTEMPT_FIELDS, WEBHOOK_FIELDS
from webhookapp.core import scopes

READ = (scopes.WEBHOOKS_READ,)
WRITE = (scopes.WEBHOOKS_WRITE,)
SECRETS = (scopes.WEBHOOKS_WRITE, scopes.WEBHOOKS_SECRETS)

WEBHOOK_PATH = "/notifications/webhooks/{webhook_id}"


def webhook_paths() -> dict[str, Any]:
    webhook = {"description": "The webhook.", "content": content(ref("Webhook"))}
    item_parameters = [parameter("webhook_id")]
    return {
        "/notifications/webhooks": {
            "get": operation(
                "listWebhooks",
                "webhooks",
                "List webhooks",
                {"200": page("Webhook", "A page of the account's webhooks."), "400": shared("RQLRefused")},
                parameters=[parameter("limit"), parameter("offset"), parameter("search")],
                description=rql(
                    "the account's webhooks",
                    WEBHOOK_FIELDS,
                    "and(eq(active,true),ilike(label,*erp*))&ordering(label)&limit=10",
                ),
                needs=READ,
            ),
            "post": operation(
                "createWebhook",
                "webhooks",
                "Create a webhook",
                {"201": {"description": "Created.", "content": content(ref("Webhook"))}, **json_errors()},
                body="WebhookCreate",
                description="An unusable product or type is a 400 (VAL_001) naming the field.",
                needs=WRITE,
            ),
        },
        WEBHOOK_PATH: {
            "parameters": item_parameters,
            "get": operation(
                "getWebhook",
                "webhooks",
                "Get a webhook",
                {"200": webhook, "404": shared("WebhookNotFound")},
                needs=READ,
            ),
            "put": operation(
                "updateWebhook",
                "webhooks",
                "Update a webhook (partial)",
                {"200": webhook, **json_errors(), "404": shared("WebhookNotFound")},
                body="WebhookUpdate",
                needs=WRITE,
            ),
            "delete": operation(
                "deleteWebhook",
                "webhooks",
                "Delete a webhook and its attempt log",
                {"204": {"description": "Deleted."}, "404": shared("WebhookNotFound")},
                needs=WRITE,
            ),
        },
        f"{WEBHOOK_PATH}/trigger": {
            "parameters": item_parameters,
            "post": operation(
                "triggerWebhook",
                "webhooks",
                "Trigger Now",
                {
                    "200": {
                        "description": "An event webhook: counted as an event, its pending trigger due now (an "
                        "out-of-order webhook is re-enabled). A validation webhook: a sample request was posted to "
                        "its handler, and the answer, whatever it was, is returned with the webhook.",
                        "content": content({"oneOf": [ref("Webhook"), ref("ValidationTriggerAnswer")]}),
                    },
                    "400": error("The webhook is disabled: enable it first.", "VAL_001"),
                    "404": shared("WebhookNotFound"),
                },
                description="Takes no body.",
                needs=WRITE,
            ),
        },
        f"{WEBHOOK_PATH}/next-secret": {
            "parameters": item_parameters,
            "post": operation(
                "generateNextSecret",
                "webhooks",
                "Generate (or set) the next secret",
                {"200": webhook, **json_errors(), "404": shared("WebhookNotFound")},
                description="Staged rotation: keeps a next secret beside the current one; deliveries are still "
                "signed with jwt_secret. Without a body (or with `{}`) a strong secret is generated; "
                '`{"jwt_secret_next": "..."}` sets one. Replaces an earlier next secret.',
                requestBody={"required": False, "content": content(ref("NextSecret"))},
                needs=SECRETS,
            ),
            "delete": operation(
                "discardNextSecret",
                "webhooks",
                "Discard the next secret",
                {"200": webhook, "404": shared("WebhookNotFound")},
                description="The current secret stays in use. Nothing happens when there is no next secret.",
                needs=WRITE,
            ),
        },
        f"{WEBHOOK_PATH}/next-secret/switch": {
            "parameters": item_parameters,
            "post": operation(
                "switchToNextSecret",
                "webhooks",
                "Switch to the next secret",
                {
                    "200": webhook,
                    "400": error("There is no next secret to switch to.", "VAL_001"),
                    "404": shared("WebhookNotFound"),
                },
                description="Deliveries signed from now on use the next secret, which becomes jwt_secret; the old "
                "one is dropped. Takes no body.",
                needs=SECRETS,
            ),
        },
        f"{WEBHOOK_PATH}/attempts": {
            "parameters": item_parameters,
            "get": operation(
                "listAttempts",
                "webhooks",
                "List delivery attempts",
                {
                    "200": page("Attempt", "A page of the webhook's attempts."),
                    "400": shared("RQLRefused"),
                    "404": shared("WebhookNotFound"),
                },
                parameters=[parameter("limit"), parameter("offset")],
                description=rql(
                    "the webhook's delivery and validation attempts", ATTEMPT_FIELDS, "eq(success,false)&limit=10"
                ),
                needs=READ,
            ),
        },
        f"{WEBHOOK_PATH}/attempts/{{attempt_id}}/redeliver": {
            "parameters": [*item_parameters, parameter("attempt_id")],
            "post": operation(
                "redeliverAttempt",
                "webhooks",
                "Redeliver an attempt",
                {
                    "201": {
                        "description": "Sent again and recorded, whatever the handler answered: the new attempt, "
                        "its redelivery_of set.",
                        "content": content(ref("Attempt")),
                    },
                    "400": error(
                        "The webhook is disabled (enable it first), or a validation attempt's recorded body is "
                        "not a JSON object.",
                        "VAL_001",
                    ),
                    "404": error(
                        "No such webhook in the token's account, or no such attempt of it.", "WH_404", "ATT_404"
                    ),
                },
                description="Sends the attempt's request again now, with the webhook's current HTTP settings and a "
                "freshly signed JWT, and waits for the answer (at most the validation timeout). A trigger's attempt "
                "is sent with a trigger's payload; a validation's, with the request body it recorded. It counts no "
                "event and changes neither the statistics nor the retry schedule. Takes no body.",
                needs=WRITE,
            ),
        },
    }
