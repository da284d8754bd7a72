"""Outgoing webhooks: drip tells other systems what happened, signed the Standard Webhooks way.

    signing.py   webhook-id / webhook-timestamp / webhook-signature (v1, HMAC-SHA256), pure
    delivery.py  one pass over the queue (drip.store.webhooks): post, retry with backoff
"""

from drip.webhooks.delivery import deliver_due
from drip.webhooks.signing import sign, signature_headers, verify

__all__ = ["deliver_due", "sign", "signature_headers", "verify"]
