"""Hostile input for the fault suite: mutated native payloads, mutated rule files, My Numbers.

Everything is drawn from a ``random.Random`` the caller seeds, so a failure names a seed and
an index that give the same input again.

* :func:`mutate_payload` turns a provider's valid native body (from its ``adapters``
  generator) into a hostile one: bytes flipped, inserted or cut, the body truncated, a value
  nested tens of thousands of levels deep, huge and odd numbers, odd Unicode (lone surrogates,
  NUL, bidirectional marks, characters NFKC expands), a key, element or column given twice, a
  My Number in some form, a value of another type, a field dropped, a DOCTYPE, another
  encoding.
* :func:`mutate_rule_file` edits a rule file as :data:`ODD_YAML` lists (YAML tags, anchors,
  flow brackets, control characters, huge and odd scalars), and at the byte level.
* :func:`my_number_forms` writes one valid My Number in every form the guard must see
  through; the ``place_*`` functions put a value in every field of a JSON body, an XML
  notification, a CSV file or a canonical event.
"""

from __future__ import annotations

import copy
import io
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from pointengine.model.privacy import my_number_check_digit

__all__ = [
    "GROUPINGS",
    "ODD_YAML",
    "TOKEN",
    "mutate_payload",
    "mutate_rule_file",
    "my_number_forms",
    "place_in_csv",
    "place_in_json",
    "place_in_xml",
    "render",
    "valid_my_number",
]

ODD_YAML = [
    "!!timestamp x", "!!timestamp 2022-13-45", "!!binary aGVsbG8=", "!!set {a, b}",
    "!!omap [a: 1]", "!!pairs [a: 1]", "!!python/object:os.system ls", "!!float x", "!!int x",
    "!!bool x", "!!null x", "!!str 1", "!!map {}", "!!seq []", "!<tag:example.com,2000:x> y",
    "&a 1", "*a", "<<: {a: 1}", "? [a, b]\n  : 1", "- 1", "\t1", "{", "[", "}", "]", "'",
    '"\\x"', "%YAML 1.1", "---", "...", "名前", "\x07", "\ufeff", "1e999", "-.inf", ".nan",
    "2022-02-30", "0x1F", "0o17", "10_000", "99999999999999999999999999",
    "[" * 200 + "]" * 200, "{a: " * 60 + "1" + "}" * 60,
]
"""Odd YAML a rule file may be edited to hold, as a value, a line or a key."""

TOKEN = "@@MYNUMBER@@"
"""Where ``place_*`` put the value; :func:`render` writes it in a format's own syntax."""

GROUPINGS = {
    "colons": ":", "dots": ".", "underscores": "_", "hyphens 3-3-3-3": "-",
    "spaces": " ", "ideographic space": "\u3000", "no-break space": "\u00a0",
    "full-width hyphen": "\uff0d", "tab": "\t", "zero-width space": "\u200b",
    "soft hyphen": "\u00ad",
}
"""The separators a grouped My Number is written with (four groups of three digits for the
hyphens, three of four for the rest)."""

_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def valid_my_number(rng: random.Random) -> str:
    """Twelve digits with a valid My Number check digit."""
    first = f"{rng.randrange(10 ** 11):011d}"
    return first + str(my_number_check_digit(first))


def my_number_forms(number: str) -> dict[str, str]:
    """``number`` written every way the guard must recognise, by form name.

    The values are the text a parser reads; ``escaped`` and ``json number`` are only a way of
    writing the plain digits in a format (:func:`render`).
    """
    forms = {"plain": number, "full-width": number.translate(_FULL_WIDTH),
             "escaped": number, "json number": number}
    for name, separator in GROUPINGS.items():
        size = 3 if separator == "-" else 4
        forms[name] = separator.join(number[i:i + size] for i in range(0, 12, size))
    return forms


def render(form: str, text: str, syntax: str) -> bytes | None:
    """How ``text`` (a form of :func:`my_number_forms`) is written in ``syntax`` (``json``:
    inside a string's quotes, except ``json number``; ``xml``; ``csv``); None when the form
    has no meaning there."""
    if syntax == "json":
        if form == "escaped":
            return "".join(f"\\u{ord(c):04x}" for c in text).encode()
        return orjson.dumps(text)[1:-1]
    if form == "json number":
        return None
    if syntax == "xml":
        if form == "escaped":
            return "".join(f"&#{ord(c)};" for c in text).encode()
        return text.encode()
    return None if form == "escaped" else text.encode()


