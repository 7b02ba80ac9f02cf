"""How a DynamoDB write fails and is tried again: lost races, cancelled transactions,
answers that never came, and the tokens that make a write safe to send again.

Apart from the store because both the request paths (dynamodb) and imports
(dynamodb_batches) read failures the same way; see "Writes sent again" in
customers.stores.dynamodb's docstring. Names starting with "_" are private to the
DynamoDB store's modules.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from botocore.exceptions import ClientError

from db import (
    StoreUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = Mapping[str, AttributeValueTypeDef]

P = ParamSpec("P")
R = TypeVar("R")

ATTEMPTS = 4  # tries of a write that lost a race to another change of the same customer
THROTTLED = ("ThrottlingError", "ProvisionedThroughputExceeded")
# Errors after which a write may or may not have been applied (botocore has already sent
# it again as often as it would); any 5xx too.
OUTCOME_UNKNOWN = ("TransactionInProgressException", "RequestTimeout", "RequestTimeoutException")


class _Retry(Exception):
    """A concurrent write won the race; run the operation again on fresh state."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reasons(exc: ClientError) -> list[dict[str, Any]]:
    """Per item of a cancelled transaction, in the order sent: {"Code", "Item"?}.

    Re-raises anything else. TransactionConflict (another transaction on the same items
    was in flight) is transient: the operation is retried.
    """
    if _code(exc) != "TransactionCanceledException":
        raise exc
    reasons = cast("list[dict[str, Any]]", exc.response.get("CancellationReasons", []))
    if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
        raise _Retry from exc
    return reasons


def _failed(reason: Mapping[str, Any]) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def _sent_again(exc: ClientError) -> bool:
    """Whether botocore sent the request more than once before this answer."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) > 0


def _outcome_unknown(exc: ClientError) -> bool:
    """Whether the failed write may have been applied all the same."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return status >= 500 or _code(exc) in OUTCOME_UNKNOWN


def _write_token() -> str:
    """A token for one write, kept for every time it is sent (36 characters: a
    ClientRequestToken's limit)."""
    return str(uuid.uuid4())


def _retrying_up_to(attempts: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`method`, run again (up to `attempts` times in all, with jitter) when it lost a race."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return method(*args, **kwargs)
                except _Retry:
                    time.sleep(random.uniform(0, 0.02 * min(attempt, 5)))
            raise StoreUnavailable("too many concurrent changes of one customer")

        return wrapper

    return decorate


_retrying = _retrying_up_to(ATTEMPTS)
