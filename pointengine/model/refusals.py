"""Why an event that was read is not applied: a code, and the message made from it.

The code is what is counted, stored with a reject and compared; the message is for the person
who reads the reject, and is made here and nowhere else, from the code and the facts of the
case. Nothing parses a message to learn why an event was refused.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Refusal", "refusal_message"]


class Refusal(StrEnum):
    """Every reason the engine or a store refuses an event it has read."""

    DUPLICATE = "duplicate"
    """The event's key was applied before (its status is ``duplicate``, not ``rejected``)."""
    UNKNOWN_PROVIDER = "unknown_provider"
    """A provider that ``rules/providers.yaml`` does not list."""
    PROVIDER_ALREADY_CHOSEN = "provider_already_chosen"
    """A Mynapoint application naming another provider than the person chose for the phase."""
    UNKNOWN_TRANSACTION = "unknown_transaction"
    """A refund of a transaction never applied, or another payer's."""
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    """A refund of more than is left of its transaction."""
    UNKNOWN_LOTTERY = "unknown_lottery"
    """A lottery draw for a program that is not a lottery."""
    LOTTERY_NOT_DUE = "lottery_not_due"
    """A lottery draw before its program's period has ended."""
    LOTTERY_ALREADY_DRAWN = "lottery_already_drawn"
    """A second draw of a program's lottery."""


_MESSAGES: dict[Refusal, str] = {
    Refusal.DUPLICATE: "event already applied",
    Refusal.UNKNOWN_PROVIDER: "unknown provider {provider!r}",
    Refusal.PROVIDER_ALREADY_CHOSEN: ("already applied for phase {phase} with {chosen}; a person "
                                      "chooses one provider per phase"),
    Refusal.UNKNOWN_TRANSACTION: "unknown transaction {transaction} for {person}",
    Refusal.REFUND_EXCEEDS_PAYMENT: ("refund of {amount} yen exceeds what is left of the "
                                     "transaction ({left} of {whole} yen)"),
    Refusal.UNKNOWN_LOTTERY: "no lottery program {program!r}",
    Refusal.LOTTERY_NOT_DUE: ("the lottery of {program} is drawn after its period, which ends "
                              "on {ends}"),
    Refusal.LOTTERY_ALREADY_DRAWN: "the lottery of {program} was drawn already",
}


def refusal_message(code: Refusal, **facts: object) -> str:
    """The message of a refusal: the code's sentence with the facts of the case filled in."""
    return _MESSAGES[code].format(**facts)
