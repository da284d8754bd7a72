"""Typed, frozen settings read once from DRIP_* environment variables.

`os.environ` is read here and nowhere else: `load_settings()` turns it into a
`Settings` object that is passed down to everything that needs configuration.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drip.errors import ConfigError
from drip.message import HTML_SPECIAL

log = logging.getLogger(__name__)

Backend = Literal["outbox", "console", "smtp", "sendgrid"]
SENDGRID_DEFAULT_HOST = "https://api.sendgrid.com"
#: Hosts that only this machine reaches: fine for trying drip out, useless in a real inbox.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
#: The SQLAlchemy drivers drip installs: anything else fails to import at the first query.
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")

#: Every variable drip reads, with what it is for. The README's settings table mirrors this.
VARIABLES: dict[str, str] = {
    "DRIP_DATABASE_URL": "SQLAlchemy URL of the database (default sqlite:///var/drip.db)",
    "DRIP_BACKEND": "where email goes: outbox (default), console, smtp or sendgrid",
    "DRIP_OUTBOX_DIR": "folder for .eml files when DRIP_BACKEND=outbox (default var/outbox)",
    "DRIP_BASE_URL": "public https URL of the web app, used in every link (default https://localhost:8000)",
    "DRIP_SECRET_KEY": "key that signs every link; generated once into var/secret_key if unset",
    "DRIP_SECRET_KEY_FALLBACKS": "earlier signing keys, comma-separated: links they signed "
                                 "still work after a key change (newest last)",
    "DRIP_FROM_EMAIL": "sender address (default coach@example.com)",
    "DRIP_FROM_NAME": "sender name, shown as the coach's name (default Dayna)",
    "DRIP_POSTAL_ADDRESS": "the sender's postal address, printed in every email footer",
    "DRIP_BRAND_NAME": "the name at the top of every email (default DRIP_FROM_NAME)",
    "DRIP_BRAND_LOGO_URL": "https:// address of a logo shown at the top of every email, "
                           "about 48 px tall (default: no logo)",
    "DRIP_SEQUENCES_DIR": "folder of sequence YAML files (default sequences)",
    "DRIP_TEMPLATES_DIR": "folder of templates (default templates)",
    "DRIP_VAR_DIR": "folder for local state: database, outbox, generated key (default var)",
    "DRIP_BATCH_SIZE": "deliveries claimed per batch in one dispatch pass (default 500)",
    "DRIP_LEASE_SECONDS": "how long a claim or an in-flight send is held "
                          "(default 300, at most 86400)",
    "DRIP_SENDGRID_HOST": "SendGrid API host (default https://api.sendgrid.com)",
    "DRIP_SENDGRID_TIMEOUT": "seconds before a SendGrid request is given up (default 30, at "
                             "most 300)",
    "DRIP_SENDGRID_SANDBOX": "1 to set SendGrid's sandbox mode: accepted but never delivered",
    "SENDGRID_API_KEY": "SendGrid API key, for DRIP_BACKEND=sendgrid",
    "DRIP_SENDGRID_ACTIVITY": "1 to settle unknown emails by asking SendGrid's Email Activity "
                              "API (a paid add-on; off by default)",
    "DRIP_SENDGRID_SETTLE_SECONDS": "how old an unknown batch must be before SendGrid is asked "
                                    "about it (default 900: the activity feed lags)",
    "DRIP_SENDGRID_ACTIVITY_PER_MINUTE": "Email Activity queries all workers may make per "
                                         "minute, together (default 3)",
    "DRIP_CIRCUIT_WAIT_SECONDS": "how long an open provider circuit waits before its first "
                                 "probe (default 60; each failed probe doubles it, to 1 h)",
    "DRIP_SMTP_HOST": "SMTP server for DRIP_BACKEND=smtp (default localhost)",
    "DRIP_SMTP_PORT": "SMTP port (default 587)",
    "DRIP_SMTP_USER": "SMTP user name, if the server wants AUTH",
    "DRIP_SMTP_PASSWORD": "SMTP password",
    "DRIP_SMTP_TLS": "starttls (default), ssl (implicit TLS) or none",
    "DRIP_SMTP_CONNECTIONS": "SMTP connections each worker keeps open and sends over at once "
                             "(default 4)",
    "DRIP_WEBHOOK_SECRET": "HMAC key for POST /hooks/purchase",
    "DRIP_STRIPE_WEBHOOK_SECRET": "Stripe endpoint secret (whsec_...) for POST /hooks/stripe",
    "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": "SendGrid event webhook verification key (base64 or PEM)",
    "DRIP_SHOPIFY_WEBHOOK_SECRET": "Shopify webhook signing secret for POST /hooks/shopify",
    "DRIP_LEMONSQUEEZY_WEBHOOK_SECRET": "Lemon Squeezy signing secret for POST /hooks/lemonsqueezy",
    "DRIP_GUMROAD_SECRET": "the secret in the Gumroad ping URL /hooks/gumroad/SECRET",
    "DRIP_WEBHOOK_URLS": "comma-separated URLs drip posts its events to (Standard Webhooks)",
    "DRIP_WEBHOOK_SIGNING_SECRET": "whsec_... secret that signs the outgoing webhooks",
    "DRIP_METRICS_TOKEN": "bearer token for GET /metrics from other machines (loopback needs none)",
    "DRIP_CONSENT_TEXT_VERSION": "consent text version kept with each opt-in (default 2026-01)",
    "DRIP_SUBSCRIBE_LIMIT": "opt-in requests one IP address may make per hour (default 10)",
    "DRIP_TRUSTED_PROXIES": "comma-separated IPs or networks of the reverse proxies whose "
                            "X-Forwarded-For drip serve believes (default: none)",
    "DRIP_EVENTS_MAX_BYTES": "largest SendGrid event POST accepted, in bytes (default 8388608)",
    "DRIP_COACH_EMAIL": "where the coach's weekly digest goes (no digest is emailed if unset)",
    "DRIP_COACH_TIMEZONE": "the digest goes Mondays 07:00 in this timezone (default UTC)",
    "DRIP_LOG_LEVEL": "DEBUG, INFO (default), WARNING or ERROR",
    "DRIP_TICK_SECONDS": "seconds between the scheduler's dispatch passes (default 60)",
    "DRIP_MAX_PER_SECOND": "send rate shared by all workers, emails/s (default 0: no limit)",
}


class Settings(BaseModel):
    """Everything drip can be configured with. Frozen: pass it down, never mutate it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///var/drip.db"
    backend: Backend = "outbox"
    outbox_dir: Path = Path("var/outbox")
    base_url: str = "https://localhost:8000"
    secret_key: str = Field(default="", repr=False)
    secret_key_fallbacks: tuple[str, ...] = Field(default=(), repr=False)
    secret_key_generated: bool = False
    from_email: str = "coach@example.com"
    from_name: str = "Dayna"
    postal_address: str = "Dayna's Running Lab, 123 Example Street, Springfield, OR 97477, USA"
    brand_name: str = Field(default="", max_length=100)
    brand_logo_url: str = ""
    sequences_dir: Path = Path("sequences")
    templates_dir: Path = Path("templates")
    var_dir: Path = Path("var")
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # A day at most: a dead worker's claims wait this long before another worker takes them.
    lease_seconds: int = Field(default=300, ge=5, le=86_400)
    sendgrid_host: str = SENDGRID_DEFAULT_HOST
    sendgrid_timeout: float = Field(default=30.0, gt=0, le=300)
    sendgrid_sandbox: bool = False
    sendgrid_api_key: str = Field(default="", repr=False)
    sendgrid_activity: bool = False
    sendgrid_settle_seconds: int = Field(default=900, ge=0, le=30 * 86_400)
    sendgrid_activity_per_minute: float = Field(default=3.0, gt=0, le=6000)
    circuit_wait_seconds: float = Field(default=60.0, gt=0, le=3600)
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = Field(default="", repr=False)
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_connections: int = Field(default=4, ge=1, le=64)
    webhook_secret: str = Field(default="", repr=False)
    stripe_webhook_secret: str = Field(default="", repr=False)
    shopify_webhook_secret: str = Field(default="", repr=False)
    lemonsqueezy_webhook_secret: str = Field(default="", repr=False)
    gumroad_secret: str = Field(default="", repr=False)
    metrics_token: str = Field(default="", repr=False)
    webhook_urls: str = ""
    webhook_signing_secret: str = Field(default="", repr=False)
    sendgrid_webhook_public_key: str = ""
    consent_text_version: str = Field(default="2026-01", min_length=1, max_length=40)
    subscribe_limit: int = Field(default=10, ge=1, le=100_000)
    #: Whose X-Forwarded-For is believed (the rate limit and consent record use it).
    trusted_proxies: tuple[str, ...] = ()
    events_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    coach_email: str = ""
    coach_timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    tick_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_per_second: float = Field(default=0.0, ge=0, le=100_000)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (for example https://coach.example.com)")
        if HTML_SPECIAL.search(value):
            raise ValueError("must not contain & < > \" or ' (the links in every email start "
                             "with it); use a plain address such as https://coach.example.com")
        return value.rstrip("/")

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls_are_http(cls, value: str) -> str:
        wrong = [u.strip() for u in value.split(",")
                 if u.strip() and not u.strip().startswith(("https://", "http://"))]
        if wrong:
            raise ValueError(f"must be http(s) URLs separated by commas, not {wrong[0][:80]}")
        return value

    @field_validator("secret_key_fallbacks", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("from_name")
    @classmethod
    def _from_name_fits_a_header(cls, value: str) -> str:
        from drip.message import header_value

        try:  # it goes into every email's From: header
            return header_value("From", value)
        except ValueError:
            raise ValueError("must be one line, without control characters or encoded words "
                             "that hide a line break; write the name as it should show") from None

    @field_validator("brand_name")
    @classmethod
    def _brand_name_is_one_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\t") or not value.isprintable():
            raise ValueError("must be one line of printable text, such as Dayna's Running Lab")
        return value.strip()

    @field_validator("brand_logo_url")
    @classmethod
    def _logo_is_https(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:  # e.g. an unclosed [ in the host
            host = None
        if (not value.startswith("https://") or not host
                or any(ch.isspace() or ch in "<>\"'" for ch in value)):
            raise ValueError("must be an https:// address of an image without spaces, quotes "
                             "or <>, such as https://www.example.com/logo.png; mail programs "
                             "do not show other images")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network; list your "
                                 "proxies' addresses, such as 127.0.0.1 or 10.0.0.0/8") from None
        return value

    @field_validator("coach_timezone")
    @classmethod
    def _coach_timezone_known(cls, value: str) -> str:
        from drip.addresses import validate_timezone
        from drip.errors import InvalidTimezone

        try:
            return validate_timezone(value)
        except InvalidTimezone as exc:  # its message names the zone and suggests one
            raise ValueError(str(exc)) from None

    @field_validator("database_url")
    @classmethod
    def _database_url_known(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        try:
            driver = make_url(value).drivername
        except (ArgumentError, ValueError) as exc:  # e.g. a port that is not a number
            raise ValueError(f"is not a valid URL ({exc}); write it as "
                             "postgresql+psycopg://user:password@host:5432/name or "
                             "sqlite:///path/to/drip.db") from None
        if driver not in DATABASE_DRIVERS:
            raise ValueError(f"names the driver {driver}, which drip does not use; write "
                             "postgresql+psycopg:// or sqlite:///")
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        if self.webhook_urls.strip() and not self.webhook_signing_secret:
            raise ValueError(
                "DRIP_WEBHOOK_URLS is set but DRIP_WEBHOOK_SIGNING_SECRET is not, so the "
                "receivers could not tell drip's posts from forgeries; set it to whsec_ and "
                "base64 (whsec_$(openssl rand -base64 32))")
        return self

    @model_validator(mode="after")
    def _real_email_works(self) -> Settings:
        """Email that reaches inboxes carries a working https unsubscribe link and the
        sender's real postal address, never the defaults meant for trying drip out."""
        if not self.reaches_inboxes:
            return self
        problems = []
        host = urlsplit(self.base_url).hostname or ""
        if not self.base_url.startswith("https://") or host in LOCAL_HOSTS:
            problems.append(
                f"DRIP_BASE_URL is {self.base_url}, but every email's unsubscribe link starts "
                "with it; set it to the public https address of the web app (for example "
                "https://coach.example.com)")
        if self.postal_address == Settings.model_fields["postal_address"].default:
            problems.append(
                "DRIP_POSTAL_ADDRESS is not set, so every email would print a made-up "
                "address; set it to the sender's postal address, which the law asks for")
        if self.secret_key_generated:
            problems.append(
                "DRIP_SECRET_KEY is not set, so each machine (and each folder drip starts "
                "in) would sign links with its own generated key and the web app would "
                "refuse the others' unsubscribe links; set the same DRIP_SECRET_KEY "
                "everywhere (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def reaches_inboxes(self) -> bool:
        """True when email goes to real people: SendGrid for real, or an SMTP server that
        is not on this machine."""
        if self.backend == "smtp":
            return self.smtp_host not in LOCAL_HOSTS
        return self.sends_for_real

    @property
    def sends_for_real(self) -> bool:
        """True when email would reach real inboxes through SendGrid's own API."""
        return (
            self.backend == "sendgrid"
            and self.sendgrid_host.rstrip("/") == SENDGRID_DEFAULT_HOST
            and not self.sendgrid_sandbox
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def webhook_targets(self) -> tuple[str, ...]:
        """DRIP_WEBHOOK_URLS as a list (the outgoing webhooks' receivers)."""
        return tuple(u.strip() for u in self.webhook_urls.split(",") if u.strip())


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read DRIP_* variables (and SENDGRID_API_KEY) once into a Settings object.

    Raises ConfigError with one sentence per wrong variable, naming the fix.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in VARIABLES:
        if name in env and env[name] != "":
            key = name.removeprefix("DRIP_").lower()
            values[key] = env[name]
    for flag in ("sendgrid_sandbox", "sendgrid_activity"):
        if flag in values:
            values[flag] = _truthy(str(values[flag]))
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    values.update(overrides)
    var_dir = Path(str(values.get("var_dir", "var")))
    if "outbox_dir" not in values:
        values["outbox_dir"] = var_dir / "outbox"
    if "database_url" not in values:
        values["database_url"] = f"sqlite:///{var_dir / 'drip.db'}"
    generate = not values.get("secret_key")
    if generate:  # checked first, so refused settings write no key file
        values["secret_key"], values["secret_key_generated"] = "", True
    try:
        loaded = Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule across fields: its message names the variables
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            field = str(error["loc"][0])
            variable = (
                "SENDGRID_API_KEY" if field == "sendgrid_api_key" else f"DRIP_{field.upper()}"
            )
            problems.append(f"{variable} {error['msg'].removeprefix('Value error, ')}")
        text = "; ".join(p.rstrip(".") for p in problems)
        raise ConfigError(f"Invalid configuration: {text}"
                          + ("" if text.endswith("?") else ".")) from None
    if generate:
        loaded = loaded.model_copy(update={"secret_key": _generated_secret_key(var_dir)})
    return loaded


def _generated_secret_key(var_dir: Path) -> str:
    """Generate the signing key once and keep it under var/, so links stay valid."""
    path = var_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    # Said once, when the key is made: fine for trying drip out, worth knowing for later.
    log.warning(
        "Note: DRIP_SECRET_KEY is not set, so drip made a signing key for this machine in "
        "%s (fine for trying drip out). In production set DRIP_SECRET_KEY, the same on "
        "every machine.",
        path,
    )
    return key
