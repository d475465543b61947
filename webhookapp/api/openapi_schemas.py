"""``components.schemas`` and ``.parameters`` of the OpenAPI document (:mod:`.openapi`), built from the code.

Enums come from the catalog and the field rules, the writable and read-only fields from the
serializers, so the document cannot drift from what the API accepts and returns.
"""

from __future__ import annotations

from typing import Any

from webhookapp.api import serializers
from webhookapp.core import catalog, rules
from webhookapp.engine import ingest
from webhookapp.engine.direct.validations import ANSWER_STATUSES
from webhookapp.engine.transport import client_tls

JSON_TYPES = {str: "string", bool: "boolean", dict: "object"}
DATE_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 in UTC with +00:00."}
ANY_JSON: dict[str, Any] = {}  # JSON Schema `{}` accepts every JSON value
EVENT_TYPES = sorted({entry.type for entry in catalog.CATALOG if entry.kind == catalog.EVENT})
VALIDATION_TYPES = sorted({entry.type for entry in catalog.CATALOG if entry.kind == catalog.VALIDATION})
WEBHOOK_TYPES = EVENT_TYPES + VALIDATION_TYPES
ANSWERED = f"The handler answered JSON with a 2xx status or {' or '.join(map(str, ANSWER_STATUSES))}."
CONNECT_PRODUCT = "product"  # Connect clients send product {id[, name]} instead of product_id


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    if "type" in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def closed(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """An object with exactly these properties (all required unless ``required`` says otherwise)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


def field_schemas() -> dict[str, dict[str, Any]]:
    """The writable webhook fields with the rules of ``webhookapp.core.rules``."""
    forbidden = ", ".join(sorted(rules.FORBIDDEN_HEADERS))
    return {
        "label": {"type": "string", "minLength": 1, "maxLength": rules.LABEL_MAX, "description": "The Name."},
        "description": {"type": "string", "maxLength": rules.DESCRIPTION_MAX},
        "active": {"type": "boolean", "description": "The Enabled switch; true re-enables an out-of-order webhook."},
        "product_id": {"type": "string", "description": "A product available to the account."},
        "object_class": {"type": "string", "enum": list(catalog.OBJECT_CLASSES)},
        "type": {
            "type": "string",
            "enum": WEBHOOK_TYPES,
            "description": "With object_class, one row of the webhook type catalog.",
        },
        "http_method": {"type": "string", "enum": list(rules.METHODS)},
        "external_url": {
            "type": "string",
            "format": "uri",
            "maxLength": rules.URL_MAX,
            "description": "The Endpoint URL: http:// or https://, without user name or password.",
        },
        "signature_format": {
            "type": "string",
            "enum": list(rules.SIGNATURE_FORMATS),
            "description": "How deliveries are signed: `jwt` (the default: a JWT in `Authorization: Bearer`) or "
            "`standard` (Standard Webhooks v1: `webhook-id`, `webhook-timestamp`, `webhook-signature`). Changing it "
            "on update without a new jwt_secret stages the change: a new secret in the new format's form becomes "
            "jwt_secret_next, both formats are sent until .../next-secret/switch, and discarding the next secret "
            "cancels it.",
        },
        "jwt_secret": {
            "type": "string",
            "maxLength": rules.SECRET_MAX,
            "description": "Signs the JWT (HS256), or for `standard` the HMAC key in `whsec_` form (base64 of 24-64 "
            "bytes). Empty: generated on create, kept on update.",
        },
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": rules.HEADER_VALUE_MAX},
            "propertyNames": {"minLength": 1, "maxLength": rules.HEADER_NAME_MAX},
            "maxProperties": rules.HEADERS_MAX,
            "description": f"Custom request headers, name to value; no line breaks; not {forbidden}.",
        },
        "data": {
            "type": "object",
            "description": f"Additional data (at most {rules.DATA_MAX_BYTES // 1024} KiB), sent with POST only; "
            "emptied when http_method is GET.",
        },
        "tls_client_cert": {
            "type": "string",
            "maxLength": client_tls.PEM_MAX,
            "description": "Mutual TLS: the client certificate (PEM, chain allowed) presented to an https:// "
            "handler that asks for one; refused when expired, not yet valid or not matching the key. Empty "
            "removes the certificate and its key.",
        },
        "tls_client_key": {
            "type": "string",
            "maxLength": client_tls.PEM_MAX,
            "writeOnly": True,
            "description": "The certificate's private key (PEM, unencrypted). Write-only: stored encrypted, never "
            "returned. Empty on update: the stored key is kept.",
        },
        "tls_ca_bundle": {
            "type": "string",
            "maxLength": client_tls.PEM_MAX,
            "description": "CA certificates (PEM) trusted for this webhook's https:// handler instead of the public "
            "ones. Empty: the public CAs.",
        },
    }


def webhook_schema() -> dict[str, Any]:
    """Every field ``serializers.webhook_json`` returns."""
    fields = field_schemas()
    named = closed({"id": {"type": "string"}, "name": {"type": "string"}}, readOnly=True)
    outcome = closed(
        {
            "at": DATE_TIME,
            "status": {"type": ["integer", "null"], "description": "The handler's HTTP status; null if none."},
            "duration_ms": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
            "attempt_id": {"type": ["integer", "null"], "description": "Its record under .../attempts."},
        }
    )
    counter = {"type": "integer", "minimum": 0}
    stats = ("events", "trigger_now_events", "triggers", "success_triggers", "failure_triggers",
             "failure_since_last_success")  # fmt: skip
    read_only = {"readOnly": True}
    properties = {
        "id": {"type": "string", "pattern": r"^WH-\d{3}-\d{3}-\d{3}$", **read_only},
        "label": fields["label"],
        "description": fields["description"],
        "active": fields["active"],
        "status": {"type": "string", "enum": list(serializers.STATUS_KEYS.values()), **read_only},
        "object_class": fields["object_class"],
        "type": fields["type"],
        "http_method": fields["http_method"],
        "external_url": fields["external_url"],
        "signature_format": fields["signature_format"],
        "signature_switch_pending": {
            "type": "boolean",
            "description": "A change of signature_format waits for the switch to jwt_secret_next: until then the "
            "current secret signs in the other format and the next one in this, and both are sent.",
            **read_only,
        },
        "jwt_secret": fields["jwt_secret"],
        "jwt_secret_next": nullable(
            {
                "type": "string",
                "description": "The next secret of a staged rotation (see .../next-secret); deliveries are signed "
                "with jwt_secret until the switch. Null when none.",
                **read_only,
            }
        ),
        "headers": fields["headers"],
        "data": fields["data"],
        "tls_client_cert": nullable({**fields["tls_client_cert"], "description": "The certificate; null if none."}),
        "tls_client_key_set": {
            "type": "boolean",
            "description": "Whether a client certificate's key is stored (the key itself is never returned).",
            **read_only,
        },
        "tls_ca_bundle": nullable({**fields["tls_ca_bundle"], "description": "The CA bundle; null if none."}),
        "product": named,
        "account": named,
        "api_url": {"type": "string", "description": "The last event's api_url, else the configured one.", **read_only},
        "created_at": {**DATE_TIME, **read_only},
        "modified_at": {**DATE_TIME, **read_only},
        "stats": closed({name: counter for name in stats}, readOnly=True),
        "last_event": nullable({**DATE_TIME, **read_only}),
        "last_success": nullable({**outcome, **read_only}),
        "last_failure": nullable({**outcome, **read_only}),
        "earliest_possible_trigger": nullable(
            {**DATE_TIME, "description": "Due time of the pending trigger; null if none or out of order.", **read_only}
        ),
        "retry": nullable(
            closed(
                {
                    "attempt": {"type": "integer", "minimum": 1, "description": "The next attempt's number."},
                    "max_attempts": {"type": "integer", "minimum": 1},
                    "at": nullable({**DATE_TIME, "description": "When it is due; null while it is being sent."}),
                    "sending": {"type": "boolean", "description": "The attempt is in flight now."},
                    "asked_by_handler": {
                        "type": "boolean",
                        "description": "The time is the one the handler asked for in a Retry-After (429 or 503), "
                        "not the retry schedule's.",
                    },
                },
                description='The retry of a Failing webhook ("attempt 3 of 10 at …"); null when not Failing.',
                readOnly=True,
            )
        ),
        "disabled_reason": nullable(
            {
                "type": "string",
                "description": 'Why the service disabled a disabled webhook ("the handler answered 410 Gone"); '
                "null when a person disabled it, or it is enabled.",
                **read_only,
            }
        ),
    }
    # Secrets only for a token with webhooks:secrets (serializers.SECRET_FIELDS): left out, not null, otherwise.
    required = [name for name in properties if name not in serializers.SECRET_FIELDS]
    return closed(
        properties,
        required=required,
        description="A webhook with its statistics. `jwt_secret` and `jwt_secret_next` are returned only to a "
        "token with the `webhooks:secrets` scope.",
    )


def webhook_write_schema(*, create: bool) -> dict[str, Any]:
    """What ``serializers.writable_fields`` accepts: the writable fields with their JSON types, a
    Connect-style ``product {id, name}``, and the read-only fields, accepted and ignored."""
    fields = field_schemas()
    properties: dict[str, Any] = {}
    for name, python_type in serializers.WRITABLE.items():
        properties[name] = {**fields[name], "type": JSON_TYPES[python_type]}
        if name in serializers.NULLABLE:
            properties[name] = nullable(properties[name])
    properties[CONNECT_PRODUCT] = closed(
        {"id": {"type": "string"}, "name": {**ANY_JSON, "description": "Ignored."}},
        required=["id"],
        description="Same as product_id, as Connect's client sends it.",
    )
    for name in sorted(serializers.READ_ONLY):
        properties[name] = {"description": "Read-only: accepted with any value and ignored."}
    note = "Text is trimmed and http_method upper-cased before the rules apply; any other field is an error."
    if create:
        return closed(
            properties,
            required=["label", "object_class", "type", "http_method", "external_url"],
            anyOf=[{"required": ["product_id"]}, {"required": [CONNECT_PRODUCT]}],
            description=f"A new webhook; active defaults to false, jwt_secret is generated when empty. {note}",
        )
    return closed(
        properties,
        required=[],
        description="A partial update. product and type cannot change: product_id, product, object_class and "
        f"type, when sent, must equal the webhook's. {note}",
    )


def schemas() -> dict[str, Any]:
    text_id = {"type": ["string", "null"], "minLength": 1, "maxLength": ingest.ID_MAX}
    message_list = {"type": "array", "items": {"type": "string"}, "minItems": 1}
    attempt_request = closed(
        {
            "method": {"type": "string", "enum": list(rules.METHODS)},
            "url": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": ["string", "null"], "description": "null for GET."},
        },
        description="The request as sent, the JWT's signature redacted.",
    )
    attempt_response = closed(
        {
            "status": {"type": "integer"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": ["string", "null"]},
            "truncated": {"type": "boolean", "description": "The body was capped at 64 KiB."},
        }
    )
    validation_answer = {
        "type": "object",
        "description": "The handler's JSON: the request object with value_error filled in where it objects.",
    }
    return {
        "Error": closed(
            {"error_code": {"type": "string", "examples": ["VAL_001"]}, "errors": message_list},
            description="Every refusal: a code and human-readable messages.",
        ),
        "EventRequest": closed(
            {
                "object_class": {"type": "string", "enum": list(catalog.OBJECT_CLASSES)},
                "product_id": {"type": "string", "minLength": 1, "maxLength": 20},
                "id": {
                    **text_id,
                    "description": "Client event id: a repeat in the same account is answered 200 "
                    "with the first result and counts nothing.",
                },
                "object_id": {**text_id, "description": "Informational."},
                "api_url": {
                    "type": ["string", "null"],
                    "format": "uri",
                    "maxLength": rules.URL_MAX,
                    "description": "Sent to handlers as api_url; http:// or https://.",
                },
            },
            required=["object_class", "product_id"],
            description="A queue-change event.",
        ),
        "EventResult": closed(
            {
                "id": {"type": "string", "pattern": r"^EV-\d{3}-\d{3}-\d{3}-\d{3}$"},
                "webhooks": {"type": "array", "items": {"type": "string"}, "description": "Matched webhook ids."},
                "duplicate": {"type": "boolean", "description": "True when answering a repeated client id."},
            }
        ),
        "Event": closed(
            {
                "id": {"type": "string", "pattern": r"^EV-\d{3}-\d{3}-\d{3}-\d{3}$"},
                "external_id": {**text_id, "description": "The client event id (`id` when posted); null if none."},
                "object_class": {"type": "string", "enum": list(catalog.OBJECT_CLASSES)},
                "object_id": {**text_id, "description": "As posted; null if none."},
                "product": closed({"id": {"type": "string"}}),
                "api_url": {"type": "string", "description": "The api_url handlers receive for it."},
                "webhooks": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The webhooks it matched, of the caller's own (the handler's alone for a "
                    "delivery JWT).",
                },
                "created_at": {**DATE_TIME, "description": "When it was stored (ISO 8601 in UTC)."},
            },
            description="A queue-change event that was posted, and the webhooks it rang.",
        ),
        "Webhook": webhook_schema(),
        "NextSecret": closed(
            {"jwt_secret_next": {"type": "string", "minLength": 1, "maxLength": rules.SECRET_MAX}}, required=[]
        ),
        "WebhookCreate": webhook_write_schema(create=True),
        "WebhookUpdate": webhook_write_schema(create=False),
        "Attempt": closed(
            {
                "id": {"type": "integer"},
                "reference": {
                    "type": "string",
                    "pattern": "^AT(-[0-9]{3}){2,}$",
                    "description": "The id as the pages show it and a person quotes it: AT- and the id in "
                    "groups of three digits (AT-000-123 for id 123).",
                },
                "webhook_id": {"type": "string"},
                "kind": {"type": "string", "enum": ["trigger", "validation"]},
                "number": {"type": "integer", "minimum": 1, "description": "Attempt number within its trigger."},
                "started_at": DATE_TIME,
                "duration_ms": {"type": "number", "minimum": 0},
                "success": {"type": "boolean"},
                "error": {"type": ["string", "null"]},
                "request": attempt_request,
                "response": nullable(attempt_response),
                "redelivery_of": {
                    "type": ["integer", "null"],
                    "description": "For a Redeliver attempt, the id of the attempt it sent again (the first one, "
                    "when that was a redelivery too); else null.",
                },
            },
            description="One HTTP call to a handler.",
        ),
        "ValidationRequest": closed(
            {
                "type": {"type": "string", "enum": VALIDATION_TYPES},
                "product_id": {"type": "string"},
                "request": {"type": "object", "description": "The draft request, posted to the handler as is."},
            }
        ),
        "ValidationAnswer": validation_answer,
        "ValidationTriggerAnswer": closed(
            {
                "webhook": ref("Webhook"),
                "validation": closed(
                    {
                        "answered": {"type": "boolean", "description": ANSWERED},
                        "status": {"type": ["integer", "null"]},
                        "body": {**ANY_JSON, "description": "The handler's JSON; null unless answered."},
                        "error": {"type": ["string", "null"]},
                        "attempt_id": {"type": ["integer", "null"]},
                    }
                ),
            },
            description="Trigger Now on a validation webhook: a sample request was posted and answered at once.",
        ),
    }