def _filled(raw: bytes, rendered: bytes, number_form: bool) -> bytes:
    if number_form:
        return raw.replace(b'"' + TOKEN.encode() + b'"', rendered)
    return raw.replace(TOKEN.encode(), rendered)


# -- placing a value in every field ------------------------------------------------------------


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(doc, list) and doc:
        for index, value in enumerate(doc):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def _objects(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        yield path
        for key, value in doc.items():
            yield from _objects(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _objects(value, (*path, index))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def place_in_json(body: bytes, form: str, text: str) -> list[tuple[str, bytes]]:
    """``body`` (a JSON document) with ``text`` written as ``form`` in each of its places:
    every value, a new field of every object, a value nested in a new field, and every
    object's field names; (place, body) pairs."""
    rendered = render(form, text, "json")
    assert rendered is not None
    number = form == "json number"
    doc = orjson.loads(body)
    out: list[tuple[str, Any]] = []
    for path in _leaves(doc):
        if path:
            out.append(("/".join(map(str, path)), _set(doc, path, TOKEN)))
    for path in _objects(doc):
        where = "/".join(map(str, path)) or "(top)"
        obj = _at(doc, path)
        extra = copy.deepcopy(doc)
        target = _at(extra, path)
        target["note"] = TOKEN
        out.append((f"{where}: new field", extra))
        nested = copy.deepcopy(doc)
        _at(nested, path)["meta"] = {"n": [TOKEN]}
        out.append((f"{where}: nested", nested))
        if not number:
            named = copy.deepcopy(doc)
            renamed = {TOKEN: "x", **obj}
            named = _set(named, path, renamed) if path else renamed
            out.append((f"{where}: field name", named))
    return [(place, _filled(orjson.dumps(d), rendered, number)) for place, d in out]


def place_in_xml(body: bytes, form: str, text: str) -> list[tuple[str, bytes]]:
    """A CarrierPay notification with ``text`` as ``form`` in each element's text, each
    attribute, a new element and a new attribute of every element; (place, body) pairs."""
    rendered = render(form, text, "xml")
    if rendered is None:
        return []
    depth = most = 0
    for event, _ in ET.iterparse(io.BytesIO(body), events=("start", "end")):
        depth += 1 if event == "start" else -1
        most = max(most, depth)
        if most > 200:  # copying a tree that deep overflows the C stack
            raise ValueError("the document is nested too deeply to place a value in")
    root = ET.fromstring(body)
    out = []
    for index, element in enumerate(root.iter()):
        changes: list[tuple[str, str]] = [("new attribute", "note"), ("new element", "Note")]
        if element.text and element.text.strip():
            changes.append(("text", ""))
        changes.extend(("attribute", name) for name in element.attrib)
        for how, name in changes:
            changed = copy.deepcopy(root)
            target = list(changed.iter())[index]
            if how == "text":
                target.text = TOKEN
            elif how == "new element":
                ET.SubElement(target, name).text = TOKEN
            else:
                target.set(name, TOKEN)
            document = ("<?xml version='1.0' encoding='utf-8'?>\n"
                        + ET.tostring(changed, encoding="unicode")).encode()
            place = f"<{element.tag}> {how}" + (f" {name}" if how == "attribute" else "")
            out.append((place, document.replace(TOKEN.encode(), rendered)))
    return out


def place_in_csv(body: bytes, form: str, text: str) -> list[tuple[str, bytes]]:
    """A TownCoin file (written again as UTF-8 with a BOM, which holds any character) with
    ``text`` as ``form`` in each cell of its first line, in each header cell, and in a new
    column; (place, body) pairs."""
    rendered = render(form, text, "csv")
    if rendered is None:
        return []
    lines = [line for line in body.decode("cp932").split("\r\n") if line]
    header, first, rest = lines[0].split(","), lines[1].split(","), lines[2:]
    variants: list[tuple[str, list[str], list[str]]] = []
    for column, name in enumerate(header):
        cells = list(first)
        cells[column] = TOKEN
        variants.append((f"column {name}", header, cells))
        names = list(header)
        names[column] = TOKEN
        variants.append((f"header cell {column + 1}", names, first))
    variants.append(("new column", [*header, "備考"], [*first, TOKEN]))
    out = []
    for place, names, cells in variants:
        if len(names) == len(header) + 1 and len(cells) == len(first) + 1:
            rows = [",".join(names), ",".join(cells), *(line + "," for line in rest)]
        else:
            rows = [",".join(names), ",".join(cells), *rest]
        document = ("\r\n".join(rows) + "\r\n").encode("utf-8-sig")
        out.append((place, document.replace(TOKEN.encode(), rendered)))
    return out


# -- mutating a valid payload ------------------------------------------------------------------

_ODD_TEXT = [
    "\u0000", "\ud800", "\udfff", "\u202e", "\u200f", "\ufeff", "\u2028", "\uffff", "\U0010ffff",
    "𝟏𝟐𝟑", "٣٤٥", "①②③", "e\u0301\u0301\u0301", "ﷺ" * 50, "Å", "ｶﾞ", "😀" * 20, "\x7f",
    "\\", '"', "'", "<", "&amp;", "]]>", "%s%n", "${jndi:x}", "' OR 1=1 --", "../../etc/passwd",
    "\r\n", "\t", " " * 1000, "A" * 70_000,
]
_ODD_NUMBERS = [
    b"0", b"-0", b"-1", b"1.5", b"1e999", b"-1e999", b"1E+2", b"0x10", b"NaN", b"Infinity",
    b"9" * 400, b"18446744073709551616", b"9223372036854775808", b"100000001", b"2147483648",
    b"00012", b"+5", b".5", b"5.", b"1_000",
]
_ODD_BYTES = [
    b"\x00", b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xef\xbb\xbf", b'"', b"\\",
    b"\\u", b"\\ud800", b"{", b"}", b"[", b"]", b",", b":", b"<", b">", b"&", b"<!--", b"]]>",
    b"\r", b"\n", b"\r\n", b"\x1a", b",,,,", b'"\r\n"',
]
_JSON_KEY = re.compile(rb'[{,]"([^"\\]{1,40})":')
_XML_ELEMENT = re.compile(rb"<([A-Za-z]+)(?: [^>]*)?>[^<]*</\1>")
_DIGITS = re.compile(rb"-?[0-9]+")
_STRING = re.compile(rb'"[^"\\]*"')


def _flip(rng: random.Random, body: bytes) -> bytes:
    out = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _insert(rng: random.Random, body: bytes) -> bytes:
    at = rng.randrange(len(body) + 1)
    return body[:at] + rng.choice(_ODD_BYTES) * rng.choice((1, 1, 2, 100)) + body[at:]


def _cut(rng: random.Random, body: bytes) -> bytes:
    start = rng.randrange(len(body) + 1)
    return body[:start] + body[start + rng.randint(1, 40):]


def _truncate(rng: random.Random, body: bytes) -> bytes:
    return body[:rng.randrange(len(body))]


def _repeat_span(rng: random.Random, body: bytes) -> bytes:
    start = rng.randrange(len(body) + 1)
    span = body[start:start + rng.randint(1, 200)]
    return body[:start] + span * rng.randint(2, 50) + body[start:]


def _huge_number(rng: random.Random, body: bytes) -> bytes:
    found = list(_DIGITS.finditer(body))
    if not found:
        return _insert(rng, body)
    match = rng.choice(found)
    return body[:match.start()] + rng.choice(_ODD_NUMBERS) + body[match.end():]


def _odd_unicode(rng: random.Random, body: bytes, syntax: str) -> bytes:
    odd = rng.choice(_ODD_TEXT)
    raw = odd.encode("utf-8", "surrogatepass")
    if syntax == "json":
        if any(0xD800 <= ord(c) <= 0xDFFF for c in odd):  # only an escape can write one
            raw = "".join(f"\\u{ord(c):04x}" for c in odd).encode()
        elif rng.random() < 0.5:
            raw = orjson.dumps(odd)[1:-1]
        strings = list(_STRING.finditer(body))
        if strings:
            match = rng.choice(strings)
            at = rng.randint(match.start() + 1, match.end() - 1)
            return body[:at] + raw + body[at:]
    at = rng.randrange(len(body) + 1)
    return body[:at] + raw + body[at:]


def _deep(rng: random.Random, body: bytes, syntax: str) -> bytes:
    depth = rng.choice((63, 64, 65, 200, 1_000, 5_000, 100_000, 1_000_000))
    if syntax == "json":
        opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}")))
        nested = opener * depth + b"1" + closer * depth
        keys = list(_JSON_KEY.finditer(body))
        if keys:
            match = rng.choice(keys)
            return body[:match.end()] + nested + b"," + b'"x":' + body[match.end():]
        return nested
    if syntax == "xml":
        nested = b"<a>" * depth + b"1" + b"</a>" * depth
        at = body.find(b"<Amount")
        return body[:at] + nested + body[at:] if at >= 0 else body + nested
    return body + b'"' * depth


def _repeated(rng: random.Random, body: bytes, syntax: str) -> bytes:
    if syntax == "json":
        keys = list(_JSON_KEY.finditer(body))
        if keys:
            match = rng.choice(keys)
            again = b'"' + match.group(1) + b'":' + rng.choice((b"1", b'"x"', b"null", b"5000"))
            return body[:match.start() + 1] + again + b"," + body[match.start() + 1:]
    elif syntax == "xml":
        elements = list(_XML_ELEMENT.finditer(body))
        if elements:
            match = rng.choice(elements)
            return body[:match.end()] + match.group() + body[match.end():]
    else:
        lines = body.split(b"\r\n")
        cells = lines[0].split(b",")
        cells.append(rng.choice(cells))
        lines[0] = b",".join(cells)
        return b"\r\n".join(lines)
    return _repeat_span(rng, body)


def _retyped(rng: random.Random, body: bytes, syntax: str) -> bytes:
    if syntax != "json":
        return _flip(rng, body)
    try:
        doc = orjson.loads(body)
        copy.deepcopy(doc)
    except (orjson.JSONDecodeError, RecursionError):  # not JSON, or too deep to rewrite
        return _flip(rng, body)
    leaves = [p for p in _leaves(doc) if p]
    if not leaves:
        return orjson.dumps([doc])
    path = rng.choice(leaves)
    value = rng.choice([None, True, [], {}, "", "x", 1.5, -1, 0, 10 ** 18, [1, 2], {"a": 1}])
    if rng.random() < 0.2:
        return orjson.dumps(rng.choice([doc, [doc], "x", 1, None, [[doc]]]))
    if rng.random() < 0.3:
        changed = copy.deepcopy(doc)
        parent = _at(changed, path[:-1])
        del parent[path[-1]]
        return orjson.dumps(changed)
    return orjson.dumps(_set(doc, path, value))


def _structure(rng: random.Random, body: bytes, syntax: str) -> bytes:
    if syntax == "xml":
        return rng.choice([
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            + body.split(b"?>", 1)[-1].replace(b"JPY", b"&b;"),
            body.replace(b"encoding='utf-8'", b"encoding='utf-16'"),
            body.decode().encode("utf-16"),
            b"\xef\xbb\xbf" + body,
            body.replace(b"<Payment", b"<![CDATA[x]]><?pi x?><!-- c --><Payment", 1),
            body.replace(b"<CarrierPayNotification", b'<CarrierPayNotification xmlns="urn:x"'),
            body.replace(b"Payment", b"Refund"),
            b"<CarrierPayNotification/>",
            body + body,
        ])
    if syntax == "csv":
        text = body.decode("cp932", "replace")
        return rng.choice([
            text.encode("utf-16"), text.encode("utf-8"), text.encode("latin-1", "replace"),
            body.replace(b"\r\n", b"\n"), body.replace(b"\r\n", b"\r"),
            body.replace(b",", b'","'), body.replace(b",", b";"), b"\xef\xbb\xbf",
            body.split(b"\r\n", 1)[0], body.split(b"\r\n", 1)[-1],
            body.replace(b",", b',"a\r\nb",', 1),
        ])
    return rng.choice([b"[" + body + b"]", b'"' + body.replace(b'"', b'\\"') + b'"', b"",
                       b"null", body + body, b"{}", b"[]", body + b"\n" + body])


def mutate_payload(rng: random.Random, body: bytes, syntax: str) -> tuple[str, bytes]:
    """A hostile variant of a valid native ``body`` (``syntax``: json, xml or csv) and the
    name of the mutations made."""

    def my_number(raw: bytes) -> bytes:
        form, text = rng.choice(sorted(my_number_forms(valid_my_number(rng)).items()))
        try:
            placed = (place_in_json(raw, form, text) if syntax == "json" else
                      place_in_xml(raw, form, text) if syntax == "xml" else
                      place_in_csv(raw, form, text))
        except Exception:
            placed = []  # already broken by an earlier mutation: the number goes in as bytes
        if not placed:
            at = rng.randrange(len(raw) + 1)
            return raw[:at] + text.encode() + raw[at:]
        return rng.choice(placed)[1]

    kinds: dict[str, Callable[[bytes], bytes]] = {
        "bytes flipped": lambda raw: _flip(rng, raw),
        "bytes inserted": lambda raw: _insert(rng, raw),
        "bytes cut": lambda raw: _cut(rng, raw),
        "truncated": lambda raw: _truncate(rng, raw),
        "span repeated": lambda raw: _repeat_span(rng, raw),
        "huge number": lambda raw: _huge_number(rng, raw),
        "odd unicode": lambda raw: _odd_unicode(rng, raw, syntax),
        "nested deeply": lambda raw: _deep(rng, raw, syntax),
        "given twice": lambda raw: _repeated(rng, raw, syntax),
        "retyped": lambda raw: _retyped(rng, raw, syntax),
        "structure": lambda raw: _structure(rng, raw, syntax),
        "my number": my_number,
    }
    if rng.random() < 0.003:  # rare: each costs the service 8 MiB read and refused
        return "over 8 MiB", body + b" " * (8 * 1024 * 1024)
    names = [rng.choice(sorted(kinds))]
    mutated = kinds[names[0]](body)
    for _ in range(rng.choice((0, 0, 0, 1, 2))):  # sometimes several at once
        names.append(rng.choice(["bytes flipped", "bytes inserted", "huge number",
                                 "odd unicode", "given twice", "my number"]))
        mutated = kinds[names[-1]](mutated) if mutated else mutated
    return " + ".join(names), mutated


# -- mutating a rule file ----------------------------------------------------------------------


EDITS = ("value", "line", "key")
"""Where :func:`odd_edit` puts an odd value: as a line's value, as a line, as a key."""


def odd_edit(lines: list[str], at: int, odd: str, how: str) -> None:
    """Put ``odd`` into ``lines`` at line ``at``, ``how`` one of :data:`EDITS` (a line
    without a key takes it as a line of its own)."""
    if how == "value" and ":" in lines[at]:
        key, _, _ = lines[at].partition(":")
        lines[at] = f"{key}: {odd}"
    elif how == "key":
        lines[at] = f"{odd}: {lines[at].strip()}"
    else:
        lines.insert(at, odd)


def mutate_rule_file(rng: random.Random, original: str) -> tuple[str, bytes]:
    """One to three edits of a rule file's text as the catalog's fuzz test makes them (an
    :data:`ODD_YAML` value, line or key), sometimes followed by a byte-level one (cut short,
    a byte that is not UTF-8, a NUL, CRLF line ends); the edits' names and the bytes."""
    lines = original.splitlines()
    names = []
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(lines))
        odd = rng.choice(ODD_YAML)
        how = rng.choice(EDITS)
        odd_edit(lines, at, odd, how)
        names.append(f"{how} {odd[:20]!r} at line {at + 1}")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if rng.random() < 0.25:
        how = rng.choice(["cut short", "not UTF-8", "NUL", "CRLF", "BOM twice"])
        if how == "cut short":
            data = data[:rng.randrange(len(data))]
        elif how == "not UTF-8":
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.choice((b"\xff", b"\xe5\x90", b"\xc0\xaf")) + data[at:]
        elif how == "NUL":
            at = rng.randrange(len(data) + 1)
            data = data[:at] + b"\x00" + data[at:]
        elif how == "CRLF":
            data = data.replace(b"\n", b"\r\n")
        else:
            data = b"\xef\xbb\xbf\xef\xbb\xbf" + data
        names.append(how)
    return "; ".join(names), data
