"""The one exception hierarchy of pointengine.

Every error the package raises on purpose derives from :class:`PointEngineError`. Errors are
named after their meaning, not after the module that raises them::

    PointEngineError
    ├── InputError                  bad input: rejected, counted, nothing changed
    │   ├── MalformedEvent          a line that is not a valid canonical event
    │   ├── MyNumberRejected        input that carries a My Number (never repeated)
    │   ├── UnknownMunicipality     a local government code that does not exist
    │   ├── UnknownTransaction      a refund of a transaction the engine never saw
    │   ├── RefundExceedsPayment    a refund of more than the transaction paid
    │   ├── UnreadableEvents        an events file that does not exist or cannot be read
    │   └── SignatureRejected       an unsigned, forged or stale provider request
    │       ├── StaleRequest        a timestamp too far from the server's clock
    │       ├── ReplayedRequest     a signed request seen before within the window
    │       └── ForeignTransaction  a provider posting another provider's transactions
    │           └── ForbiddenEventType  a sender posting a type of event it does not send
    │   └── PublishRefused          a program version staff may not publish (code and args)
    ├── ConfigurationError          service settings missing or invalid (secrets, URLs)
    ├── RuleFileError               rule files that do not validate (one or more problems)
    ├── IntegrityError              the engine's own state would become inconsistent
    └── OperationalError            a backend (Redis, the matching engine) failed
        ├── OutputError             an output file or folder that cannot be written
        └── StateLost               Redis lost the store's state: nothing may be applied
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

from pointengine.i18n import Lang, Text


class PointEngineError(Exception):
    """Root of every error pointengine raises on purpose."""


class InputError(PointEngineError):
    """Input that is rejected with a reason and changes nothing."""

    reason_code = "invalid"


class MalformedEvent(InputError):
    """A line or request body that is not a valid canonical event."""

    reason_code = "malformed"


class NestedTooDeeply(MalformedEvent):
    """Input whose arrays and objects (or XML elements) nest deeper than any event does."""

    reason_code = "too_deep"


class TooLarge(MalformedEvent):
    """A line, record or body larger than any event is; it is refused before it is parsed."""

    reason_code = "too_large"


class MyNumberRejected(InputError):
    """Input that carries a 12-digit run with a valid My Number check digit, anywhere."""

    reason_code = "my_number"


class UnknownMunicipality(InputError):
    """A local government code that is not in the code list."""

    reason_code = "unknown_municipality"


class UnknownTransaction(InputError):
    """A refund that names a transaction the engine has never applied."""

    reason_code = "unknown_transaction"


class RefundExceedsPayment(InputError):
    """A refund that would take back more than the transaction paid."""

    reason_code = "refund_exceeds_payment"


class UnreadableEvents(InputError):
    """An events file that does not exist or cannot be read; nothing was read or written."""

    reason_code = "unreadable"


class SignatureRejected(InputError):
    """A provider request that is unsigned, wrongly signed, stale or not the provider's own."""

    reason_code = "signature"


class StaleRequest(SignatureRejected):
    """A signed request whose timestamp is too far from the server's clock."""

    reason_code = "stale"


class ReplayedRequest(SignatureRejected):
    """A signed request (the same signature) received again within the freshness window."""

    reason_code = "replayed"


class ForeignTransaction(SignatureRejected):
    """A provider posting transactions that belong to another provider or source."""

    reason_code = "cross_provider"


class ForbiddenEventType(ForeignTransaction):
    """A sender posting a type of event it does not send (a provider's application, a
    platform's purchase, anyone's lottery draw)."""

    reason_code = "forbidden_event_type"


class ConfigurationError(PointEngineError):
    """Service settings that are missing or invalid (provider secrets, Redis URL)."""


@dataclass(frozen=True)
class Problem:
    """One problem in a rule file, located for the person who wrote it.

    ``message`` is in English. A problem the catalog made also carries its ``text`` (a code
    and its arguments) and the ``words`` that render a text in either language, so that it
    can say itself in Japanese too (:meth:`say`, :meth:`hint`, :meth:`describe`) without this
    module knowing the catalog's table (which comes later in the package).
    """

    file: str
    line: int
    field: str
    message: str
    suggestion: str | None = None
    severity: str = "error"
    # Two problems are the same problem when they say the same, whatever their code's args
    # (a Text's args are a dict: unhashable).
    text: Text | None = dataclass_field(default=None, compare=False, repr=False)
    words: Callable[[Text, Lang], str] | None = dataclass_field(
        default=None, compare=False, repr=False)

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        tag = "" if self.severity == "error" else f" [{self.severity}]"
        return f"{self.file}:{self.line}: {self.field}: {self.message}{hint}{tag}"

    def say(self, lang: Lang) -> str:
        """The message in ``lang`` (``ja`` or ``en``), without the location or the hint; a
        problem made without a text says its English ``message``."""
        if lang == "en" or self.text is None or self.words is None:
            return self.message
        return self.words(self.text, lang)

    def hint(self, lang: Lang) -> str | None:
        """The suggestion as a question in ``lang`` (``did you mean 'rate'?``), or None."""
        if not self.suggestion:
            return None
        if lang == "en" or self.words is None:
            return f"did you mean {self.suggestion!r}?"
        return self.words(Text("problem.hint", {"suggestion": repr(self.suggestion)}), lang)

    def describe(self, lang: Lang) -> str:
        """``file:line: field: message (hint) [warning]`` in ``lang``; in English ``str()``."""
        if lang == "en" or self.words is None:
            return str(self)
        hint = self.hint(lang)
        tag = ""
        if self.severity == "warning":
            tag = f" [{self.words(Text('problem.warning'), lang)}]"
        elif self.severity != "error":
            tag = f" [{self.severity}]"
        return (f"{self.file}:{self.line}: {self.field}: {self.say(lang)}"
                f"{f'（{hint}）' if hint else ''}{tag}")


class RuleFileError(PointEngineError):
    """One or more rule files failed validation; ``problems`` lists each, located."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class IntegrityError(PointEngineError):
    """An operation would leave the engine's state inconsistent; nothing was applied."""


class OperationalError(PointEngineError):
    """A backend failed (Redis unreachable, the matching engine refused a ruleset)."""


class StateLost(OperationalError):
    """Redis no longer holds the store's state (its generation marker is gone or was replaced:
    a flush, a restart without persistence). Applying or accepting events would start caps and
    budgets again from zero, so nothing is, until an operator re-initialises the store
    (``pointengine reinit``, :func:`pointengine.store.generation.reinit`)."""

    reason_code = "state_lost"


class OutputError(OperationalError):
    """An output file or folder that cannot be written: a full disk, a read-only file system,
    a forbidden folder, a folder that is a file. ``path`` names it and ``cause`` is the
    ``OSError``; the message says both, in one line."""

    def __init__(self, path: Path | str, cause: OSError) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"cannot write {path}: {cause.strerror or cause}")


class PublishRefused(InputError):
    """A new program version that is not published: not the staff's jurisdiction, dated in the
    past, removing a field, invalid... ``code`` names the reason and ``args`` its facts (the
    catalog's publishing messages render them in Japanese or English); nothing was written."""

    def __init__(self, code: str, **args: object) -> None:
        self.code = code
        self.args_ = args
        super().__init__(f"{code}: {args}" if args else code)
