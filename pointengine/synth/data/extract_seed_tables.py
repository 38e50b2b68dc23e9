"""Extract the My Number card tables from seeds/003_*.txt into load/data/*.csv.

Run:  /work/venv/bin/python load/data/extract_seed_tables.py
Reads (read-only): /work/shared/seeds/003_*.txt, /work/shared/data/municipalities.csv
Writes: load/data/prefectures.csv, load/data/municipalities.csv

Every number written is either copied from the seed text or derived by a formula
documented in load/data/SOURCE.md.  No number is invented.
"""

from __future__ import annotations

import csv
import glob
import re
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

SEEDS = Path("/work/shared/seeds")
CODES = Path("/work/shared/data/municipalities.csv")
OUT = Path(__file__).resolve().parent

SEED = Path(glob.glob(str(SEEDS / "003_*.txt"))[0])
AS_OF_POP = "2022-01-01"  # 人口 (R4.1.1時点)
AS_OF_RATE = "2022-12-31"  # （令和4年12月末時点）

# Section titles in the seed and the table header first cell that follows them.
SECTIONS = [
    # (section title substring, header cell, kind written to CSV)
    ("【都道府県】", "都道府県名", "prefecture"),
    ("【指定都市・特別区】", "指定都市名", "designated_city"),
    ("【指定都市・特別区】", "特別区名", "special_ward"),
    ("【中核市】", "中核市名", "core_city"),
]
ROW = re.compile(r"^(\d+)\t(\S+)\t([\d,]+)\t(\d+\.\d)%\t(\d+\.\d)%$")


def pct_to_decimal(p: str) -> str:
    """'79.0' -> '0.790' (exact: divide by 100, keep the seed's precision)."""
    return str(Decimal(p).scaleb(-2))


def parse_tables() -> dict[str, list[dict[str, Any]]]:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    out: dict[str, list[dict[str, Any]]] = {k: [] for _, _, k in SECTIONS}
    current = None
    title = None
    for no, line in enumerate(lines, start=1):
        s = line.strip("\n")
        if s.startswith("【") and "マイナンバーカードの申請・交付状況" in s:
            title = s
            current = None
            continue
        if title and s.startswith("\t"):
            cell = s.split("\t")[1]
            for t, header, kind in SECTIONS:
                if t in title and cell == header:
                    assert "人口 (R4.1.1時点)" in s and "申請件数率" in s and "交付枚数率" in s, (
                        no,
                        s,
                    )
                    current = kind
            continue
        m = ROW.match(s)
        if current and m:
            rank, name, pop, app, iss = m.groups()
            out[current].append(
                dict(
                    rank=int(rank),
                    name=name,
                    population=int(pop.replace(",", "")),
                    app_pct=app,
                    iss_pct=iss,
                    line=no,
                )
            )
        elif current and s and not m:
            # first non-table, non-empty line ends the table
            current = None
            if not s.startswith("【"):
                title = None
    return out


SEED_2019 = Path(glob.glob(str(SEEDS / "004_*.txt"))[0])
ROW_2019 = re.compile(r"^(\S+)\t([\d,]+)\t([\d,]+)\t(\d+\.\d)%$")


def parse_2019() -> dict[str, dict[str, Any]]:
    """004: マイナンバーカードの交付枚数等について(令和元年9月16日現在), 2 都道府県別."""
    lines = SEED_2019.read_text(encoding="utf-8").splitlines()
    out: dict[str, dict[str, Any]] = {}
    inside = False
    for no, line in enumerate(lines, start=1):
        if line.startswith("2 都道府県別"):
            inside = True
            continue
        if inside and line.startswith("都道府県名\t"):
            assert "H31.1.1時点" in line and "R元.9.16時点" in line, (no, line)
            continue
        m = ROW_2019.match(line)
        if inside and m:
            name, pop, issued, pct = m.groups()
            out[name] = dict(
                population=int(pop.replace(",", "")),
                issued=int(issued.replace(",", "")),
                pct=pct,
                line=no,
            )
        elif inside and line.strip() and not m:
            break
    assert len(out) == 47, len(out)
    return out


