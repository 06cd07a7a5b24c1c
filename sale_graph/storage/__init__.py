"""What the memory, the search corpus and the embedded pool share to keep data on disk.

- :mod:`~sale_graph.storage.paths`: the one data directory (``$SALE_HOME``) holding the
  auction memory, search indexes, server logs, assembled model weights and bench logs.
- :mod:`~sale_graph.storage.jsonl`: reading JSON-lines files with errors naming the file
  and line (memory exports, task sets, corpus documents).
- :mod:`~sale_graph.storage.text_embedder`: the offline e5-small text embedder of the
  memory's and the corpus's Chroma collections. Import it from its module: it loads
  numpy and LangChain, which this package's other modules do not need.
"""

from sale_graph.storage.jsonl import iter_jsonl
from sale_graph.storage.paths import ENV_HOME, data_path, sale_home

__all__ = ["ENV_HOME", "data_path", "iter_jsonl", "sale_home"]
