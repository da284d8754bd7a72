"""Every error drip raises on purpose, in one tree.

    DripError
    ├── InvalidInput (ValueError)         input from outside is not acceptable
    │   ├── InvalidAddress                an email address that cannot receive mail
    │   ├── InvalidTimezone               not an IANA timezone name (with a guess, if any)
    │   ├── InvalidFields                 some fields of a form, each with its own sentence
    │   ├── BadSignature                  a request or token is forged, tampered or stale
    │   ├── InvalidPreference             a send time or day on the preferences page (by field)
    │   └── SequenceError                 a sequence, template or offer file is wrong
    │       └── TemplateError             a template does not parse or render
    ├── ConfigError                       a DRIP_* setting is missing or wrong
    ├── NotFound (LookupError)            a subscriber, delivery or sequence does not exist
    ├── Conflict                          the request clashes with the current state
    └── ProviderError                     the email provider did not take a message
        ├── TransientProviderError        try again later (5xx, 429, refused connection)
        │   └── RequestNotSent            the request never fully went out: safe to send again
        ├── NoAnswer                      it went out, no answer came back: it may have gone
        ├── PermanentProviderError        this message will never go (400 for one address)
        └── SendingHalted                 stop all sending now (bad API key, account disabled)

A message is one sentence a person can act on; the class docstring is the
default message, so a new error is one short class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DripError(Exception):
    """Base of every error drip raises on purpose."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInput(DripError, ValueError):
    """Input from outside (a file, a form, a webhook, a CLI argument) is not acceptable."""


class InvalidAddress(InvalidInput):
    """That email address cannot receive mail."""


class InvalidTimezone(InvalidInput):
    """That is not an IANA timezone name such as Europe/London."""

    def __init__(self, message: str | None = None, *, suggestion: str | None = None) -> None:
        #: The zone drip guesses was meant ("London" -> Europe/London), if any.
        self.suggestion = suggestion
        super().__init__(message)


class InvalidFields(InvalidInput):
    """Some fields of a form are not acceptable."""

    def __init__(self, problems: Mapping[str, str],
                 suggestions: Mapping[str, str] | None = None) -> None:
        #: field name -> the sentence to show beside it, in the form's order
        self.problems = dict(problems)
        #: field name -> the value drip guesses was meant ("did you mean")
        self.suggestions = dict(suggestions or {})
        super().__init__(" ".join(self.problems.values()))


class BadSignature(InvalidInput):
    """A request or token is not signed by who it claims, or is stale."""


class InvalidPreference(InvalidInput):
    """A send time or day the preferences page cannot keep; `problems` maps each form field
    to the sentence shown beside it."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(" ".join(self.problems.values()))


class SequenceError(InvalidInput):
    """A sequence, template or offer file is not valid."""

    def __init__(
        self,
        message: str | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.fix = fix
        self.problem = message or (self.__doc__ or "").strip()
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file or ""
        if where and self.line:
            where += f":{self.line}"
        parts = [where] if where else []
        if self.field:
            parts.append(f"field '{self.field}'")
        head = ", ".join(parts)
        text = f"{head}: {self.problem}" if head else self.problem
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


class TemplateError(SequenceError):
    """A template does not parse or does not render."""


class ConfigError(DripError):
    """A DRIP_* setting is missing or wrong."""


class NotFound(DripError, LookupError):
    """No such record."""


class Conflict(DripError):
    """That clashes with the current state."""


class ProviderError(DripError):
    """The email provider did not take the message."""

    def __init__(
        self, message: str | None = None, *, status: int | None = None, body: str | None = None
    ) -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class TransientProviderError(ProviderError):
    """The provider is busy or down; the message can be tried again later."""


class RequestNotSent(TransientProviderError):
    """The request failed before it was fully written (DNS, refused, connect timeout, TLS
    handshake, reset); the provider cannot have acted on it, so it is safe to send again."""


class NoAnswer(ProviderError):
    """The request was sent but no answer came back; the provider may have taken it."""


class PermanentProviderError(ProviderError):
    """The provider refused this message and will refuse it again."""


class SendingHalted(ProviderError):
    """The provider refuses all sending (bad API key or disabled account); fix it, then resume."""

    #: What the provider answered for a batch's earlier requests before it refused (its
    #: SendResults): those emails are settled as answered; only the rest are released.
    answered: Sequence[Any] = ()
