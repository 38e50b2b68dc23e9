"""The editor schemas: JSON Schemas of a program file and of the provider list, for editors.

An editor that knows a file's schema completes its fields, shows each field's description
(Japanese, then English: :mod:`pointengine.catalog.programs`) and flags a mistake as it is
typed. ``pointengine schema rules/schema`` writes them, and a rule file names its schema on its
first line, relative to itself (:func:`editor_line`)::

    # yaml-language-server: $schema=../schema/program.schema.json

The schemas describe the file as written (``rate: '25%'``, a date as ``2022-01-01``), not the
model it becomes, and are valid Draft 2020-12 schemas that use nothing draft 7 lacks besides
``$defs`` (read as plain JSON pointers): the YAML language server of VS Code validates with
draft 7, and warns about a schema that declares 2020-12, so none is declared.

A later version lists only what changes, and mappings merge into the previous version's, so
the model types a version's ``conditions`` (and ``restriction``, ``award``, ``budget``,
``person_total``) as any mapping. The schema is more helpful: it gives them the fields of the
full mapping, none required, so a misspelt field in a version is flagged as well. The full
check of every merged version stays ``validate``'s.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path, PurePath
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel

from pointengine.catalog.programs import ProgramDocument, ProviderList
from pointengine.i18n import Table, Text
from pointengine.model.output import make_folder, write_whole

__all__ = ["MODELINE", "PROVIDER_LIST", "SCHEMA_NAMES", "SCHEMA_TEXTS", "SchemaName",
           "editor_line", "editor_schema", "first_lines", "schema_file", "schema_for",
           "schema_text", "write_schemas"]

SchemaName: TypeAlias = Literal["program", "providers"]
SCHEMA_NAMES: tuple[SchemaName, ...] = ("program", "providers")
_MODELS: dict[SchemaName, type[BaseModel]] = {"program": ProgramDocument,
                                               "providers": ProviderList}
PROVIDER_LIST = "providers.yaml"
"""The one rule file that is the provider list, not a program."""
MODELINE = "# yaml-language-server: $schema="

SCHEMA_TEXTS: Table = {
    "schema.wrote": {"ja": "{path} を書き出しました", "en": "wrote {path}"},
    "schema.program_line": {
        "ja": "事業の規則ファイル（{rules}/<フォルダ>/*.yaml）の1行目に次の行を書くと、"
              "エディタがこのスキーマで補完・検査します: {line}",
        "en": "make this the first line of a program's rule file ({rules}/<folder>/*.yaml) "
              "for editors to complete and check it with this schema: {line}"},
    "schema.providers_line": {"ja": "{path} の1行目には: {line}",
                              "en": "and of {path}: {line}"},
}
"""What ``pointengine schema`` says, in Japanese and English."""

# VersionChange's merged mappings and the full model each one changes.
_CHANGES = {"restriction": "Restriction", "conditions": "Conditions", "budget": "Budget",
            "person_total": "PersonTotal"}
_AWARDS = ("Premium", "Grant", "PerChild", "PerActivity", "Lottery")
_REF = "#/$defs/"


def schema_file(name: SchemaName) -> str:
    """The file name ``pointengine schema`` gives a schema: ``program.schema.json``."""
    return f"{name}.schema.json"


def schema_for(rule_file: PurePath) -> SchemaName:
    """Which schema checks ``rule_file``: the provider list's, or a program file's."""
    return "providers" if rule_file.name == PROVIDER_LIST else "program"


def editor_line(rule_file: Path, schema_folder: Path) -> str:
    """The first line that points an editor at ``rule_file``'s schema in ``schema_folder``.

    The path is relative to the rule file's folder, as the YAML language server reads it, and
    written with ``/`` on every system: ``rules/342092-miyoshi/premium.yaml`` with
    ``rules/schema`` gives ``# yaml-language-server: $schema=../schema/program.schema.json``.
    """
    target = schema_folder / schema_file(schema_for(rule_file))
    return MODELINE + Path(os.path.relpath(target, rule_file.parent)).as_posix()


def editor_schema(name: SchemaName) -> dict[str, Any]:
    """The JSON Schema of a program file (``program``) or of ``providers.yaml``."""
    schema = _MODELS[name].model_json_schema(by_alias=True)
    if name == "program":
        _changes_name_their_fields(schema)
    return schema


def schema_text(schema: dict[str, Any]) -> str:
    """``schema`` as written to its file: keys sorted (the same schema, the same bytes), the
    Japanese as it is (``ensure_ascii=False``), two-space indents, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write both schemas into ``folder`` (created if need be), each whole or not at all.

    Returns the files written; :class:`~pointengine.errors.OutputError` names the file that
    could not be.
    """
    make_folder(folder)
    written = []
    for name in SCHEMA_NAMES:
        path = folder / schema_file(name)
        write_whole(path, schema_text(editor_schema(name)).encode("utf-8"))
        written.append(path)
    return written


def first_lines(schema_folder: Path) -> list[Text]:
    """Where each schema's first line goes and what it is, when ``schema_folder`` is in a rules
    folder (beside ``providers.yaml``, as ``rules/schema``); nothing otherwise, since where the
    rule files are is not known then."""
    rules = schema_folder.parent
    if not (rules / PROVIDER_LIST).is_file():
        return []
    program = rules / "folder" / "file.yaml"  # any program file: one folder down
    providers = rules / PROVIDER_LIST
    return [Text("schema.program_line", {"rules": str(rules),
                                         "line": editor_line(program, schema_folder)}),
            Text("schema.providers_line", {"path": str(providers),
                                           "line": editor_line(providers, schema_folder)})]


def _changes_name_their_fields(schema: dict[str, Any]) -> None:
    """Give a version's merged mappings the fields they may change (see the module's doc)."""
    defs: dict[str, Any] = schema["$defs"]
    fields = defs["VersionChange"]["properties"]
    for field, model in _CHANGES.items():
        fields[field] = _nullable(fields[field], _partial(defs, model))
    defs["AwardChange"] = _award_change(defs)
    fields["award"] = _nullable(fields["award"], _REF + "AwardChange")


def _nullable(field: dict[str, Any], ref: str) -> dict[str, Any]:
    """``field`` (its description, default and title kept) as ``ref`` or null."""
    kept = {k: v for k, v in field.items() if k in ("default", "description", "title")}
    return {**kept, "anyOf": [{"$ref": ref}, {"type": "null"}]}


def _partial(defs: dict[str, Any], model: str) -> str:
    """A reference to ``model``'s schema with nothing required, made once as ``<model>Change``;
    the models it refers to become partial too (a version may change a period's end alone)."""
    name = model + "Change"
    if name not in defs:
        partial = copy.deepcopy(defs[model])
        partial.pop("required", None)
        partial["title"] = name
        defs[name] = partial
        partial["properties"] = {key: _refs_partial(defs, value)
                                 for key, value in partial["properties"].items()}
    return _REF + name


def _refs_partial(defs: dict[str, Any], node: Any) -> Any:
    """``node`` with each reference to a model replaced by one to its partial schema."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            return {**node, "$ref": _partial(defs, ref.removeprefix(_REF))}
        return {key: _refs_partial(defs, value) for key, value in node.items()}
    if isinstance(node, list):
        return [_refs_partial(defs, value) for value in node]
    return node


def _award_change(defs: dict[str, Any]) -> dict[str, Any]:
    """What a version's ``award`` may hold: the fields of every kind, none required.

    A change of the same kind lists only what changes; one of another kind replaces the award
    (``validate`` then requires all of that kind's fields). A field two kinds share with other
    bounds (``cap``: required in a premium, optional per activity) takes either, and is
    described per kind.
    """
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for model in _AWARDS:
        properties = defs[model]["properties"]
        kind = properties["kind"]["const"]
        for key, value in properties.items():
            if key != "kind":
                found.setdefault(key, {})[kind] = _refs_partial(defs, value)
    fields: dict[str, Any] = {"kind": {
        "description": "付与方式（別の kind にするときは、その方式の項目をすべて書く）。 / "
                       "The award's kind (another kind than before: list every field of that "
                       "kind).",
        "enum": [defs[model]["properties"]["kind"]["const"] for model in _AWARDS],
        "type": "string"}}
    for key, by_kind in found.items():
        if len(by_kind) == 1:
            (fields[key],) = by_kind.values()
            continue
        options: dict[str, dict[str, Any]] = {}
        for schema in by_kind.values():
            for option in _bare(schema).get("anyOf", [_bare(schema)]):
                options.setdefault(json.dumps(option, sort_keys=True), option)
        described = "\n".join(f"{kind}: {schema['description']}"
                               for kind, schema in by_kind.items())
        fields[key] = ({**_bare(next(iter(by_kind.values()))), "description": described}
                       if len(options) == 1 else
                       {"anyOf": list(options.values()), "description": described})
    return {"additionalProperties": False, "properties": fields, "title": "AwardChange",
            "type": "object",
            "description": defs["VersionChange"]["properties"]["award"]["description"]}


def _bare(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without the keys that only describe it (the award's kinds word them apart)."""
    return {k: v for k, v in schema.items() if k not in ("description", "title", "default")}
