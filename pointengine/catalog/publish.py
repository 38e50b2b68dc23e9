"""Publishing: a program changes by a new version appended to its file, recorded in an audit trail.

Staff edit a program as it should be; publishing compares the draft's newest version with the
file's and appends only what changed, as the next entry of ``versions`` with its
``effective_from`` and the reason as its ``note``. The file's history and comments are left
exactly as they were, so events before ``effective_from`` keep being decided as they were and
every ledger line's version keeps its meaning. A new program's file is written as drafted.

Refused, with nothing written (:class:`~pointengine.errors.PublishRefused`, a code): a program
of another jurisdiction (staff change their own only; a prefecture its own programs, not its
municipalities'), an ``effective_from`` in the past or not after the current version's, a draft
that changes nothing, removes a field (a version can only set values), changes ``id``,
``jurisdiction`` or ``assumptions`` (the version rules of ``docs/rules.md``), or a file the
catalog would not load. Every publication and refusal is a line of the audit trail: who, when,
why, which file and version, the file's SHA-256 before and after, and the text appended.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from pointengine.catalog import drafts
from pointengine.catalog.loading import NATIONAL_FOLDER
from pointengine.catalog.programs import merge_versions
from pointengine.catalog.rulefile import RuleLoader, load_yaml
from pointengine.errors import Problem, PublishRefused
from pointengine.i18n import Lang, Table, Text, say
from pointengine.model.jst import JST
from pointengine.model.municipalities import registry
from pointengine.model.output import make_folder, write_whole, writing
from pointengine.model.privacy import carries_my_number, redact

__all__ = ["MESSAGES", "AuditTrail", "Publication", "publish", "publish_message"]

_FIXED = ("id", "jurisdiction", "assumptions")
"""Fields a version cannot change (docs/rules.md)."""
_OF_A_VERSION = ("version", "effective_from", "note", "versions")
"""What names a version rather than describing the program."""
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")
LOCK_FILE = ".publishing.lock"
"""The lock publications of one rules folder take turns by (a hidden file: never a rule file)."""
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.yaml$")

MESSAGES: Table = {
    "not_your_jurisdiction": {
        "ja": "{program} は {jurisdiction} の制度です。"
              "{staff} の職員は自団体の制度のみ変更できます",
        "en": "{program} belongs to {jurisdiction}; staff of {staff} change their own "
              "jurisdiction's programs only"},
    "effective_in_past": {
        "ja": "適用開始日時 {effective_from} は過去です（現在 {now}）。過去の判定は変更できません",
        "en": "effective_from {effective_from} is in the past (now {now}); the past is not "
              "changed"},
    "effective_not_after": {
        "ja": "適用開始日時 {effective_from} は"
              "現行の版 {version} の適用開始 {current} より後にしてください",
        "en": "effective_from {effective_from} must be later than version {version}'s "
              "({current})"},
    "no_change": {
        "ja": "現行の版からの変更がありません",
        "en": "the draft changes nothing in the current version"},
    "field_removed": {
        "ja": "項目 {field} は削除できません。新しい版は値の設定のみできます",
        "en": "{field} cannot be removed: a new version can only set values"},
    "fixed_field": {
        "ja": "項目 {field} は版を重ねても変更できません",
        "en": "{field} cannot change between versions"},
    "invalid": {
        "ja": "規則ファイルに問題が {count} 件あります。公開できません（{problem}）",
        "en": "the rule file has {count} problem(s); it is not published ({problem})"},
    "not_a_program": {
        "ja": "制度ファイルは項目の対応表（マッピング）です",
        "en": "a program file is a mapping of fields"},
    "bad_file_name": {
        "ja": "ファイル名 {name} は使えません（英小文字・数字・ハイフンと .yaml。providers.yaml "
              "は不可）",
        "en": "file name {name} is not allowed (lower-case letters, digits, hyphens, .yaml; "
              "not providers.yaml)"},
    "exists": {
        "ja": "{file} は既にあります",
        "en": "{file} already exists"},
    "no_reason": {
        "ja": "変更理由を書いてください（監査記録に残ります）",
        "en": "give the reason for the change (it goes into the audit trail)"},
    "changed_since_opened": {
        "ja": "{file} は開いた後に変更されています（他の職員が公開した可能性があります）。"
              "開き直してから編集してください",
        "en": "{file} changed since it was opened (someone else may have published); open it "
              "again and redo the edit"},
    "overridden": {
        "ja": "項目 {field} の変更は、後の版が同じ項目を定めているため効果がありません。"
              "現行の版の値を編集してください",
        "en": "the edit to {field} has no effect: a later version sets it; edit the current "
              "version's value instead"},
    "versions_written": {
        "ja": "版（versions）の項目は書き加えないでください。"
              "値を編集して公開すると新しい版が追加されます",
        "en": "do not add or remove entries under versions: edit the values, and publishing "
              "adds the version"},
    "inline_versions": {
        "ja": "versions が1行（[...]）で書かれているため追記できません。各版を '- ' で始まる行に"
              "書き直してください",
        "en": "versions is written inline ([...]); write each version as a '- ' item on its "
              "own lines first"},
    "id_taken": {
        "ja": "制度ID {program} は既に {file} で使われています",
        "en": "program id {program} is already used by {file}"},
    "starts_before": {
        "ja": "新しい制度は期間（conditions.period）で適用されます。期間の開始を適用開始日 "
              "{effective_from} 以後にしてください（現在 {start}）",
        "en": "a new program applies by its period (conditions.period): start it on or after "
              "{effective_from} (it starts {start})"},
    "my_number": {
        "ja": "マイナンバーは書けません（変更理由・ファイル名）",
        "en": "a My Number is never written (the reason, the file name)"},
    "unknown_program": {
        "ja": "制度 {program} はありません",
        "en": "no program {program}"},
}


def publish_message(exc: PublishRefused, lang: Lang) -> str:
    """``exc`` in ``lang`` (a problem of the file it names, in ``lang`` too)."""
    args = {k: v.describe(lang) if isinstance(v, Problem) else v for k, v in exc.args_.items()}
    return say(MESSAGES, Text(exc.code, args), lang)


@dataclass(frozen=True)
class Publication:
    """What was published: the file, the version and what was appended to it."""

    file: str
    program: str
    version: int
    effective_from: str
    appended: str
    before_sha256: str | None
    after_sha256: str


@dataclass
class AuditTrail:
    """An append-only JSON-lines file of every publication and refusal (and the console's
    sign-ins): one line per act, written and flushed to disk before the act is answered."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, action: str, who: str, jurisdiction: str, **facts: object) -> None:
        """Append one act; :class:`OutputError` if the trail cannot be written. A My Number
        anywhere in it (a name typed at sign-in, a reason) is masked before it is written."""
        line = {"at": dt.datetime.now(JST).isoformat(timespec="seconds"), "action": action,
                "who": who, "jurisdiction": jurisdiction, **facts}
        data = orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        if carries_my_number(data):
            data = redact(data)
        with self._lock, writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    def check(self) -> None:
        """:class:`OutputError` unless the trail can be appended to (checked before a change
        is made, so that nothing is published unaudited)."""
        with self._lock, writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab"):
                pass

    def read(self, jurisdiction: str | None = None) -> list[dict[str, Any]]:
        """Every act, oldest first; with ``jurisdiction``, that jurisdiction's acts only."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        acts = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        return [a for a in acts if jurisdiction is None or a.get("jurisdiction") == jurisdiction]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _newest(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in merge_versions(data)[-1].items() if k not in _OF_A_VERSION}


def changes(current: Mapping[str, Any], draft: Mapping[str, Any], at: str = "") -> dict[str, Any]:
    """What ``draft`` sets that ``current`` does not have, as a version entry writes it:
    mappings recurse (they merge), anything else is replaced whole. Raises
    :class:`PublishRefused` for a field the draft drops (a version cannot remove one)."""
    out: dict[str, Any] = {}
    for key in current:
        if key not in draft:
            raise PublishRefused("field_removed", field=f"{at}{key}")
    for key, value in draft.items():
        before = current.get(key)
        if (not at and key == "award" and isinstance(value, dict) and isinstance(before, dict)
                and value.get("kind") != before.get("kind")):
            out[key] = value  # an award of another kind replaces the award whole
        elif isinstance(value, dict) and isinstance(before, dict):
            inner = changes(before, value, f"{at}{key}.")
            if inner:
                out[key] = inner
        elif key not in current or before != value:
            out[key] = value
    return out


_MISSING = object()


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """``value``'s leaves by dotted path: mappings are walked, anything else is a leaf."""
    if not isinstance(value, dict):
        return {path: value}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        out.update(_leaves(inner, f"{path}.{key}" if path else str(key)))
    return out


