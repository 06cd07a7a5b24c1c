"""Task sets: the task schema and its JSONL files (:mod:`.schema`), and the offline sets with their bin proxies (:mod:`.datasets`).

``sale bench tasks`` writes them; every other command reads them.
"""
