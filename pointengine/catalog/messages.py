"""Every problem a rule file can have, in Japanese and in English.

A :class:`~pointengine.errors.Problem` carries its message as a :class:`~pointengine.i18n.Text`
(a code of :data:`MESSAGES` and its arguments) and :func:`render` to say it; its ``message`` is
the English rendering, so what scripts and tests read stays as it was. An argument may itself
be a :class:`Text` (a message built of parts: a type error and the value found),
:class:`Either` (alternatives, "a, b or c") or :class:`Phrase` (a sentence of PyYAML or of
pydantic's date parser, English, in Japanese where :data:`PHRASES` knows it).

Nothing of ours is read back from its English: the rule language's checks
(:mod:`pointengine.catalog.programs`) raise pydantic errors whose ``type`` is their ``model.*``
code and whose ``ctx`` their arguments (:func:`from_model_error`), and pydantic's own errors are
known by their ``type`` and ``ctx`` (:func:`from_pydantic`). Only the libraries' sentences, whose
words we do not choose, are matched as text (:data:`PHRASES`).

Problems are made with :func:`problem`, which also keeps a My Number out of them: a rule file
that holds one gets the problem, never the number back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pointengine.errors import Problem
from pointengine.i18n import Lang, Table, Text
from pointengine.model.privacy import carries_my_number, redact

__all__ = [
    "MESSAGES", "PHRASES", "Either", "Phrase", "as_dict", "describe", "from_model_error",
    "from_pydantic", "hint", "message", "private", "problem", "render",
]


@dataclass(frozen=True)
class Either:
    """Alternatives, said as ``'a', 'b' or 'c'`` / ``'a'、'b' または 'c'``."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Phrase:
    """An English sentence of a library (PyYAML, pydantic's date parser), said in Japanese
    when :data:`PHRASES` has it, else as it is."""

    text: str


