"""Gumroad's sale ping. Gumroad does not sign it, so drip accepts it only at a URL whose
last part is DRIP_GUMROAD_SECRET (`/hooks/gumroad/SECRET`); anyone who learns that URL
can post sales, so keep it as secret as a password. The product's permalink is the
catalog key; `refunded=true` is a refund of the sale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from drip.catalog import Catalog
from drip.errors import BadSignature, ConfigError, InvalidInput
from drip.purchases import Refund, order_from
from drip.settings import Settings
from drip.shops.base import Shop, ShopNews, known_products, same

#: A path secret shorter than this could be guessed.
MIN_SECRET = 16


class Gumroad(Shop):
    name = "gumroad"
    path = "/hooks/gumroad/{secret}"
    secret_variable = "DRIP_GUMROAD_SECRET"

    def secret(self, settings: Settings) -> str:
        return settings.gumroad_secret

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str],
               path: Mapping[str, Any]) -> None:
        if len(secret) < MIN_SECRET:
            raise ConfigError(f"DRIP_GUMROAD_SECRET is shorter than {MIN_SECRET} characters; "
                              "set a long random one (python -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))').")
        if not same(str(path.get("secret", "")), secret):
            raise BadSignature("The Gumroad ping's URL does not carry the secret.")

    def parse(self, body: bytes, headers: Mapping[str, str], catalog: Catalog) -> ShopNews:
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=bool(body), max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("The Gumroad ping is not a form (x-www-form-urlencoded).") \
                from None
        form = {k: v[0] for k, v in fields.items()}
        sale_id = form.get("sale_id", "").strip()[:100]
        if not sale_id:
            raise InvalidInput("The Gumroad ping has no sale_id.")
        if form.get("refunded") == "true" or form.get("resource_name") == "refund":
            return ShopNews(refunds=(Refund(self.name, sale_id, sale_id),))
        product = (form.get("permalink") or form.get("product_permalink", "")
                   .rstrip("/").rpartition("/")[2]).strip()
        if not known_products(catalog, [product]).products:
            return ShopNews(ignored=f"the product's permalink is not in the catalog "
                                    f"({product[:100]})")
        return ShopNews(orders=(order_from(self.name, {
            "order_id": sale_id, "email": form.get("email"), "product": product,
            "name": form.get("full_name", ""),
            "timezone": form.get("url_params[timezone]", "")}),))
