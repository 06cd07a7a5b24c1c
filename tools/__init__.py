"""The executor's tools, installed and imported as ``sale_graph.tools`` (never as a top-level ``tools``).

``code`` (run_python, run_tests on the code sandbox), ``web`` (web_search, fetch_page),
``search`` (the search backends), ``corpus`` (the local search corpus), ``sandbox`` (the
code sandbox backends) and ``defaults`` (the executor's default tools per task domain).
"""
