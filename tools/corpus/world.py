"""The bundled world-countries corpus: the default search corpus that ships with the package.

About 240 short documents, one per country or territory (capital, region,
population, area, languages, currencies, neighbours, subdivisions), built from
the MIT-licensed data of the ``countryinfo`` package (see ``data/NOTICE`` and
:mod:`sale_graph.tools.corpus.world_build`). It lets ``web_search`` answer
everyday factual questions with no extra install and no network; the larger
offline Wikipedia corpus (GPL-3.0 data) stays the optional ``wiki`` extra.
Population figures are from the mid-2010s, and each document says so.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WORLD_CORPUS_FILE", "WORLD_CORPUS_NAME", "WORLD_SOURCE_NOTE", "world_corpus_path"]

#: The corpus file inside the package.
WORLD_CORPUS_FILE = Path(__file__).with_name("data") / "world_countries.jsonl"
#: Index name of the bundled corpus under the data dir.
WORLD_CORPUS_NAME = "world-countries"
#: Where the data comes from, as the CLI and the docs state it.
WORLD_SOURCE_NOTE = "countries of the world, from the countryinfo package's data (MIT); populations from the mid-2010s"


def world_corpus_path() -> Path:
    """Path of the bundled world-countries corpus (JSONL: ``id``, ``title``, ``url``, ``text``)."""
    return WORLD_CORPUS_FILE
