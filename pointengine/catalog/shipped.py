"""Which rules folder a command uses when it is given none.

The rule files shipped with pointengine are the repository's top-level ``rules/``. In a checkout
``pointengine/rules`` links to that folder; a wheel carries the same files there as package data.
So one path, beside this package, finds them in an editable install and in an installed wheel,
and the repository keeps a single copy.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["LOCAL_RULES", "SHIPPED_RULES", "rules_folder"]

SHIPPED_RULES = (Path(__file__).resolve().parents[1] / "rules").resolve()
"""The shipped rule files (in a checkout, the repository's ``rules/``)."""

LOCAL_RULES = Path("rules")
"""The working directory's rules folder, which takes precedence over the shipped one."""


def rules_folder(rules: Path | None = None) -> Path:
    """The rules folder a command uses.

    ``rules`` when one is named (an explicit path always wins, even if it does not exist, so
    that a typo is reported rather than replaced); otherwise ``rules/`` in the working
    directory when it is a rules folder (it holds ``providers.yaml``), as in the repository or
    a folder of a municipality's own rules; otherwise the rules shipped with the package, so
    that a command run from any other folder works (a ``rules/schema`` that ``pointengine
    schema`` wrote there does not make ``rules/`` a rules folder).
    """
    if rules is not None:
        return rules
    return LOCAL_RULES if (LOCAL_RULES / "providers.yaml").is_file() else SHIPPED_RULES