def load_codes() -> list[dict[str, str]]:
    with CODES.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main() -> int:
    tables = parse_tables()
    expected = {"prefecture": 47, "designated_city": 20, "special_ward": 23, "core_city": 62}
    for k, n in expected.items():
        got = [r["rank"] for r in tables[k]]
        assert got == list(range(1, n + 1)), (k, got)
    codes = load_codes()
    pref_by_name = {r["prefecture"]: r for r in codes if r["kind"] == "prefecture"}

    # ---- municipalities: match by name; cities must be unique nationally among kind=city,
    # special wards must be kind=ward in Tokyo (13).
    muni_rows = []
    unmatched = []
    for kind in ("designated_city", "special_ward", "core_city"):
        for r in tables[kind]:
            if kind == "special_ward":
                cands = [
                    c
                    for c in codes
                    if c["kind"] == "ward"
                    and c["prefecture_code"] == "13"
                    and c["municipality"] == r["name"]
                ]
            else:
                cands = [c for c in codes if c["kind"] == "city" and c["municipality"] == r["name"]]
            if len(cands) != 1:
                unmatched.append((kind, r["name"], [c["code6"] for c in cands]))
                continue
            c = cands[0]
            muni_rows.append(
                dict(
                    code6=c["code6"],
                    prefecture_code=c["prefecture_code"],
                    prefecture=c["prefecture"],
                    name=r["name"],
                    kind=kind,
                    seed_rank=r["rank"],
                    population=r["population"],
                    population_as_of=AS_OF_POP,
                    card_application_rate=pct_to_decimal(r["app_pct"]),
                    card_issuance_rate=pct_to_decimal(r["iss_pct"]),
                    rates_as_of=AS_OF_RATE,
                    mynapoint_application_rate="",
                    card_application_rate_src=r["app_pct"] + "%",
                    card_issuance_rate_src=r["iss_pct"] + "%",
                    source=f"{SEED.name}:{r['line']}",
                )
            )
    if unmatched:
        print("UNMATCHED:", unmatched, file=sys.stderr)
        return 1

    # ---- prefectures, in code order, plus the remainder not covered by listed units
    pref_rows = []
    seed_pref = {r["name"]: r for r in tables["prefecture"]}
    assert set(seed_pref) == set(pref_by_name), set(seed_pref) ^ set(pref_by_name)
    q4 = Decimal("0.0001")
    y2019 = parse_2019()
    assert set(y2019) == set(pref_by_name)
    for name, c in sorted(pref_by_name.items(), key=lambda kv: kv[1]["prefecture_code"]):
        r = seed_pref[name]
        listed = [m for m in muni_rows if m["prefecture_code"] == c["prefecture_code"]]
        listed_pop = sum(m["population"] for m in listed)
        rem_pop = r["population"] - listed_pop
        assert rem_pop > 0, name
        pref_app = Decimal(r["app_pct"]) / 100
        pref_iss = Decimal(r["iss_pct"]) / 100
        rem_app = (
            r["population"] * pref_app
            - sum(m["population"] * Decimal(m["card_application_rate"]) for m in listed)
        ) / rem_pop
        rem_iss = (
            r["population"] * pref_iss
            - sum(m["population"] * Decimal(m["card_issuance_rate"]) for m in listed)
        ) / rem_pop
        listed_codes = {m["code6"] for m in listed}
        rem_munis = [
            m
            for m in codes
            if m["prefecture_code"] == c["prefecture_code"]
            and m["kind"] in ("city", "ward", "town", "village")
            and m["code6"] not in listed_codes
        ]
        # rates in the seed are rounded to 0.1 %: worst-case error of the remainder rate
        err = Decimal("0.0005") * (r["population"] + listed_pop) / rem_pop
        pref_rows.append(
            dict(
                prefecture_code=c["prefecture_code"],
                prefecture=name,
                code6=c["code6"],
                seed_rank=r["rank"],
                population=r["population"],
                population_as_of=AS_OF_POP,
                card_application_rate=pct_to_decimal(r["app_pct"]),
                card_issuance_rate=pct_to_decimal(r["iss_pct"]),
                rates_as_of=AS_OF_RATE,
                mynapoint_application_rate="",
                card_application_rate_src=r["app_pct"] + "%",
                card_issuance_rate_src=r["iss_pct"] + "%",
                listed_units=len(listed),
                listed_population=listed_pop,
                remainder_population=rem_pop,
                remainder_card_application_rate=str(rem_app.quantize(q4, ROUND_HALF_EVEN)),
                remainder_card_issuance_rate=str(rem_iss.quantize(q4, ROUND_HALF_EVEN)),
                remainder_rate_max_rounding_error=str(err.quantize(q4, "ROUND_CEILING")),
                remainder_municipalities=len(rem_munis),
                source=f"{SEED.name}:{r['line']}",
                population_2019=y2019[name]["population"],
                population_2019_as_of="2019-01-01",
                cards_issued_2019=y2019[name]["issued"],
                card_issuance_rate_2019=str(Decimal(y2019[name]["pct"]).scaleb(-2)),
                card_issuance_2019_as_of="2019-09-16",
                source_2019=f"{SEED_2019.name}:{y2019[name]['line']}",
            )
        )

    for fname, rows in (("prefectures.csv", pref_rows), ("municipalities.csv", muni_rows)):
        with (OUT / fname).open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        print(fname, len(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