MESSAGES: Table = {
    # reading the file
    "file.unreadable": {
        "en": "cannot read file: {reason}",
        "ja": "ファイルを読めません: {reason}"},
    "file.not_utf8": {
        "en": "file is not UTF-8 text (save it as UTF-8, not Shift_JIS)",
        "ja": "ファイルが UTF-8 ではありません（Shift_JIS ではなく UTF-8 で保存してください）"},
    "file.misnamed": {
        "en": "not read: only files whose name ends in '.yaml' are rule files; rename it",
        "ja": "読み込まれていません: 規則ファイルは名前が '.yaml' で終わるファイルだけです。"
              "名前を変えてください"},
    "file.too_large": {
        "en": "the text is {size} characters long, more than any rule file ({limit} at most): "
              "it is not read",
        "ja": "{size} 文字あり、規則ファイルとしては大きすぎます（{limit} 文字まで）。"
              "読み込みません"},
    "file.more_problems": {
        "en": "and {count} more problem(s) of the same validation, not listed: correct these "
              "first",
        "ja": "ほかにも同じ検査の問題が {count} 件あり、一覧にしていません。まずここまでを直して"
              "ください"},
    "file.my_number": {
        "en": "this line holds a My Number (12 digits with a valid check digit): a rule file "
              "never does; remove it",
        "ja": "この行に個人番号（検査用数字の正しい 12 桁の数字）があります。規則ファイルには"
              "書けません。削除してください"},
    # YAML
    "yaml.syntax": {
        "en": "YAML syntax error: {problem}",
        "ja": "YAML の書き方に誤りがあります: {problem}"},
    "yaml.syntax_while": {
        "en": "YAML syntax error: {problem} ({context})",
        "ja": "YAML の書き方に誤りがあります: {problem}（{context}）"},
    "yaml.context_from": {
        "en": "{context} on line {line}",
        "ja": "{line} 行目からの{context}"},
    "yaml.tabs": {
        "en": "{detail}; indent with spaces, not tabs",
        "ja": "{detail}。字下げにはタブではなく半角空白を使ってください"},
    "yaml.tag_value": {
        "en": "YAML syntax error: the value {value} cannot be read as !!{tag} ({cause})",
        "ja": "YAML の書き方に誤りがあります: 値 {value} は !!{tag} として読めません（{cause}）"},
    "yaml.too_deep": {
        "en": "a value nested more than {depth} levels deep: no rule needs it",
        "ja": "値の入れ子が {depth} 段を超えています。規則にそこまで深い入れ子は要りません"},
    "yaml.alias": {
        "en": "rule files do not use YAML anchors and aliases ({mark}): write each value out "
              "in full",
        "ja": "規則ファイルでは YAML のアンカーとエイリアス（{mark}）は使いません。"
              "値はそれぞれ省略せずに書いてください"},
    "yaml.duplicate_key": {
        "en": "duplicate key {key}, already defined on line {line}",
        "ja": "キー {key} が重複しています（{line} 行目で定義済み）"},
    # fields and values, from the model's validation
    "field.unknown": {
        "en": "unknown field {name}",
        "ja": "{name} という項目はありません"},
    "field.unknown_allowed": {
        "en": "unknown field {name}; allowed fields: {allowed}",
        "ja": "{name} という項目はありません。書ける項目: {allowed}"},
    "field.misplaced": {
        "en": "unknown field {name} here: it belongs {places}",
        "ja": "項目 {name} はここには書けません。{places}"},
    "field.at_top": {
        "en": "at the top level of the file",
        "ja": "ファイルの最上位に書きます"},
    "field.under": {
        "en": "under {parents}",
        "ja": "{parents} の下に書きます"},
    "field.at_top_or_under": {
        "en": "at the top level of the file or under {parents}",
        "ja": "ファイルの最上位か {parents} の下に書きます"},
    "field.missing": {
        "en": "missing required field {name}",
        "ja": "必須の項目 {name} がありません"},
    "field.missing_kind": {
        "en": "missing required field {name} (one of: {choices})",
        "ja": "必須の項目 {name} がありません（{choices} のいずれか）"},
    "value.choice": {
        "en": "invalid value {value}, expected one of: {choices}",
        "ja": "値 {value} は使えません。{choices} のいずれかにしてください"},
    "value.got": {
        "en": "{detail} (got {value})",
        "ja": "{detail}（書かれた値: {value}）"},
    "value.quote": {
        "en": "{detail}; put it in quotes: '{value}'",
        "ja": "{detail}。引用符で囲んでください: '{value}'"},
    "value.key": {
        "en": "invalid key: {detail}",
        "ja": "キーが正しくありません: {detail}"},
    "value.invalid": {
        "en": "{detail}",
        "ja": "値が正しくありません: {detail}"},
    # pydantic's own errors, named after their type; the English is pydantic's
    "pydantic.int_type": {
        "en": "Input should be a valid integer",
        "ja": "整数を書いてください"},
    "pydantic.int_parsing": {
        "en": "Input should be a valid integer, unable to parse string as an integer",
        "ja": "整数を書いてください（整数として読めません）"},
    "pydantic.int_from_float": {
        "en": "Input should be a valid integer, got a number with a fractional part",
        "ja": "整数を書いてください（小数があります）"},
    "pydantic.string_type": {
        "en": "Input should be a valid string",
        "ja": "文字列を書いてください"},
    "pydantic.bool_type": {
        "en": "Input should be a valid boolean",
        "ja": "true か false を書いてください"},
    "pydantic.bool_parsing": {
        "en": "Input should be a valid boolean, unable to interpret input",
        "ja": "true か false を書いてください"},
    "pydantic.greater_than_equal": {
        "en": "Input should be greater than or equal to {ge}",
        "ja": "{ge} 以上にしてください"},
    "pydantic.greater_than": {
        "en": "Input should be greater than {gt}",
        "ja": "{gt} より大きくしてください"},
    "pydantic.less_than_equal": {
        "en": "Input should be less than or equal to {le}",
        "ja": "{le} 以下にしてください"},
    "pydantic.less_than": {
        "en": "Input should be less than {lt}",
        "ja": "{lt} より小さくしてください"},
    "pydantic.date_type": {
        "en": "Input should be a valid date",
        "ja": "日付（例: 2022-01-01）を書いてください"},
    "pydantic.date_parsing": {
        "en": "Input should be a valid date in the format YYYY-MM-DD, {error}",
        "ja": "日付は YYYY-MM-DD の形で書いてください（{error}）"},
    "pydantic.date_from_datetime_parsing": {
        "en": "Input should be a valid date or datetime, {error}",
        "ja": "日付（例: 2022-01-01）として読めません: {error}"},
    "pydantic.date_from_datetime_inexact": {
        "en": "Datetimes provided to dates should have zero time - e.g. be exact dates",
        "ja": "日付に時刻は付けられません（例: 2022-01-01）"},
    "pydantic.datetime_type": {
        "en": "Input should be a valid datetime",
        "ja": "日時（例: 2022-10-01T00:00:00+09:00）を書いてください"},
    "pydantic.datetime_parsing": {
        "en": "Input should be a valid datetime, {error}",
        "ja": "日時（例: 2022-10-01T00:00:00+09:00）として読めません: {error}"},
    "pydantic.datetime_from_date_parsing": {
        "en": "Input should be a valid datetime or date, {error}",
        "ja": "日時（例: 2022-10-01T00:00:00+09:00）として読めません: {error}"},
    "pydantic.timezone_aware": {
        "en": "Input should have timezone info",
        "ja": "時差を付けて書いてください（例: 2022-10-01T00:00:00+09:00）"},
    "pydantic.string_pattern_mismatch": {
        "en": "String should match pattern {pattern}",
        "ja": "書き方が決まりに合いません（パターン {pattern}）"},
    "value.id_pattern": {
        "en": "String should match pattern {pattern}",
        "ja": "ID は英小文字・数字・'-' の 2〜63 文字で、英小文字か数字で始めてください"
              "（パターン {pattern}）"},
    "pydantic.too_short": {
        "en": "Tuple should have at least {min_length} item after validation, not {actual_length}",
        "ja": "少なくとも {min_length} 個書いてください（正しいものが {actual_length} 個です）"},
    "pydantic.tuple_type": {
        "en": "Input should be a valid tuple",
        "ja": "リスト（[a, b] または「- 」で始まる行）を書いてください"},
    "pydantic.list_type": {
        "en": "Input should be a valid list",
        "ja": "リスト（[a, b] または「- 」で始まる行）を書いてください"},
    "pydantic.dict_type": {
        "en": "Input should be a valid dictionary",
        "ja": "「キー: 値」の対応（マッピング）を書いてください"},
    "pydantic.model_type": {
        "en": "Input should be a valid dictionary or instance of {class_name}",
        "ja": "「キー: 値」の対応（マッピング）を書いてください（{class_name}）"},
    "pydantic.model_attributes_type": {
        "en": "Input should be a valid dictionary or object to extract fields from",
        "ja": "「キー: 値」の対応（マッピング）を書いてください"},
    # the rule language's own checks (pointengine.catalog.programs)
    "model.rate_not_text": {
        "en": "write a rate as a percentage string, e.g. '25%' or '12.5%'",
        "ja": "率は百分率の文字列で書いてください（例: '25%'、'12.5%'）"},
    "model.rate_not_percent": {
        "en": "{value} is not a percentage like '25%' or '12.5%'",
        "ja": "{value} は '25%' や '12.5%' のような百分率ではありません"},
    "model.rate_range": {
        "en": "{value}: a rate must be above 0% and at most 100%",
        "ja": "{value}: 率は 0% より大きく 100% 以下にしてください"},
    "model.period_reversed": {
        "en": "the period ends ({to}) before it starts ({start})",
        "ja": "期間の終わり（{to}）が始まり（{start}）より前です"},
    "model.no_target_stores": {
        "en": "stores: target_stores needs a non-empty target_stores list",
        "ja": "stores: target_stores には対象店舗の一覧 target_stores が必要です"},
    "model.target_stores_unused": {
        "en": "target_stores is only read when stores is 'target_stores'",
        "ja": "target_stores は stores が 'target_stores' のときだけ使われます"},
    "model.period_cap_twice": {
        "en": "period_caps: give each period (per) once",
        "ja": "period_caps: 期間（per）はそれぞれ 1 回だけ書いてください"},
    "model.both_bases": {
        "en": "a provider awards on one basis, 'charge' or 'purchase': counting both would pay "
              "twice for money charged and then spent",
        "ja": "決済事業者の付与の基準は 'charge'（チャージ）か 'purchase'（お買い物）の一方です。"
              "両方を数えると、チャージしてから使ったお金に二重に付与します"},
    # the catalog's checks (pointengine.catalog.loading)
    "catalog.no_providers": {
        "en": "the provider list is missing",
        "ja": "決済事業者の一覧（providers.yaml）がありません"},
    "catalog.provider_twice": {
        "en": "provider {provider} is listed twice",
        "ja": "決済事業者 {provider} が 2 回書かれています"},
    "catalog.id_taken": {
        "en": "program id {program} is already used by {other}",
        "ja": "事業 ID {program} は既に {other} で使われています"},
    "catalog.version_number": {
        "en": "expected version {expected}, got {got}",
        "ja": "版番号は {expected} のはずですが、{got} になっています"},
    "catalog.version_id": {
        "en": "a version cannot change the id",
        "ja": "版を重ねても事業 ID は変えられません"},
    "catalog.version_order": {
        "en": "must be later than version {version}'s ({at})",
        "ja": "版 {version} の適用開始（{at}）より後にしてください"},
    "catalog.unknown_code": {
        "en": "unknown local government code {code}",
        "ja": "地方公共団体コード {code} はありません"},
    "catalog.ward": {
        "en": "a designated-city ward runs no programs; use its city",
        "ja": "政令指定都市の区は事業を実施しません。市のコードを使ってください"},
    "catalog.national_folder": {
        "en": "a file in folder {folder} creates national programs only; {code}'s live in a "
              "folder named by its code ({code}-...)",
        "ja": "フォルダ {folder} のファイルは国の事業だけを定義します。{code} の事業はそのコードで"
              "始まるフォルダ（{code}-...）に置いてください"},
    "catalog.folder_code": {
        "en": "the file is in folder {folder}, which is not named by this code ({code}-...)",
        "ja": "ファイルのあるフォルダ {folder} の名前がこのコードで始まっていません（{code}-...）"},
    "catalog.type_a": {
        "en": "a municipal program of type A (no person and no store restriction): the seeds "
              "reserve A for the national program",
        "ja": "対象者も店舗も限定しない類型 A の自治体事業です。類型 A は国の事業のためのものです"},
    "catalog.national_elsewhere": {
        "en": "a file in folder {folder} creates programs of {code} only; national programs "
              "live in national/",
        "ja": "フォルダ {folder} のファイルは {code} の事業だけを定義します。国の事業は national/ "
              "に置きます"},
    "catalog.national_restricted": {
        "en": "a national program restricts neither persons nor stores",
        "ja": "国の事業は対象者も店舗も限定しません"},
    "catalog.unknown_provider": {
        "en": "unknown provider {provider}",
        "ja": "決済事業者 {provider} は一覧（providers.yaml）にありません"},
    "catalog.trigger": {
        "en": "an award of kind {kind} cannot be triggered by {wrong}; use {allowed}",
        "ja": "付与方式 {kind} は {wrong} を契機にできません。{allowed} を使ってください"},
    "catalog.provider_basis": {
        "en": "provider_basis chooses between charges and purchases: 'on' must list both",
        "ja": "provider_basis はチャージとお買い物のどちらに付与するかを決済事業者ごとに選びます。"
              "'on' に charge と purchase の両方を書いてください"},
    "catalog.group_owner": {
        "en": "group {group} limits programs of {owner}; a program of {jurisdiction} may share "
              "a group with its own jurisdiction's programs only",
        "ja": "グループ {group} は {owner} の事業の上限です。{jurisdiction} の事業は自団体の事業と"
              "だけグループを共有できます"},
    "catalog.group_cap": {
        "en": "group {group} has cap {cap} in {program} but {here} here",
        "ja": "グループ {group} の上限は {program} では {cap} ですが、ここでは {here} です"},
    # drafts (pointengine.catalog.drafts)
    "draft.no_file": {
        "en": "no such rule file",
        "ja": "規則ファイルがありません"},
    "draft.not_mapping": {
        "en": "a program file is a mapping of fields",
        "ja": "事業のファイルは「項目: 値」の対応（マッピング）で書きます"},
    "draft.unchecked": {
        "en": "the draft could not be checked ({error}): try again, and report it if it stays",
        "ja": "下書きを確認できませんでした（{error}）。もう一度試し、続くようなら"
              "報告してください"},
    "draft.no_program": {
        "en": "the file defines no program",
        "ja": "ファイルに事業が定義されていません"},
    # how a problem is said
    "problem.hint": {
        "en": "did you mean {suggestion}?",
        "ja": "{suggestion} ではありませんか？"},
    "problem.warning": {
        "en": "warning",
        "ja": "警告"},
    "either": {
        "en": "{first} or {last}",
        "ja": "{first} または {last}"},
    # the validate command (pointengine.cli.main)
    "validate.problems": {
        "en": "{count} problem(s) in {rules}",
        "ja": "{rules} に問題が {count} 件あります"},
    "validate.valid": {
        "en": "{programs} programs and {providers} providers: valid ({warnings} warning(s))",
        "ja": "事業 {programs} 件、決済事業者 {providers} 件: 問題ありません"
              "（警告 {warnings} 件）"},
    "validate.file_valid": {
        "en": "{file}: valid: {program} of {jurisdiction}, type {type}, {versions} version(s) "
              "({warnings} warning(s))",
        "ja": "{file}: 問題ありません: {jurisdiction} の事業 {program}、類型 {type}、"
              "{versions} 版（警告 {warnings} 件）"},
    "validate.as_draft": {
        "en": "{file} is not in a rules folder: checked as a draft with the rules in {rules}",
        "ja": "{file} は規則フォルダの中にないため、{rules} の規則と合わせて下書きとして"
              "確認しました"},
    "validate.others": {
        "en": "other files of {rules} have {count} problem(s): pointengine validate {rules} "
              "lists them",
        "ja": "{rules} の他のファイルに問題が {count} 件あります（pointengine validate {rules} "
              "で一覧できます）"},
    "validate.no_path": {
        "en": "{path}: no such file or folder",
        "ja": "{path}: そのようなファイルまたはフォルダはありません"},
    "validate.providers_valid": {
        "en": "{file}: valid: a provider list of {providers} provider(s) ({warnings} "
              "warning(s))",
        "ja": "{file}: 問題ありません: 決済事業者の一覧（{providers} 件、警告 {warnings} 件）"},
    "validate.folder_valid": {
        "en": "{folder}: {programs} program(s): valid ({warnings} warning(s))",
        "ja": "{folder}: 事業 {programs} 件: 問題ありません（警告 {warnings} 件）"},
    "validate.head.program": {"en": "program", "ja": "事業"},
    "validate.head.jurisdiction": {"en": "jurisdiction", "ja": "実施団体"},
    "validate.head.type": {"en": "type", "ja": "類型"},
    "validate.head.versions": {"en": "versions", "ja": "版"},
    "validate.head.on": {"en": "on", "ja": "付与の契機"},
}

PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), ja) for pattern, ja in (
        # PyYAML's problems
        (r"mapping values are not allowed here",
         "ここに「キー: 値」は書けません（字下げか、値の中の「: 」を確かめてください）"),
        (r"could not find expected ':'", "「:」がありません"),
        (r"found character (?P<char>.+) that cannot start any token",
         "値の先頭に {char} は書けません"),
        (r"found unexpected end of stream", "閉じられないままファイルが終わっています"),
        (r"found unknown escape character (?P<char>.+)", "不明なエスケープ文字 {char} があります"),
        (r"found undefined tag handle (?P<tag>.+)", "定義されていないタグ {tag} があります"),
        (r"could not determine a constructor for the tag (?P<tag>.+)", "タグ {tag} は使えません"),
        (r"found unhashable key", "キーにリストやマッピングは使えません"),
        (r"found duplicate YAML directive", "YAML 指示子が重複しています"),
        (r"unacceptable character (?P<char>#x[0-9a-fA-F]+): special characters are not allowed",
         "使えない制御文字 {char} があります"),
        (r"expected ',' or '(?P<close>[\]}])', but got (?P<got>.+)",
         "「,」か「{close}」が要る所に {got} があります（括弧が閉じられていません）"),
        (r"expected <block end>, but found (?P<found>.+)",
         "字下げが揃っていません（{found} があります）"),
        (r"expected '<document start>', but found (?P<found>.+)",
         "文書の終わりの後に {found} があります"),
        (r"but found another document", "2 つ目の文書（---）があります"),
        (r"expected a single document in the stream",
         "1 つのファイルには 1 つの文書だけを書きます"),
        (r"did not find expected key", "キーがありません"),
        (r"did not find expected node content", "値がありません"),
        (r"did not find expected '-' indicator", "「- 」で始まる行がありません"),
        # PyYAML's contexts
        (r"while scanning a simple key", "キーの読み取り中"),
        (r"while scanning a quoted scalar", "引用符で囲まれた値の読み取り中"),
        (r"while scanning a double-quoted scalar", "二重引用符で囲まれた値の読み取り中"),
        (r"while scanning a plain scalar", "値の読み取り中"),
        (r"while scanning a block scalar", "複数行の値（| や >）の読み取り中"),
        (r"while scanning for the next token", "次の要素の読み取り中"),
        (r"while scanning a tag", "タグの読み取り中"),
        (r"while parsing a block mapping", "マッピングの読み取り中"),
        (r"while parsing a block collection", "リストの読み取り中"),
        (r"while parsing a flow sequence", "[ ] のリストの読み取り中"),
        (r"while parsing a flow mapping", "{{ }} のマッピングの読み取り中"),
        (r"while parsing a (?:flow|block) node", "値の読み取り中"),
        (r"while constructing a mapping", "マッピングの読み取り中"),
        # pydantic's date and time parser
        (r"input is too short", "短すぎます"),
        (r"input is too long", "長すぎます"),
        (r"unexpected extra characters at the end of the input", "末尾に余分な文字があります"),
        (r"invalid character in (?P<part>year|month|day|hour|minute|second)",
         "{part}に使えない文字があります"),
        (r"(?P<part>year|month|day|hour|minute|second) value is outside expected range",
         "{part}の値が範囲外です"),
        (r"invalid date separator, expected `-`", "日付の区切りは「-」です"),
        (r"invalid datetime separator, expected `T`, `t`, `_` or space",
         "日付と時刻の区切りは「T」です"),
        (r"invalid timezone sign", "時差の符号（+ か -）が正しくありません"),
        (r"timezone offset must be less than 24 hours", "時差は 24 時間未満にしてください"),
    ))
