"""Rebuild the bundled world-countries corpus from the ``countryinfo`` package's data (MIT).

The corpus that ships with the package (``data/world_countries.jsonl``, see
:mod:`sale_graph.tools.corpus.world`) was written by this script; it is kept so
the file can be checked and regenerated, not run by the library. ``countryinfo``
is not a dependency; install it for this only::

    pip install countryinfo==1.0.1
    python -m sale_graph.tools.corpus.world_build

Each country becomes one document of plain sentences (capital, region,
population, area, languages, currencies, neighbours, subdivisions), so a small
model's ``web_search`` finds a whole answer in one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sale_graph.tools.corpus.world import WORLD_CORPUS_FILE


def _join(items: Iterable[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def country_text(rec: dict[str, Any], names_by_code: dict[str, str]) -> str:
    """The document text of one ``countryinfo`` record: short sentences, one fact each."""
    name = rec["name"]
    region = " / ".join(p for p in (rec.get("region"), rec.get("subregion")) if p)
    parts = [f"{name} is a country or territory" + (f" in {region}." if region else ".")]
    if rec.get("capital"):
        parts.append(f"The capital of {name} is {rec['capital']}.")
    if rec.get("population"):
        parts.append(f"Population of {name}: {rec['population']:,} (figure recorded in the mid-2010s).")
    if rec.get("area"):
        parts.append(f"Area of {name}: {rec['area']:,} square kilometres.")
    if rec.get("demonym"):
        parts.append(f"People from {name} are called {rec['demonym']}.")
    if rec.get("languages"):
        parts.append(f"Official language codes (ISO 639-1): {', '.join(rec['languages'])}.")
    if rec.get("currencies"):
        parts.append(f"Currency codes (ISO 4217): {', '.join(rec['currencies'])}.")
    borders = [names_by_code.get(code, code) for code in rec.get("borders") or []]
    if borders:
        parts.append(f"{name} borders {_join(sorted(borders))}.")
    elif rec.get("borders") == []:
        parts.append(f"{name} has no land borders.")
    if rec.get("provinces"):
        parts.append(f"Subdivisions of {name}: {', '.join(rec['provinces'])}.")
    if rec.get("callingCodes"):
        parts.append(f"Telephone calling code: +{rec['callingCodes'][0]}.")
    return " ".join(parts)


def build_records(data_dir: Path) -> list[dict[str, str]]:
    """Corpus records (``id``, ``title``, ``url``, ``text``) for every country file in ``data_dir``."""
    recs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(data_dir.glob("*.json"))]
    names_by_code = {r["ISO"]["alpha3"]: r["name"] for r in recs if isinstance(r.get("ISO"), dict) and r["ISO"].get("alpha3")}
    by_slug: dict[str, dict[str, str]] = {}
    for rec in sorted(recs, key=lambda r: r["name"]):
        if not rec.get("capital") and not rec.get("population"):
            continue  # nothing a question could be answered from
        slug = rec["name"].lower().replace(" ", "-")
        doc = {"id": slug, "title": rec["name"], "url": f"countryinfo:{slug}", "text": country_text(rec, names_by_code)}
        if len(doc["text"]) > len(by_slug.get(slug, {}).get("text", "")):
            by_slug[slug] = doc  # the data has a few countries twice (two file names): keep the fuller record
    return sorted(by_slug.values(), key=lambda d: d["title"])


def main() -> None:
    """Write the corpus file from the installed ``countryinfo`` package."""
    import countryinfo

    data_dir = Path(countryinfo.__file__).parent / "data"
    records = build_records(data_dir)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    WORLD_CORPUS_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(records)} documents to {WORLD_CORPUS_FILE}")


if __name__ == "__main__":
    main()
