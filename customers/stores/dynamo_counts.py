"""Live idempotency records on DynamoDB, counted per client and in all.

DynamoDB cannot count the items that share an attribute, and its TTL deletes an
expired record without telling anyone, so a count that rose with each claim could
never come down again. Instead a counter item counts records by the hour they expire
in: `IDEMPOTENCY-COUNT#<owner>` for one client, `IDEMPOTENCY-COUNT` for all. Its
attribute `h<n>` is the number of records that expire by the end of hour `n` (epoch
seconds `n * 3600`). Once that hour is past, its records are gone: the live count is
the sum over the hours still ahead, and a claim removes the hours behind. The item
itself expires (TTL) two hours after the last hour it counts.

How exact: every claim made in one hour counts in the same attribute, and the claim's
transaction adds one to it only while it is below the room the other hours leave, so
concurrent claims cannot pass a bound together; at the turn of an hour at most as many
as run at once can. A record counts until the end of the hour its lifetime ends in, so
up to an hour longer than it lives; a claim let go unanswered counts down at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, UpdateTypeDef

    Item = Mapping[str, AttributeValueTypeDef]

HOUR = 3600
TOTAL_PK = "IDEMPOTENCY-COUNT"
OWNER_PREFIX = "IDEMPOTENCY-COUNT#"
# The attribute holding the expiry hour a record was counted in, on the record itself,
# so that letting go of it counts down the same hour.
COUNTED_IN = "countedIn"


def counter_pks(owner: str) -> tuple[str, str]:
    """The counter items of `owner` and of all owners, in that order."""
    return f"{OWNER_PREFIX}{owner}", TOTAL_PK


def expiry_hour(now: int, lifetime: int) -> int:
    """The hour by whose end a record claimed `now` and living `lifetime` seconds is gone."""
    return -(-(now + lifetime) // HOUR)


def _hours(counter: Item | None) -> dict[int, int]:
    """Every hour the counter holds, with its count."""
    if counter is None:
        return {}
    return {
        int(name[1:]): int(value["N"])
        for name, value in counter.items()
        if name.startswith("h") and name[1:].isdigit() and "N" in value
    }


def live_hours(counter: Item | None, now: int) -> dict[int, int]:
    """The hours whose records may still live at `now`, with their counts."""
    return {hour: count for hour, count in _hours(counter).items() if hour * HOUR > now}


def room(counter: Item | None, *, bound: int, hour: int, now: int) -> int:
    """How far hour `hour`'s count may rise: `bound` less the live records of other hours."""
    others = sum(count for counted, count in live_hours(counter, now).items() if counted != hour)
    return bound - others


def has_room(counter: Item | None, *, bound: int, hour: int, now: int) -> bool:
    """Whether one more record expiring in `hour` fits under `bound`, as last read."""
    current = live_hours(counter, now).get(hour, 0)
    return current < room(counter, bound=bound, hour=hour, now=now)


def retry_after(counter: Item | None, now: int) -> int:
    """Seconds until the earliest counted hour ends, when its records are surely gone."""
    live = [hour for hour, count in live_hours(counter, now).items() if count > 0]
    return min(live) * HOUR - now if live else 1


def count_up(
    table: str, pk: str, counter: Item | None, *, bound: int, hour: int, now: int
) -> UpdateTypeDef:
    """The Update adding a record to `hour`, only while there is room for it, and removing
    the hours that are past."""
    stale = [f"h{past}" for past in _hours(counter) if past * HOUR <= now]
    names = {"#hour": f"h{hour}", "#expires": "expiresAt"}
    names |= {f"#stale{index}": name for index, name in enumerate(stale)}
    expression = "ADD #hour :one SET #expires = :expires"
    if stale:
        expression += " REMOVE " + ", ".join(f"#stale{index}" for index in range(len(stale)))
    return {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": expression,
        # The hour's count is below the room the other hours (as read) leave: concurrent
        # claims of this hour all meet this one attribute, so they cannot pass it together.
        "ConditionExpression": "attribute_not_exists(#hour) OR #hour < :room",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":room": {"N": str(room(counter, bound=bound, hour=hour, now=now))},
            ":expires": {"N": str((hour + 2) * HOUR)},
        },
    }


def count_down(table: str, pk: str, hour: int) -> UpdateTypeDef:
    """The Update taking one record off `hour`, if the counter still exists."""
    return {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": "ADD #hour :minus",
        "ConditionExpression": "attribute_exists(#pk)",
        "ExpressionAttributeNames": {"#pk": "pk", "#hour": f"h{hour}"},
        "ExpressionAttributeValues": {":minus": {"N": "-1"}},
    }
