"""Fitting the auction weights (``sale bench fit``): a two-stage MILP on a market log's dev split.

:mod:`.weights` (the fit and its result), :mod:`.programme` (the MILP's pieces), :mod:`.sampling`
(the sampled start), :mod:`.stages` (one MILP stage), :mod:`.ablations` (one refit per SALE
variant), :mod:`.provenance` (which tasks a fit used), :mod:`.defaults` (light, for the CLI).
"""
