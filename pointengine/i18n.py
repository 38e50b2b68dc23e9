"""Words for people: every message shown to staff, in Japanese and in English.

Municipal staff read Japanese, so Japanese is the default of the console and of the staff
commands (``check``, ``forecast``, ``explain``, ``compare``); English is there for everyone
else. A message is a :class:`Text`: a code and its arguments, never a sentence. Each layer keeps
its own :data:`Table` of codes (the catalog its problems, the console its screens), and
:func:`say` renders one in the language asked for, so nothing ever parses a message and a
test can check that every code has both languages with the same placeholders.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, get_args

Lang: TypeAlias = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "ja"
ENV_LANG = "POINTENGINE_LANG"

Table: TypeAlias = Mapping[str, Mapping[Lang, str]]
"""Code → language → a ``str.format`` template (``{name}`` placeholders)."""


@dataclass(frozen=True)
class Text:
    """A message not yet rendered: a code of some :data:`Table` and its arguments."""

    code: str
    args: Mapping[str, object] = field(default_factory=dict)


def say(table: Table, text: Text, lang: Lang) -> str:
    """``text`` rendered from ``table`` in ``lang``; ``KeyError`` for a code not in it."""
    return table[text.code][lang].format_map(text.args)


def lang_of(value: str | None) -> Lang | None:
    """``ja`` or ``en`` from a setting such as ``ja_JP.UTF-8``, ``en-US`` or ``en``; else None."""
    head = (value or "").split("_")[0].split("-")[0].split(".")[0].lower()
    return next((lang for lang in LANGS if head == lang), None)


def lang_from_env(default: Lang = "en") -> Lang:
    """The language asked for by ``POINTENGINE_LANG``, else ``LC_ALL``/``LANG``, else ``default``.

    The commands default to English (their output is read by scripts too); the console to
    Japanese.
    """
    for name in (ENV_LANG, "LC_ALL", "LANG"):
        lang = lang_of(os.environ.get(name))
        if lang is not None:
            return lang
    return default


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders of a template (for the test that languages agree)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def check_table(table: Table) -> list[str]:
    """What is wrong with ``table``: a language missing, or languages with other placeholders."""
    wrong = []
    for code, texts in table.items():
        missing = [lang for lang in LANGS if not texts.get(lang)]
        if missing:
            wrong.append(f"{code}: no {', '.join(missing)}")
            continue
        names = {lang: placeholders(texts[lang]) for lang in LANGS}
        if len({frozenset(n) for n in names.values()}) > 1:
            wrong.append(f"{code}: placeholders differ {names}")
    return wrong
