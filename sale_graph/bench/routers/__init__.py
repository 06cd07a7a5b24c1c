"""Routers replayed on a market log: the shared interface (:mod:`.base`) and its backends.

:mod:`.text` (kNN and MLP on task embeddings), :mod:`.classifier` (langchain's model-router
baseline), :mod:`.auction` (the cascade and SALE's selection rule, with the ablations of
:mod:`.variants`); :mod:`.standard` holds the simple routers and builds the report's set.
"""