def _at(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _entries(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes_ = data.get("versions") or []
    return [{k: v for k, v in data.items() if k != "versions"},
            *(c for c in changes_ if isinstance(c, dict))]


def _edits_reach_the_newest(written: Mapping[str, Any], draft: Mapping[str, Any]) -> None:
    """Refuse a draft that adds or removes version entries, or edits a value that a later
    version overrides (the edit would be lost: publishing appends what the newest version
    changes)."""
    before, after = _entries(written), _entries(draft)
    if len(before) != len(after):
        raise PublishRefused("versions_written")
    newest_before, newest_after = merge_versions(dict(written))[-1], merge_versions(dict(draft))[-1]
    for old, new in zip(before, after, strict=True):
        old_leaves, new_leaves = _leaves(old), _leaves(new)
        for path in old_leaves.keys() | new_leaves.keys():
            if old_leaves.get(path, _MISSING) == new_leaves.get(path, _MISSING):
                continue
            if path.split(".")[0] in _OF_A_VERSION:
                continue
            if _at(newest_after, path) == _at(newest_before, path):
                raise PublishRefused("overridden", field=path)


def _entry(version: int, effective_from: dt.datetime, note: str, change: dict[str, Any],
           indent: str) -> str:
    head = {"version": version, "effective_from": effective_from.isoformat(), "note": note}
    body = yaml.safe_dump({**head, **change}, allow_unicode=True, sort_keys=False,
                          default_flow_style=None, width=100)
    # safe_dump quotes the timestamp string; a rule file writes it bare
    body = body.replace(f"effective_from: '{head['effective_from']}'",
                        f"effective_from: {head['effective_from']}", 1)
    lines = body.splitlines()
    first = f"{indent}- {lines[0]}"
    rest = [f"{indent}  {line}" for line in lines[1:]]
    return "\n".join([first, *rest]) + "\n"


def _append_version(text: str, entry_for: Callable[[str], str]) -> str:
    """``text`` with a version entry added at the end of its ``versions`` list (made if none)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if line.startswith("versions:")), None)
    if start is None:
        return "".join(lines) + "versions:\n" + entry_for("  ")
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if _TOP_KEY.match(lines[i]):
            end = i
            break
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    rest = lines[start].split(":", 1)[1].strip()
    if rest and not rest.startswith("#"):  # `versions: [...]`: no item can be appended
        raise PublishRefused("inline_versions")
    item = next((line for line in lines[start + 1:end] if line.lstrip().startswith("- ")), None)
    indent = item[: len(item) - len(item.lstrip())] if item else "  "
    return "".join(lines[:end]) + entry_for(indent) + "".join(lines[end:])


def publish(*, rules: Path, draft: str, who: str, staff_jurisdiction: str, reason: str,
            effective_from: dt.datetime, trail: AuditTrail, program: str | None = None,
            new_file: str | None = None, now: dt.datetime | None = None,
            opened_sha256: str | None = None) -> Publication:
    """Publish ``draft`` as the next version of ``program`` (or as the new program file
    ``new_file`` in the staff's folder), recorded in ``trail``.

    ``effective_from`` must be aware and later than both ``now`` and the current version's.
    ``opened_sha256``, the SHA-256 of the file as the draft was opened from it, refuses a
    draft made from a file that has changed since (another publication). Publications of one
    rules folder take turns (a lock file, ``.publishing.lock``, shared with other processes).
    Raises :class:`PublishRefused` (recorded in the trail too) when it may not be published,
    :class:`OutputError` when the file or the trail cannot be written (the trail is checked
    before the file is changed).
    """
    trail.check()
    try:
        if carries_my_number(f"{reason}\n{new_file or ''}".encode()):
            raise PublishRefused("my_number")
        with _publishing(rules):
            done = _publish(rules, draft, staff_jurisdiction, reason, effective_from, program,
                            new_file, now or dt.datetime.now(JST), opened_sha256)
    except PublishRefused as exc:
        trail.record("publish_refused", who, staff_jurisdiction, program=program,
                     file=new_file, code=exc.code, facts={k: str(v) for k, v in
                                                          exc.args_.items()}, reason=reason)
        raise
    trail.record("publish", who, staff_jurisdiction, program=done.program,
                 file=_in_folder(Path(done.file), rules),
                 version=done.version, effective_from=done.effective_from, reason=reason,
                 before_sha256=done.before_sha256, after_sha256=done.after_sha256,
                 appended=done.appended)
    return done


@contextlib.contextmanager
def _publishing(rules: Path) -> Iterator[None]:
    """Hold the rules folder's publishing lock (across processes: the console and the command)
    for the block."""
    lock = rules / LOCK_FILE
    with writing(lock):
        handle = lock.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def _in_folder(path: Path, rules: Path) -> str:
    """``path`` as the audit trail names it: relative to the rules folder."""
    try:
        return path.relative_to(rules).as_posix()
    except ValueError:
        return path.name


def _publish(rules: Path, draft: str, staff: str, reason: str, effective_from: dt.datetime,
             program_id: str | None, new_file: str | None, now: dt.datetime,
             opened_sha256: str | None) -> Publication:
    if not reason.strip():
        raise PublishRefused("no_reason")
    if effective_from.tzinfo is None:
        effective_from = effective_from.replace(tzinfo=JST)
    if effective_from <= now:
        raise PublishRefused("effective_in_past", effective_from=effective_from.isoformat(),
                             now=now.isoformat(timespec="seconds"))
    checked = drafts.check_draft(draft, name=new_file or program_id or "draft", rules=rules)
    errors = [p for p in checked.problems if p.severity == "error"]
    if errors:
        raise PublishRefused("invalid", count=len(errors), problem=errors[0])
    # the draft loads: check_draft found no problem in it
    data = yaml.load(draft, Loader=RuleLoader)
    if not isinstance(data, dict):
        raise PublishRefused("not_a_program")
    drafted = str(data.get("jurisdiction", ""))
    if drafted != staff:
        raise PublishRefused("not_your_jurisdiction", program=data.get("id", "?"),
                             jurisdiction=registry().label_of(drafted),
                             staff=registry().label_of(staff))
    from pointengine.catalog.loading import load_catalog

    catalog = load_catalog(rules)
    if program_id is None:
        taken = catalog.programs.get(str(data.get("id")))
        if taken is not None:
            raise PublishRefused("id_taken", program=taken.id,
                                 file=taken.path.relative_to(rules).as_posix())
        return _publish_new(rules, draft, data, staff, new_file or "", effective_from)
    known = catalog.programs.get(program_id)
    if known is None:
        raise PublishRefused("unknown_program", program=program_id)
    current = known.current
    if current.jurisdiction != staff:
        raise PublishRefused("not_your_jurisdiction", program=program_id,
                             jurisdiction=registry().label_of(current.jurisdiction),
                             staff=registry().label_of(staff))
    if current.effective_from is not None and effective_from <= current.effective_from:
        raise PublishRefused("effective_not_after", effective_from=effective_from.isoformat(),
                             version=current.version, current=current.effective_from.isoformat())
    before = known.path.read_bytes()
    if opened_sha256 is not None and opened_sha256 != _sha(before):
        raise PublishRefused("changed_since_opened",
                             file=known.path.relative_to(rules).as_posix())
    written, _ = load_yaml(known.path)
    _edits_reach_the_newest(written, data)
    old, new = _newest(written), _newest(data)
    for name in _FIXED:
        if old.get(name) != new.get(name):
            raise PublishRefused("fixed_field", field=name)
    change = changes(old, new)
    if not change:
        raise PublishRefused("no_change")
    number = current.version + 1
    appended: list[str] = []

    def entry_for(indent: str) -> str:
        appended.append(_entry(number, effective_from, reason.strip(), change, indent))
        return appended[-1]

    text = _append_version(before.decode("utf-8"), entry_for)
    _must_load(rules, known.path, text)
    after = text.encode("utf-8")
    write_whole(known.path, after, durable=True)
    return Publication(str(known.path), program_id, number, effective_from.isoformat(),
                       appended[0], _sha(before), _sha(after))


def _publish_new(rules: Path, draft: str, data: dict[str, Any], staff: str, name: str,
                 effective_from: dt.datetime) -> Publication:
    if not _FILE_NAME.match(name) or name == "providers.yaml":
        raise PublishRefused("bad_file_name", name=name)
    # a new program has one version, which applies by its period: it must not start earlier
    period = (data.get("conditions") or {}).get("period") or {}
    start = period.get("from") if isinstance(period, dict) else None
    if not isinstance(start, dt.date) or start < effective_from.astimezone(JST).date():
        raise PublishRefused("starts_before", start=str(start or "-"),
                             effective_from=effective_from.astimezone(JST).date().isoformat())
    folder = NATIONAL_FOLDER if staff == "national" else next(
        (p.name for p in sorted(rules.iterdir()) if p.is_dir() and p.name.startswith(staff)),
        staff)
    path = rules / folder / name
    if path.exists():
        raise PublishRefused("exists", file=f"{folder}/{name}")
    text = draft if draft.endswith("\n") else draft + "\n"
    _must_load(rules, path, text)
    make_folder(path.parent)
    after = text.encode("utf-8")
    write_whole(path, after, durable=True)
    return Publication(str(path), str(data.get("id")), 1, effective_from.isoformat(), text,
                       None, _sha(after))


def _must_load(rules: Path, path: Path, text: str) -> None:
    """Refuse ``text`` as ``path`` unless the catalog with it loads without an error."""
    # named by its place in the folder, so the draft stands in place of the file
    checked = drafts.check_draft(text, name=path.relative_to(rules).as_posix(), rules=rules)
    errors = [p for p in checked.problems if p.severity == "error"]
    if errors:
        raise PublishRefused("invalid", count=len(errors), problem=errors[0])
