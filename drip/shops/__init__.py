"""Shops behind one interface: each module verifies its shop's signature and parses its
payload into orders and refunds (drip.purchases records them). As providers/ is for email.

    base.py          Shop (verify, parse), ShopNews, and receive(): the fixed pipeline
    shopify.py       orders/paid, refunds/create; X-Shopify-Hmac-Sha256 (base64)
    lemonsqueezy.py  order_created, order_refunded; X-Signature (hex)
    gumroad.py       the sale ping (unsigned): a secret in the URL path instead
"""

from drip.shops.base import Shop, ShopNews, receive
from drip.shops.gumroad import Gumroad
from drip.shops.lemonsqueezy import LemonSqueezy
from drip.shops.shopify import Shopify

SHOPS: tuple[Shop, ...] = (Shopify(), LemonSqueezy(), Gumroad())

__all__ = ["SHOPS", "Gumroad", "LemonSqueezy", "Shop", "ShopNews", "Shopify", "receive"]
