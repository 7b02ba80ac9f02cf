"""The customer store on DynamoDB: the same interface as the sqlite store, one table.

Items (partition key `pk` only):
  CUSTOMER#<id>  the declared fields by their API names (customers.fields), version (N),
                 listPk = "CUSTOMERS", listSk = "<createdAt>#<id>",
                 writeToken? (the token of the import or update that wrote it last),
                 answeredIn? (the pk of the IDEMPOTENCY# item that recorded its create)
  EMAIL#<key>    customerId: the claim on an email address, `key` being `db.email_key(email)`
  IDEMPOTENCY#<scope>#<key>
                 fingerprint, token, expiresAt (N, epoch seconds: the table's TTL attribute),
                 owner?, countedIn? (N), and once answered status (N), headers, body (B),
                 customerId?
  IDEMPOTENCY-COUNT#<owner>, IDEMPOTENCY-COUNT
                 live idempotency records of one client and of all, by the hour they
                 expire in (see dynamo_counts); expiresAt
  HISTORY#<id>#<version>
                 one change of a customer: historyOf (its id), version (N), at, action,
                 actor?, requestId?, changes (the JSON object), expiresAt (N: the entry
                 goes by TTL once past HISTORY_RETENTION_DAYS)
  EVENT#<event id>
                 one change event (the outbox): feedPk = "EVENTS", feedSk = its id (a
                 UUIDv7, time-ordered), type, subject, time, data (the JSON object),
                 expiresAt (N: gone by TTL once past EVENTS_RETENTION_DAYS)

Access patterns:
  get, update, delete    GetItem / UpdateItem / TransactWriteItems on CUSTOMER#<id>
  unique email           a conditional Put of EMAIL#<key> in the same transaction as the
                         customer: the database decides, never a read-then-write
  list, oldest first     Query GSI `listing` (listPk, listSk) with listSk > the cursor
  list by businessId     Query GSI `business` (businessId, listSk)
  list by email          GetItem EMAIL#<key>, then GetItem the customer: 0 or 1 result
  idempotency keys       a conditional Put holds the key (absent or expired), in one
                         transaction with its counts when bounded; the answer is a Put
                         conditioned on the holder's token, for a 201 in the same
                         transaction as the customer. TTL deletes expired records
                         eventually; until then every condition treats them as absent.
  history                each write's transaction also Puts HISTORY#<id>#<new version>,
                         conditioned on its absence (one entry per version); read by
                         Query GSI `history` (historyOf, version), so pages come in
                         version order, past entries filtered out until TTL takes them
  events                 each write's transaction also Puts its EVENT#; the feed is Query
                         GSI `feed` (feedPk, feedSk) after the cursor's id and before
                         the settle bound (docs/events.md)
  import a batch         TransactWriteItems of up to 25 customers with their claims,
                         history entries and events
  erase a customer       one transaction deletes CUSTOMER#<id>, its EMAIL# claim and its
                         newest history entries (older ones just before), writes its
                         customer.deleted event, and turns the
                         IDEMPOTENCY# item its answeredIn names into a tombstone
                         (status 410, no headers, empty body, no customerId), if that item
                         still names the customer: its answer held the person's data.
                         Recorded on the customer at create, the key needs no index and
                         no scan; a customer made without a key has none.

Why it scales: every item has its own high-cardinality partition key, so reads and writes
spread over all partitions and none is hot. The exception is the `listing` index: every
customer shares listPk "CUSTOMERS", one index partition, good for about 1000 writes per
second. Creating or changing customers faster than that throttles the index, and through
back-pressure the table. The `feed` index is a single partition in the same way, written
once per change (see docs/events.md). The cure is sharding: listPk = "CUSTOMERS#<n>" with
n = hash(id) % N, and a list that queries the N shards and merge-sorts them by listSk.
Fields that are null are left out, which also keeps customers without a business
out of the `business` index (a GSI key must be absent, not null).

Writes sent again: botocore sends a request again when its answer does not come (a
timeout, a dropped connection, a 5xx), and the first one may have been applied. Every
write here is safe to send again or finds out what happened before it reports:
  transactions   carry a ClientRequestToken, made once per write and kept for every
                 time it is sent, so DynamoDB applies it once; where the endpoint does
                 not honour it (moto), the failed condition is read as follows
  create         its customer's id is new: if it is taken, this write took it
  update         sets writeToken and is conditioned on another one being there: a
                 condition failing on its own token is this write, already applied
  delete         a customer gone when the delete had to be sent again was deleted
  idempotency    a claim or an answer found under the request's own token is its own
  import         each customer carries its own token; a batch whose outcome is unknown
                 is checked by reading those back, and only the rest is sent again

Consistency: every GetItem here is strongly consistent, so get-by-id and the email filter
see every acknowledged write. Global secondary indexes are eventually consistent: on AWS a
customer just created or changed may be missing from, or stale in, the unfiltered and
businessId lists for a moment (typically well under a second), and its newest history
entry from its history for as long.

The store is split by job: dynamodb_items maps records to items and back,
dynamodb_retries reads failed writes, dynamodb_table holds the clients, the table's
set-up and the Puts writes are made of, dynamodb_batches imports in bulk; this module
keeps DynamoStore and what one request does.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, cast

from botocore.exceptions import BotoCoreError, ClientError

import customers.stores.dynamo_counts as counts
from customers.fields import WRITABLE
from customers.stores.dynamodb_batches import DynamoBatches
from customers.stores.dynamodb_items import (
    ANSWERED_IN,
    ATTRIBUTE_OF,
    FEED_PK,
    LIST_PK,
    WRITER_ATTRIBUTE,
    _attribute,
    _customer_key,
    _email_claim_key,
    _history_entry,
    _history_pk,
    _idempotency_item,
    _idempotency_key,
    _idempotency_record,
    _item,
    _record,
    _s,
    _written_by,
    event_from_item,
)
from customers.stores.dynamodb_retries import (
    _code,
    _failed,
    _reasons,
    _Retry,
    _retrying,
    _retrying_up_to,
    _sent_again,
    _write_token,
)
from db import (
    ERASED_STATUS,
    UNATTRIBUTED,
    WRITABLE_COLUMNS,
    Action,
    AnswerOf,
    ChangeEvent,
    ClaimLost,
    CustomerNotFound,
    CustomerRecord,
    EmailTaken,
    EventPage,
    EventQuery,
    HistoryEntry,
    HistoryPage,
    IdempotencyKeysExhausted,
    IdempotencyLimits,
    IdempotencyRecord,
    JsonPage,
    ListQuery,
    Page,
    StoreUnavailable,
    VersionMismatch,
    WrittenBy,
    change_event,
    changes_between,
    deletion_event,
    email_key,
    event_id_floor,
    new_customer_id,
    new_record_values,
    utc_timestamp,
    with_changes,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
        UpdateTypeDef,
    )

    Item = Mapping[str, AttributeValueTypeDef]

# Writable columns an update cannot clear.
UNCLEARABLE = tuple(field.column for field in WRITABLE if field.required)
NAMES = {
    f"#{name}": name
    for name in (*ATTRIBUTE_OF.values(), "pk", "updatedAt", "version", WRITER_ATTRIBUTE)
}
# An update reads the customer, then writes conditioned on the version read (its history
# entry needs the version): under many concurrent writers of one customer each round
# has one winner, so an update tries until every writer could have had its turn.
UPDATE_ATTEMPTS = 40
# History entries a delete removes in its own transaction, the newest; older ones (only a
# customer changed more often has them) are removed just before it. With the customer,
# its claim, its recorded answer and its event: 68 of a transaction's 100 items.
HISTORY_IN_DELETE = 64
BATCH_WRITE_ITEMS = 25  # BatchWriteItem's limit


def _holder(item: Item | None, claim: IdempotencyRecord) -> IdempotencyRecord:
    """The record that kept `claim` from holding its key (a failed condition's ALL_OLD).

    Without one (it expired and went meanwhile), the claim is simply tried again.
    """
    if not item:
        raise _Retry
    return _idempotency_record(item, claim.scope, claim.key)


def _other_holder(item: Item | None, claim: IdempotencyRecord) -> IdempotencyRecord | None:
    """The record holding `claim`'s key, or None when that is `claim` itself: the same
    claim, sent again after the answer to it was lost."""
    holder = _holder(item, claim)
    return None if holder == claim else holder


def _claim_lost(item: Item | None, ours: IdempotencyRecord) -> ClaimLost:
    """ClaimLost with the record that holds the key now (from ALL_OLD), if any does."""
    return ClaimLost(_idempotency_record(item, ours.scope, ours.key) if item else None)


class DynamoStore(DynamoBatches):
    """The store on one DynamoDB table; the module docstring shows the item layout."""

    kind = "dynamodb"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DynamoStore:
        """The store the settings name; creates the table when DYNAMODB_CREATE_TABLE."""
        store = cls(
            settings["DYNAMODB_TABLE"],
            region=settings["AWS_REGION"],
            endpoint_url=settings["AWS_ENDPOINT_URL"],
            history_retention_days=settings["HISTORY_RETENTION_DAYS"],
            events_retention_days=settings["EVENTS_RETENTION_DAYS"],
            events_settle_s=settings["EVENTS_SETTLE_S"],
        )
        if settings["DYNAMODB_CREATE_TABLE"]:
            store.create_table_if_missing()
        return store

    @_retrying
    def create(
        self,
        *,
        idempotency: AnswerOf | None = None,
        by: WrittenBy = UNATTRIBUTED,
        **values: Any,
    ) -> CustomerRecord:
        now = utc_timestamp()
        record = CustomerRecord(
            **new_record_values(values),
            id=new_customer_id(),
            created_at=now,
            updated_at=now,
            version=1,
        )
        email, changed = record.email, changes_between(None, record)
        answered = idempotency(record) if idempotency is not None else None
        item = _item(record)
        if answered is not None:
            # Where the answer is, for the delete that must erase it with the customer.
            item[ANSWERED_IN] = _idempotency_key(answered.scope, answered.key)["pk"]
        items: list[TransactWriteItemTypeDef] = [
            # A fresh uuid4 does not collide; the condition makes sure of it.
            {"Put": self._put(item, "attribute_not_exists(#pk)")},
            {"Put": self._claim_email(email, record.id)},
            {"Put": self._history(record, "created", by, changed)},
            {"Put": self._event(change_event(record, "created", changed))},
        ]
        if answered is not None:
            # The answer naming the customer, in the same transaction: all or nothing.
            items.append({"Put": self._answer(answered)})
        try:
            self._transact(*items)
        except ClientError as exc:
            reasons = _reasons(exc)
            # The id is new, so if it is taken this very transaction took it, in an
            # attempt whose answer was lost before botocore sent it again.
            if _failed(reasons[0]):
                return record
            # A lost key first: whoever holds it now may have created this very email.
            if answered is not None and _failed(reasons[4]):
                raise _claim_lost(reasons[4].get("Item"), answered) from exc
            if _failed(reasons[1]):
                raise EmailTaken(email) from exc
            raise
        return record

    def get(self, customer_id: str) -> CustomerRecord:
        return self._read(customer_id)

    def history_page(self, customer_id: str, *, limit: int, after: int | None) -> HistoryPage:
        self._read(customer_id)  # CustomerNotFound for an unknown or deleted customer
        request: QueryInputTypeDef = {
            "TableName": self.table_name,
            "IndexName": "history",
            "KeyConditionExpression": "#of = :id AND #version > :after",
            # TTL deletes an expired entry only eventually: until then it is filtered out.
            "FilterExpression": "#expiresAt > :now",
            "ExpressionAttributeNames": {
                "#of": "historyOf",
                "#version": "version",
                "#expiresAt": "expiresAt",
            },
            "ExpressionAttributeValues": {
                ":id": _s(customer_id),
                ":after": {"N": str(after or 0)},
                ":now": {"N": str(int(time.time()))},
            },
            "Limit": limit + 1,
        }
        entries: list[HistoryEntry] = []
        # Read on until limit + 1 entries or the end: the filter and the 1 MB page cap
        # may cut a page short, and has_more must be exact.
        while len(entries) <= limit:
            answer = self._client.query(**request)
            entries += [_history_entry(item) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return HistoryPage(items=entries[:limit], has_more=len(entries) > limit)

    def list_page(self, query: ListQuery) -> Page:
        limit, after, email, business_id = query.limit, query.after, query.email, query.business_id
        if email is not None:
            return self._by_email(email, after=after, business_id=business_id)
        if business_id == "":  # an empty string cannot be a key value: nobody has it
            return Page(items=[], has_more=False)
        index, hash_key, hash_value = "listing", "listPk", LIST_PK
        if business_id is not None:
            index, hash_key, hash_value = "business", "businessId", business_id
        request: QueryInputTypeDef = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": hash_key},
            "ExpressionAttributeValues": {":h": _s(hash_value)},
            "Limit": limit + 1,
        }
        if after is not None:
            # listSk is "<createdAt>#<id>" with a fixed-width createdAt, so its string
            # order is the (created_at, id) order the sqlite store pages by.
            request["KeyConditionExpression"] += " AND #sk > :after"
            request["ExpressionAttributeNames"] = {"#h": hash_key, "#sk": "listSk"}
            request["ExpressionAttributeValues"] = {
                ":h": _s(hash_value),
                ":after": _s(f"{after[0]}#{after[1]}"),
            }
        items: list[CustomerRecord] = []
        # One page holds limit + 1 items unless the 1 MB page cap cut it short: read on
        # until it does, so has_more is exact.
        while len(items) <= limit:
            answer = self._client.query(**request)
            items += [_record(item) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return Page(items=items[:limit], has_more=len(items) > limit)

    def list_json(self, query: ListQuery) -> JsonPage:
        return JsonPage.of(self.list_page(query))

    def _by_email(
        self, email: str, *, after: tuple[str, str] | None, business_id: str | None
    ) -> Page:
        claim = self._client.get_item(
            TableName=self.table_name, Key=_email_claim_key(email), ConsistentRead=True
        ).get("Item")
        try:
            record = self._read(claim["customerId"]["S"]) if claim else None
        except CustomerNotFound:  # deleted between the two reads
            record = None
        if (
            record is None
            or (after is not None and (record.created_at, record.id) <= after)
            or (business_id is not None and record.business_id != business_id)
        ):
            return Page(items=[], has_more=False)
        return Page(items=[record], has_more=False)

    @_retrying_up_to(UPDATE_ATTEMPTS)
    def update(
        self,
        customer_id: str,
        *,
        changes: Mapping[str, Any],
        expected_version: int | None = None,
        action: Action = "updated",
        by: WrittenBy = UNATTRIBUTED,
    ) -> CustomerRecord:
        """Read, then write conditioned on the version read, with the history entry of the
        next version in the same transaction; a change in between is a retry, or a 412
        when the caller expected a version."""
        unknown = set(changes) - set(WRITABLE_COLUMNS)
        if unknown:
            raise ValueError(f"not writable: {sorted(unknown)}")
        cleared = [
            column for column in UNCLEARABLE if column in changes and changes[column] is None
        ]
        if cleared:
            raise ValueError(f"cannot be cleared: {cleared}")
        old = self._read(customer_id)
        if expected_version not in (None, old.version):
            raise VersionMismatch(old)
        changed = changes_between(old, with_changes(old, changes))
        if not changed:
            return old
        now, token = utc_timestamp(), _write_token()
        new = replace(with_changes(old, changes), updated_at=now, version=old.version + 1)
        sets = [f"#{ATTRIBUTE_OF[c]} = :{c}" for c, v in changes.items() if v is not None]
        removes = [f"#{ATTRIBUTE_OF[c]}" for c, v in changes.items() if v is None]
        expression = "SET " + ", ".join(
            [*sets, "#updatedAt = :now", "#version = :next", "#writeToken = :token"]
        )
        if removes:  # a GSI key must be absent, not null: clearing removes the attribute
            expression += " REMOVE " + ", ".join(removes)
        values = {f":{c}": _attribute(v) for c, v in changes.items() if v is not None}
        values |= {
            ":now": _s(now),
            ":next": {"N": str(new.version)},
            ":read": {"N": str(old.version)},
            ":token": _s(token),
        }
        # attribute_exists: without it UpdateItem would create a missing customer. The
        # version read: the entry's changes were computed from it. The token: the same
        # update sent again finds its own token and fails, not applies twice.
        condition = (
            "attribute_exists(#pk) AND #version = :read"
            " AND (attribute_not_exists(#writeToken) OR #writeToken <> :token)"
        )
        spec: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _customer_key(customer_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                p: n for p, n in NAMES.items() if p in expression or p in condition
            },
            "ExpressionAttributeValues": values,
            # On failure the current item comes back: VersionMismatch without a second read.
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        items: list[TransactWriteItemTypeDef] = [
            {"Update": cast("UpdateTypeDef", spec)},
            {"Put": self._history(new, action, by, changed)},
            {"Put": self._event(change_event(new, action, changed))},
        ]
        if email_key(new.email) != email_key(old.email):
            # A new address: claim it and release the old one (a change of case keeps
            # the key, and so the claim).
            items += [{"Put": self._claim_email(new.email, customer_id)}, self._release_email(old)]
        try:
            self._transact(*items)
        except ClientError as exc:
            reasons = _reasons(exc)
            current = reasons[0].get("Item")
            if _failed(reasons[0]):
                if _written_by(current, token):
                    return new  # applied by an attempt whose answer was lost
                # the customer first, as sqlite's read decides first
                self._raise_for_customer(customer_id, current, retry=expected_version is None)
            if len(reasons) > 3 and _failed(reasons[3]):
                raise EmailTaken(new.email) from exc
            raise
        # TransactWriteItems returns no item, but with the version pinned to the one read
        # the new state is exactly the old one plus the changes.
        return new

    @_retrying
    def delete(self, customer_id: str, *, expected_version: int | None = None) -> None:
        item = self._read_item(customer_id)
        old = _record(item)
        if expected_version not in (None, old.version):
            raise VersionMismatch(old)
        # The newest entries go in the delete's own transaction; a customer with more
        # versions than fit there loses its older entries first (as retention would).
        recent = range(max(1, old.version - HISTORY_IN_DELETE + 1), old.version + 1)
        if recent.start > 1:
            self._delete_history(customer_id, before=recent.start)
        history: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": {"pk": _s(_history_pk(customer_id, version))},
                }
            }
            for version in recent
        ]
        delete: TransactWriteItemTypeDef = {
            "Delete": {
                "TableName": self.table_name,
                "Key": _customer_key(customer_id),
                # Unchanged since the read (so the claim deleted with it is its own), and
                # so still at the version the caller expected, if it expected one.
                "ConditionExpression": "attribute_exists(#pk) AND #version = :read",
                "ExpressionAttributeNames": {"#pk": "pk", "#version": "version"},
                "ExpressionAttributeValues": {":read": {"N": str(old.version)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        answered_in = item.get(ANSWERED_IN)
        event: TransactWriteItemTypeDef = {"Put": self._event(deletion_event(old))}
        while True:
            items = [delete, self._release_email(old)]
            if answered_in is not None:
                items.append(self._erase_answer(answered_in, customer_id))
            try:
                # The answer's item, when there is one, third: its failure is read below.
                self._transact(*items, event, *history)
                return
            except ClientError as exc:
                reasons = _reasons(exc)
                if answered_in is not None and _failed(reasons[2]) and not _failed(reasons[0]):
                    # The record names the customer no more (it expired and went, or its
                    # key was taken anew): nothing of the person is in it. Without it, then.
                    answered_in = None
                    continue
                reason = reasons[0]
                if _failed(reason) and reason.get("Item") is None and _sent_again(exc):
                    # Gone, and the delete was sent more than once: an attempt whose answer
                    # was lost deleted it (or another delete did; it is gone as asked).
                    return
                if _failed(reason):
                    # A change since the read: run again, or 412 when a version was expected.
                    retry = expected_version is None
                    self._raise_for_customer(customer_id, reason.get("Item"), retry=retry)
                raise

    @_retrying
    def claim_idempotency_key(
        self, claim: IdempotencyRecord, *, now: int, limits: IdempotencyLimits | None = None
    ) -> IdempotencyRecord | None:
        if limits is None:
            try:
                self._client.put_item(**self._hold(_idempotency_item(claim), now=now))
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                return _other_holder(cast("Item | None", exc.response.get("Item")), claim)
            return None
        # Read first: a key already held or answered is found whatever the counts say.
        pk = _idempotency_key(claim.scope, claim.key)["pk"]["S"]
        counter_pks = counts.counter_pks(claim.owner)
        found = self._items([pk, *counter_pks])
        current = found.get(pk)
        if current is not None and int(current["expiresAt"]["N"]) > now:
            return _idempotency_record(current, claim.scope, claim.key)
        hour = counts.expiry_hour(now, limits.lifetime)
        bounds = ((counter_pks[0], limits.per_client, True), (counter_pks[1], limits.total, False))
        updates: list[TransactWriteItemTypeDef] = []
        for counter_pk, bound, per_client in bounds:
            counter = found.get(counter_pk)
            if not counts.has_room(counter, bound=bound, hour=hour, now=now):
                retry_after = counts.retry_after(counter, now)
                raise IdempotencyKeysExhausted(per_client=per_client, retry_after=retry_after)
            update = counts.count_up(
                self.table_name, counter_pk, counter, bound=bound, hour=hour, now=now
            )
            updates.append({"Update": update})
        hold = _idempotency_item(claim) | {counts.COUNTED_IN: {"N": str(hour)}}
        try:
            self._transact({"Put": self._hold(hold, now=now)}, *updates)
        except ClientError as exc:
            reasons = _reasons(exc)
            if _failed(reasons[0]):  # another request took the key since the read
                return _other_holder(reasons[0].get("Item"), claim)
            for reason, (counter_pk, _, per_client) in zip(reasons[1:], bounds, strict=True):
                if _failed(reason):  # concurrent claims filled the room since the read
                    retry_after = counts.retry_after(found.get(counter_pk), now)
                    raise IdempotencyKeysExhausted(
                        per_client=per_client, retry_after=retry_after
                    ) from exc
            raise
        return None

    def complete_idempotency_key(self, answered: IdempotencyRecord) -> None:
        try:
            self._client.put_item(**self._answer(answered))
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            current = cast("Item | None", exc.response.get("Item"))
            if current and _idempotency_record(current, answered.scope, answered.key) == answered:
                return  # this very answer, sent again after the reply to it was lost
            raise _claim_lost(current, answered) from exc

    def release_idempotency_key(self, claim: IdempotencyRecord) -> None:
        try:
            released = self._client.delete_item(
                TableName=self.table_name,
                Key=_idempotency_key(claim.scope, claim.key),
                # Only while this request holds it unanswered: never someone else's record.
                ConditionExpression="#token = :token AND attribute_not_exists(#status)",
                ExpressionAttributeNames={"#token": "token", "#status": "status"},
                ExpressionAttributeValues={":token": _s(claim.token)},
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return
        if counts.COUNTED_IN not in released:
            return
        # Counted down after the delete, not with it (the hour is on the record): a crash
        # between the two leaves the record counted until its hour ends, never less.
        hour = int(released[counts.COUNTED_IN]["N"])
        owner = released["owner"]["S"] if "owner" in released else ""
        try:
            owner_pk, total_pk = counts.counter_pks(owner)
            self._transact(
                {"Update": counts.count_down(self.table_name, owner_pk, hour)},
                {"Update": counts.count_down(self.table_name, total_pk, hour)},
            )
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":  # a counter gone with its TTL
                raise

    def ping(self) -> None:
        """Read a key that never exists: a cheap request, and it needs the table."""
        try:
            self._client.get_item(TableName=self.table_name, Key={"pk": _s("PING")})
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    def check_writable(self) -> None:
        """Write the HEALTH item, as a customer's write would be; raises StoreUnavailable.

        A conditional UpdateItem: DynamoDB refuses it as it would refuse any write
        (throttling, no write permission, a table being deleted, a bad endpoint), and the
        condition on the partition key means it never creates anything but that item.
        The message is DynamoDB's error code (or botocore's class name), nothing more.
        """
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"pk": _s("HEALTH")},
                UpdateExpression="SET #checked = :now",
                # The item is new, or one this probe wrote: never a write over anything else.
                ConditionExpression="attribute_not_exists(pk) OR attribute_exists(#checked)",
                ExpressionAttributeNames={"#checked": "checkedAt"},
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code") or "ClientError"
            raise StoreUnavailable(code) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    # --- helpers ------------------------------------------------------------------------

    def _read(self, customer_id: str) -> CustomerRecord:
        """The customer, read strongly consistently; raises CustomerNotFound."""
        return _record(self._read_item(customer_id))

    def _read_item(self, customer_id: str) -> Item:
        """The customer's item, read strongly consistently; raises CustomerNotFound."""
        answer = self._client.get_item(
            TableName=self.table_name, Key=_customer_key(customer_id), ConsistentRead=True
        )
        if "Item" not in answer:
            raise CustomerNotFound(customer_id)
        return answer["Item"]

    def events_page(self, query: EventQuery) -> EventPage:
        """Query the `feed` index between the cursor's id and the settle bound.

        Ids are UUIDv7, stamped just before the write's transaction is sent, so a
        transaction still in flight holds an id a little older than now. The feed
        stops `events_settle_s` short of the clock: every event before that bound has
        committed (and reached the index), so a reader never passes an event that
        appears behind it later. docs/events.md weighs this against a counter item.
        """
        now = time.time()
        bound_ms = int((now - self.events_settle_s) * 1000)
        bound = event_id_floor(bound_ms)
        names = {"#pk": "feedPk", "#sk": "feedSk", "#expiresAt": "expiresAt"}
        values: dict[str, AttributeValueTypeDef] = {
            ":pk": _s(FEED_PK),
            ":bound": _s(bound),
            ":now": {"N": str(int(now))},
        }
        key = "#pk = :pk AND #sk < :bound"
        if query.after is not None:
            if query.after >= bound:  # nothing settled after it yet
                return EventPage([], False, query.after, utc_timestamp())
            key = "#pk = :pk AND #sk BETWEEN :after AND :bound"
            values[":after"] = _s(query.after)
        # TTL deletes an expired event only eventually: until then it is filtered out.
        conditions = ["#expiresAt > :now"]
        for attribute, wanted in (("type", query.type), ("subject", query.subject)):
            if wanted is not None:
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = _s(wanted)
                conditions.append(f"#{attribute} = :{attribute}")
        request: QueryInputTypeDef = {
            "TableName": self.table_name,
            "IndexName": "feed",
            "KeyConditionExpression": key,
            "FilterExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": query.limit + 1,
        }
        events: list[ChangeEvent] = []
        # Read on until limit + 1 events or the bound: filters and the 1 MB cap cut
        # pages short, and has_more must be exact.
        while len(events) <= query.limit:
            answer = self._client.query(**request)
            events += [
                event_from_item(item)
                for item in answer.get("Items", [])
                if item["feedSk"]["S"] != query.after  # BETWEEN is inclusive
            ]
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        items = events[: query.limit]
        if len(events) > query.limit:
            return EventPage(items, True, items[-1].position, items[-1].time)
        # Everything before the bound has been read: the next read starts there (the
        # bound is a prefix, which sorts below every id it begins, so none is skipped).
        at = datetime.fromtimestamp(bound_ms / 1000, UTC).isoformat(timespec="microseconds")
        return EventPage(items, False, bound, at[:-6] + "Z")

    def _delete_history(self, customer_id: str, *, before: int) -> None:
        """Delete the customer's history entries older than version `before` (BatchWriteItem)."""
        request: QueryInputTypeDef = {
            "TableName": self.table_name,
            "IndexName": "history",
            "KeyConditionExpression": "#of = :id AND #version < :before",
            "ExpressionAttributeNames": {"#of": "historyOf", "#version": "version", "#pk": "pk"},
            "ExpressionAttributeValues": {":id": _s(customer_id), ":before": {"N": str(before)}},
            "ProjectionExpression": "#pk",
        }
        pks: list[str] = []
        while True:
            answer = self._client.query(**request)
            pks += [item["pk"]["S"] for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        for start in range(0, len(pks), BATCH_WRITE_ITEMS):
            writes: Any = {
                self.table_name: [
                    {"DeleteRequest": {"Key": {"pk": _s(pk)}}}
                    for pk in pks[start : start + BATCH_WRITE_ITEMS]
                ]
            }
            for attempt in itertools.count():
                writes = self._client.batch_write_item(RequestItems=writes).get("UnprocessedItems")
                if not writes:
                    break
                time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 5)))

    def _hold(self, item: dict[str, AttributeValueTypeDef], *, now: int) -> PutTypeDef:
        """The Put of a held IDEMPOTENCY# record, only where no live record is."""
        return {
            "TableName": self.table_name,
            "Item": item,
            # TTL deletes an expired record only eventually: until then it is no holder.
            "ConditionExpression": "attribute_not_exists(#pk) OR #expiresAt <= :now",
            "ExpressionAttributeNames": {"#pk": "pk", "#expiresAt": "expiresAt"},
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _answer(self, answered: IdempotencyRecord) -> PutTypeDef:
        """The Put of an answered IDEMPOTENCY# record, only over this request's own hold."""
        return {
            "TableName": self.table_name,
            "Item": _idempotency_item(answered),
            "ConditionExpression": "#token = :token AND attribute_not_exists(#status)",
            "ExpressionAttributeNames": {"#token": "token", "#status": "status"},
            "ExpressionAttributeValues": {":token": _s(answered.token)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _erase_answer(
        self, answered_in: AttributeValueTypeDef, customer_id: str
    ) -> TransactWriteItemTypeDef:
        """The Update that turns the recorded answer naming the customer into a tombstone.

        Its expiry stays: the key remains taken until then (see db.ERASED_STATUS).
        """
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": answered_in},
                "UpdateExpression": "SET #status = :erased, #headers = :none, #body = :empty"
                " REMOVE #customerId",
                # Only the record that names this customer: never create one, never touch
                # a later request's record under the same key.
                "ConditionExpression": "#customerId = :id",
                "ExpressionAttributeNames": {
                    "#status": "status",
                    "#headers": "headers",
                    "#body": "body",
                    "#customerId": "customerId",
                },
                "ExpressionAttributeValues": {
                    ":erased": {"N": str(ERASED_STATUS)},
                    ":none": _s("[]"),
                    ":empty": {"B": b""},
                    ":id": _s(customer_id),
                },
            }
        }

    def _release_email(self, old: CustomerRecord) -> TransactWriteItemTypeDef:
        """The Delete of the customer's claim on its current email."""
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": _email_claim_key(old.email),
                # Only our own claim; with the version check beside it this always holds.
                "ConditionExpression": "customerId = :id",
                "ExpressionAttributeValues": {":id": _s(old.id)},
            }
        }

    @staticmethod
    def _raise_for_customer(customer_id: str, item: Item | None, *, retry: bool) -> NoReturn:
        """The customer's condition failed: it is gone, it changed (retry), or mismatched."""
        if item is None:
            raise CustomerNotFound(customer_id)
        if retry:
            raise _Retry
        raise VersionMismatch(_record(item))
