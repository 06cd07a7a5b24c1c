"""Routers replayed on a market log: the shared interface (:mod:`.base`) and its backends.

:mod:`.simple` (single agents, random, the oracle), :mod:`.text` (kNN and MLP on task embeddings),
:mod:`.classifier` (langchain's model-router baseline), :mod:`.auction` (the cascade and SALE's
selection rule, with the ablations of :mod:`.variants`); :mod:`.standard` builds the report's set.
"""
