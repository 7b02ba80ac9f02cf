"""`flask events failed` and `flask events redeliver`: the webhooks given up on, sent again.

Redelivered events keep their id, so receivers see the same `webhook-id` and can tell a
redelivery from a new event.
"""

from __future__ import annotations

import re
import time

import click
from flask import current_app
from flask.cli import AppGroup

from customers.cli import SettingRefused, command_store
from customers.stores.sqlite import SqliteStore
from customers.stores.sqlite_deliveries import SqliteDeliveries

commands = AppGroup("events", help="Webhook deliveries: those given up on, and sending again.")

SINCE_FORM = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?Z?)?"
)


def _deliveries() -> SqliteDeliveries:
    """The configured store's deliveries; refused on a store without a relay."""
    store = command_store(create=False)
    if not isinstance(store, SqliteStore):
        raise SettingRefused(
            "CUSTOMER_STORE=dynamodb: webhooks are delivered by the stream function there;"
            " its dead-letter queue holds what failed"
        )
    return SqliteDeliveries(store)


@commands.command("failed")
def failed() -> None:
    """List the deliveries whose retries ran out: event id, endpoint, attempts, last error."""
    for failure in _deliveries().failures():
        click.echo(
            f"{failure.event_id}\t{failure.url}\t{failure.attempts}\t{failure.last_error or ''}"
        )


@commands.command("redeliver")
@click.argument("event_id", required=False)
@click.option("--since", help="Every event from this UTC time on (2026-12-07T10:00:00Z).")
def redeliver(event_id: str | None, since: str | None) -> None:
    """Send one event (EVENT_ID), or every event since a time, to each WEBHOOK_URL again."""
    if (event_id is None) == (since is None):
        raise click.UsageError("give an EVENT_ID or --since TIME, one of them")
    urls = tuple(current_app.config["WEBHOOK_URL"])
    if not urls:
        raise SettingRefused("WEBHOOK_URL is not set: there is nowhere to send events")
    deliveries = _deliveries()
    if since is not None:
        if not SINCE_FORM.fullmatch(since):
            raise click.BadParameter(
                "a UTC time such as 2026-12-07T10:00:00Z", param_hint="--since"
            )
        count = deliveries.redeliver(urls, now=time.time(), since=since.removesuffix("Z"))
    else:
        count = deliveries.redeliver(urls, now=time.time(), event_id=event_id)
        if not count:
            raise click.ClickException(f"no event has the id {event_id!r}")
    click.echo(f"{count} event(s) queued again for {len(urls)} endpoint(s)")
