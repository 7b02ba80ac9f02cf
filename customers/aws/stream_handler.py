"""AWS Lambda entry point for the table's DynamoDB stream: webhooks (and EventBridge).

Each change writes an EVENT# item in its own transaction; the stream hands the function
each new item once it is committed. The function POSTs it to every WEBHOOK_URL, signed as
the relay signs (customers.delivery), and, with EVENT_BUS_NAME, puts it on that
EventBridge bus. Records are handled in stream order; at the first that cannot be
delivered the rest wait, and the function reports that record as the batch's failure
(ReportBatchItemFailures): Lambda retries from it, so a shard's order holds and nothing
is skipped. The event source's retry window (24 hours) and its dead-letter queue decide
when a record is given up. Delivery is at least once: receivers deduplicate by
webhook-id, the event's id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import orjson
import structlog

from customers.config import DEFAULTS, check_webhook_urls, settings_from_env
from customers.delivery.sender import Sender
from customers.stores.dynamodb_items import event_from_item
from db import ChangeEvent

log = structlog.get_logger(__name__)

EVENT_PREFIX = "EVENT#"
EVENT_SOURCE = "customer-api"


class Delivery:
    """What the function needs between invocations: the endpoints, the sender, the bus."""

    def __init__(self, settings: Mapping[str, Any], *, events_client: Any = None) -> None:
        check_webhook_urls(settings)
        self.urls: tuple[str, ...] = tuple(settings["WEBHOOK_URL"])
        self.sender = Sender(settings["WEBHOOK_SECRET"]) if self.urls else None
        self.bus = os.environ.get("EVENT_BUS_NAME") or None
        self._events = events_client
        # Endpoints that answered 410 in this container; the log says so each time.
        self.gone: set[str] = set()

    def deliver(self, event: ChangeEvent) -> bool:
        """Send the event everywhere it goes; False when it must be tried again."""
        body = orjson.dumps(event.to_cloudevent())
        for url in self.urls:
            if url in self.gone:
                continue
            assert self.sender is not None
            attempt = self.sender.send(url, event.id, body)
            log.info(
                "webhook_attempt",
                url=url,
                event_id=event.id,
                status=attempt.status,
                outcome=attempt.outcome,
                error=attempt.error,
            )
            if attempt.outcome == "gone":
                self.gone.add(url)
                log.warning("webhook_endpoint_disabled", url=url, detail="answered 410 Gone")
            elif attempt.outcome == "retry":
                return False
        if self.bus is not None:
            answer = self.events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": event.type,
                        "Detail": body.decode(),
                        "EventBusName": self.bus,
                    }
                ]
            )
            if answer.get("FailedEntryCount"):
                log.warning("eventbridge_failed", event_id=event.id)
                return False
        return True

    @property
    def events(self) -> Any:
        if self._events is None:
            import boto3

            self._events = boto3.client("events")
        return self._events

    def handle(self, stream_event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """The records of one batch, in order; the first undeliverable one is reported."""
        for record in stream_event.get("Records", []):
            image = record.get("dynamodb", {}).get("NewImage")
            if record.get("eventName") != "INSERT" or not image:
                continue
            if not image.get("pk", {}).get("S", "").startswith(EVENT_PREFIX):
                continue
            if not self.deliver(event_from_item(image)):
                sequence = record["dynamodb"]["SequenceNumber"]
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
        return {"batchItemFailures": []}


# Built once per container, at import, as the API function builds its app.
delivery = Delivery({**DEFAULTS, **settings_from_env()})


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """The function's entry."""
    return delivery.handle(event)