"""An English phrase (a full match) → its Japanese, ``{name}`` from the phrase's groups.

These sentences are PyYAML's (a syntax error's problem and context) and pydantic's date and
time parser's (the ``error`` of ``date_parsing`` and its kin): the libraries give them as
English text only, with no code to say them by, so matching the text is the one way to say
them in Japanese. One a library adds or rewords is shown in English, never lost. Our own
messages never come through here: they carry their code (see :func:`from_model_error`).
"""

_PARTS = {"year": "年", "month": "月", "day": "日", "hour": "時", "minute": "分", "second": "秒"}

_ARGS: Mapping[str, tuple[str, ...]] = {
    code: tuple(re.findall(r"{(\w+)}", texts["en"]))
    for code, texts in MESSAGES.items() if code.startswith(("pydantic.", "model."))
}
"""The code of an error pydantic reports → the ``ctx`` entries its message names."""
_PHRASED = {"error"}
"""``ctx`` entries that are a library's English sentence (a date parser's reason)."""


def render(text: Text, lang: Lang) -> str:
    """``text`` in ``lang``, its :class:`Text`, :class:`Either` and :class:`Phrase` arguments
    rendered first."""
    args = {name: _argument(value, lang) for name, value in text.args.items()}
    return MESSAGES[text.code][lang].format_map(args)


