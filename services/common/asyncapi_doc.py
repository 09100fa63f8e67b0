"""Each service's AsyncAPI document, completed from the topic catalogue.

FastStream describes what a service receives: one channel per subscribed topic, so every
retry tier topic appears as a channel of its own. This module reshapes that document:

- the retry tier topics of a (topic, group) become ONE channel whose address has a
  `{tier}` parameter (enum of the configured tiers), received and sent by the service;
- the dead-letter topics of everything the service consumes become ONE channel
  `{topic}.dlq` with a `DeadLetter` message (original bytes, x-dlq-* headers), sent;
- every catalogue topic the service produces (`TopicSpec.producers`) becomes a channel
  with a `send` operation and a message per event type, its payload the event's schema;
  a catalogue topic it consumes outside FastStream (the token cache) gets a `receive`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from schemas.events import CATALOGUE, TopicSpec
from services.common.kafka import headers as H
from services.common.kafka.retry_tiers import tier_label

_RETRY = re.compile(r"(?P<topic>.+)\.retry\.(?P<group>[^.]+)\.(?P<tier>[^.]+)")
DLQ_CHANNEL = "dead-letters"

RETRY_HEADERS = {
    H.ATTEMPT: "attempt number of this retry (1, 2, ...)",
    H.DUE_AT_MS: "when the message is due, Unix ms: its partition is paused until then",
    H.ORIGINAL_TOPIC: "the topic the message was first read from",
    H.ORIGINAL_PARTITION: "its partition there",
    H.ORIGINAL_OFFSET: "its offset there",
    H.FIRST_FAILED_AT_MS: "first failure, Unix ms",
    H.RETRY_REASON: "why the handler asked to retry",
}
DLQ_HEADERS = {
    H.DLQ_REASON: "why the message could not be processed",
    H.DLQ_ERROR_TYPE: "exception type (ValidationError, InvalidMessage, ...)",
    H.DLQ_SERVICE: "service that dead-lettered it",
    H.DLQ_GROUP: "its consumer group",
    H.DLQ_ORIGINAL_TOPIC: "topic it was read from",
    H.DLQ_ORIGINAL_PARTITION: "partition there",
    H.DLQ_ORIGINAL_OFFSET: "offset there",
    H.DLQ_ATTEMPTS: "attempts made",
    H.DLQ_FAILED_AT: "when, Unix ms",
    H.DLQ_REFERENCE: "set when the original was too large to copy: the value is a reference",
    H.DLQ_REFERENCE_WHY: "why it is a reference",
    H.DLQ_ORIGINAL_SIZE: "the original's size in bytes",
    H.DLQ_ORIGINAL_SHA256: "the original's SHA-256",
    H.DLQ_VALUE_PREFIX_BYTES: "bytes of the original's prefix carried",
}


def _headers(described: dict[str, str]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": text} for name, text in described.items()}
    return {"type": "object", "properties": props}


def _ref(path: str) -> dict[str, str]:
    return {"$ref": path}


def _event_schema(event: type[Any], schemas: dict[str, Any]) -> None:
    schema = event.model_json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas[event.__name__] = schema


def _collapse_retries(doc: dict[str, Any], tiers: list[float]) -> None:
    channels, operations = doc["channels"], doc["operations"]
    messages = doc["components"]["messages"]
    main_message: dict[str, str] = {}  # topic -> its subscribe message ref
    for channel in channels.values():
        if not _RETRY.fullmatch(channel["address"]):
            for ref in channel.get("messages", {}).values():
                main_message[channel["address"]] = ref["$ref"]
    for key, channel in list(channels.items()):
        m = _RETRY.fullmatch(channel["address"])
        if not m:
            continue
        topic, group = m["topic"], m["group"]
        del channels[key]
        ref = f"#/channels/{key}"
        for op_key in [k for k, op in operations.items() if op["channel"]["$ref"] == ref]:
            del operations[op_key]
        for msg_key in [k for k in messages if k.startswith(f"{key}:")]:
            del messages[msg_key]
        name = f"{topic}.retry.{group}"
        if name in channels:
            continue
        channels[name] = {
            "address": f"{topic}.retry.{group}.{{tier}}",
            "description": f"{group}'s retry tiers for {topic}: the original record (key, "
            "value, headers) with the retry headers; read back when due.",
            "parameters": {
                "tier": {
                    "enum": [tier_label(t) for t in tiers],
                    "description": "delay tier; a retry goes to the smallest tier >= its delay",
                }
            },
            "messages": {"Retry": _ref(f"#/components/messages/{name}:Retry")},
        }
        original = main_message.get(topic, "").rsplit("/", 1)[-1]
        messages[f"{name}:Retry"] = {
            "title": f"Retry of {topic}",
            "headers": _headers(RETRY_HEADERS),
            "payload": copy.deepcopy(messages.get(original, {}).get("payload", {})),
        }
        for action in ("receive", "send"):
            operations[f"{name}:{action}"] = {
                "action": action,
                "channel": _ref(f"#/channels/{name}"),
                "messages": [_ref(f"#/channels/{name}/messages/Retry")],
            }


def _dead_letters(doc: dict[str, Any], consumed: list[str]) -> None:
    if not consumed:
        return
    doc["components"]["messages"]["DeadLetter"] = {
        "title": "DeadLetter",
        "summary": "The original record's bytes and headers, with the reason in x-dlq-*.",
        "headers": _headers(DLQ_HEADERS),
        "payload": {
            "description": "the original value, byte for byte (or, with x-dlq-reference, "
            "a reference to it and its first bytes)"
        },
    }
    doc["channels"][DLQ_CHANNEL] = {
        "address": "{topic}.dlq",
        "description": "Dead letters of every topic this service consumes; "
        "`kopru dlq show|replay <topic>`.",
        "parameters": {"topic": {"enum": consumed, "description": "the original topic"}},
        "messages": {"DeadLetter": _ref("#/components/messages/DeadLetter")},
    }
    doc["operations"][f"{DLQ_CHANNEL}:send"] = {
        "action": "send",
        "channel": _ref(f"#/channels/{DLQ_CHANNEL}"),
        "messages": [_ref(f"#/channels/{DLQ_CHANNEL}/messages/DeadLetter")],
    }


def _catalogue_channels(
    doc: dict[str, Any], specs: list[TopicSpec], action: str, suffix: str
) -> None:
    components = doc["components"]
    schemas = components.setdefault("schemas", {})
    for spec in specs:
        refs = {}
        for event in spec.event_types:
            _event_schema(event, schemas)
            components["messages"][event.__name__] = {
                "title": event.__name__,
                "summary": (event.__doc__ or "").strip().splitlines()[0] if event.__doc__ else "",
                "correlationId": {"location": f"$message.header#/{H.CORRELATION_ID}"},
                "payload": _ref(f"#/components/schemas/{event.__name__}"),
            }
            refs[event.__name__] = _ref(f"#/components/messages/{event.__name__}")
        channel = f"{spec.name}:{suffix}"
        doc["channels"][channel] = {
            "address": spec.name,
            "description": f"{spec.description} Key: {spec.key}.",
            "messages": refs,
            "bindings": {"kafka": {"topic": spec.name, "partitions": spec.partitions}},
        }
        doc["operations"][f"{spec.name}:{action}"] = {
            "action": action,
            "channel": _ref(f"#/channels/{channel}"),
            "messages": [_ref(f"#/channels/{channel}/messages/{n}") for n in refs],
        }


def complete(doc: dict[str, Any], service: str, tiers: list[float]) -> dict[str, Any]:
    """The document with retry tiers collapsed, dead letters and publications added."""
    doc.setdefault("channels", {})
    doc.setdefault("operations", {})
    doc.setdefault("components", {}).setdefault("messages", {})
    subscribed = sorted(
        {c["address"] for c in doc["channels"].values() if not _RETRY.fullmatch(c["address"])}
    )
    _collapse_retries(doc, tiers)
    _dead_letters(doc, subscribed)
    _catalogue_channels(doc, [s for s in CATALOGUE if service in s.producers], "send", "publish")
    # Topics read outside FastStream's subscribers (the token cache reads mks.auth.tokens).
    others = [s for s in CATALOGUE if service in s.consumers and s.name not in subscribed]
    _catalogue_channels(doc, others, "receive", "read")
    return doc
