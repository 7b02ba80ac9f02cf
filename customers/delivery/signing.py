"""Standard Webhooks signatures: what receivers' libraries (`standardwebhooks`, Svix) verify.

The signature is `v1,` and the base64 of HMAC-SHA256, keyed with the secret's bytes (the
base64 after `whsec_`), over `{webhook-id}.{webhook-timestamp}.{body}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from customers.config import WHSEC_PREFIX


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_...` secret holds (checked when the settings were read)."""
    return base64.b64decode(secret.removeprefix(WHSEC_PREFIX))


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one delivery attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