def _argument(value: object, lang: Lang) -> object:
    if isinstance(value, Text):
        return render(value, lang)
    if isinstance(value, Either):
        items = list(value.items)
        if len(items) < 2:
            return "".join(items)
        sep = "、" if lang == "ja" else ", "
        return render(Text("either", {"first": sep.join(items[:-1]), "last": items[-1]}), lang)
    if isinstance(value, Phrase):
        return _phrase(value.text) if lang == "ja" else value.text
    return value


def _phrase(english: str) -> str:
    for pattern, ja in PHRASES:
        match = pattern.fullmatch(english)
        if match:
            parts = {k: _PARTS.get(v, v) for k, v in match.groupdict().items()}
            return ja.format_map(parts)
    return english


def private(value: str) -> str:
    """``value`` with any My Number in it masked (a rule file must not have one; a problem
    never repeats it)."""
    raw = value.encode("utf-8", "surrogatepass")
    if not carries_my_number(raw):
        return value
    return redact(raw).decode("utf-8", "surrogatepass")


def _private_args(args: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in args.items():
        if isinstance(value, str):
            out[name] = private(value)
        elif isinstance(value, Text):
            out[name] = Text(value.code, _private_args(value.args))
        elif isinstance(value, Either):
            out[name] = Either(tuple(private(item) for item in value.items))
        elif isinstance(value, Phrase):
            out[name] = Phrase(private(value.text))
        else:
            out[name] = value
    return out


def problem(file: str, line: int, field: str, text: Text, suggestion: str | None = None,
            severity: str = "error") -> Problem:
    """A :class:`Problem` whose message is ``text`` (its ``message`` the English), with any
    My Number in the field, the message or the suggestion masked."""
    text = Text(text.code, _private_args(text.args))
    return Problem(file, line, private(field), render(text, "en"),
                   private(suggestion) if suggestion is not None else None, severity, text,
                   render)


def message(found: Problem, lang: Lang) -> str:
    """The problem's message in ``lang`` (a problem made without a code: its message)."""
    return found.say(lang)


def hint(found: Problem, lang: Lang) -> str | None:
    """The suggestion as a question in ``lang`` (``did you mean 'rate'?``), or None."""
    return found.hint(lang)


def describe(found: Problem, lang: Lang) -> str:
    """``file:line: field: message (hint) [warning]`` in ``lang``; in English ``str(found)``."""
    return found.describe(lang)


def as_dict(found: Problem, lang: Lang) -> dict[str, Any]:
    """The problem as JSON-ready fields for the console: where, its code, its words in
    ``lang`` (``message``, ``hint``) and the bare ``suggestion`` to put in the file."""
    return {"file": found.file, "line": found.line, "field": found.field,
            "severity": found.severity, "code": found.text.code if found.text else None,
            "message": message(found, lang), "suggestion": found.suggestion,
            "hint": hint(found, lang)}


def from_model_error(kind: str, ctx: Mapping[str, Any], english: str) -> Text:
    """The :class:`Text` of an error a check of the rule language raised: its ``type`` (a
    ``model.*`` code) is the code, its ``ctx`` the arguments and ``msg`` (``english``) the
    English pydantic made of them.

    A type the table does not know, or a ``ctx`` without the arguments its words name, is
    ``value.invalid`` with the English as its detail: the problem is still said, as it reads.
    """
    names = _ARGS.get(kind) if kind.startswith("model.") else None
    if names is not None and all(name in ctx for name in names):
        text = Text(kind, {name: ctx[name] for name in names})
        # the English pydantic formatted is the table's own (programs.py raises it from the
        # table): rendering it again only confirms that, so str(problem) never changes
        if render(text, "en") == english:
            return text
    return Text("value.invalid", {"detail": english})


def from_pydantic(kind: str, ctx: Mapping[str, Any], english: str) -> Text:
    """The :class:`Text` of one of pydantic's errors (its ``type``, ``ctx`` and ``msg``).

    Only when the table's English renders exactly as pydantic's message is its code used
    (pydantic words some errors by their context: 'item' or 'items', 'Tuple' or 'List');
    else ``value.invalid`` with pydantic's message, so the English never changes.
    """
    names = _ARGS.get(f"pydantic.{kind}")
    if names is not None and all(name in ctx for name in names):
        args: dict[str, object] = {
            name: Phrase(str(ctx[name])) if name in _PHRASED else
            f"'{ctx[name]}'" if name == "pattern" else ctx[name] for name in names}
        text = Text(f"pydantic.{kind}", args)
        if render(text, "en") == english:
            return text
    return Text("value.invalid", {"detail": english})
