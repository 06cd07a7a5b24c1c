"""A priced pool on the wire server whose bids and judgements differ from task to task, for ``sale calibrate``.

Three agents, ``small`` ($0.10 per 1M tokens), ``medium`` ($0.40) and ``large`` ($2.00).
On each task every agent bids a plan of a quality and a length drawn from the task and
the agent (SHA-256, so every run sees the same market): ``large`` writes better plans
on average (quality 3-5 of 5) than ``medium`` (2-4) and ``small`` (1-3), and longer ones.
The plan carries its quality as a word (``QUALITY-4``); each judge scores it that
quality, give or take one point drawn from the judge and the plan. With no cost term
``large`` wins most tasks; as the cost weight grows its share falls task by task, so
a share target can be met to within a task or two.

Used by ``tests/contract/test_calibrate.py`` and ``benchmarks/calibrate.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.contract.wire_formats import ModelBehaviour, last_user_text, message_text
from tests.contract.wire_server import WireServer

PRICES = {"small": 0.10, "medium": 0.40, "large": 2.00}
QUALITY = {"small": (1, 3), "medium": (2, 4), "large": (3, 5)}
LENGTH = {"small": (15, 60), "medium": (25, 90), "large": (35, 120)}
_VERBS = ("Compare", "Summarise", "Explain", "Estimate", "Find", "Plan", "Check", "List")
_NOUNS = ("the rainfall", "the population", "the opening hours", "the price history", "the main exports", "the bus routes")
_PLACES = ("of Lyon", "of Kyoto", "of Lagos", "of Quito", "of Perth", "of Tallinn", "of Hanoi", "of Porto", "of Oslo")
_TASK = re.compile(r"^Task: (.*?)\n\n", re.DOTALL)
_PLAN = re.compile(r"<strategy-[0-9a-f]+>(.*?)</strategy-[0-9a-f]+>", re.DOTALL)
_QUALITY = re.compile(r"QUALITY-(\d)")


def draw(*parts: str) -> int:
    """A stable pseudo-random integer from the parts (SHA-256, unlike ``hash`` the same in every process)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:8], "big")


def tasks(n: int, offset: int = 0) -> list[str]:
    """``n`` distinct task texts (``offset`` starts further along, for held-out tasks)."""
    out = []
    for k in range(offset, offset + n):
        verb, noun, place = _VERBS[k % len(_VERBS)], _NOUNS[(k // 3) % len(_NOUNS)], _PLACES[(k // 7) % len(_PLACES)]
        out.append(f"{verb} {noun} {place} (case {k}).")
    return out


def plan(agent: str, task: str) -> str:
    """``agent``'s bid on ``task``: its quality as a word, then distinct filler words up to its drawn length."""
    lo, hi = QUALITY[agent]
    quality = lo + draw(agent, task, "q") % (hi - lo + 1)
    lo, hi = LENGTH[agent]
    length = lo + draw(agent, task, "n") % (hi - lo + 1)
    words = [f"w{draw(agent, task, str(k)) % 10_000}" for k in range(length)]
    return f"1. QUALITY-{quality} " + " ".join(words)


def score(judge: str, strategy: str) -> int:
    """``judge``'s score of a plan: its quality, plus or minus one point drawn from the judge and the plan."""
    found = _QUALITY.search(strategy)
    quality = int(found.group(1)) if found else 0
    noise = (0, 0, 1, -1)[draw(judge, strategy, "j") % 4]
    return max(0, min(5, quality + noise))


def responder(model: str) -> Any:
    """What ``model`` answers: a score to a jury prompt (text ``SCORE: n``), else its plan for the task."""

    def respond(request: Mapping[str, Any]) -> str:
        messages = request.get("messages") or []
        system = message_text(messages[0].get("content")) if messages and messages[0].get("role") == "system" else ""
        text = last_user_text(request)
        if system.startswith("Rate how likely"):
            found = _PLAN.search(text)
            return f"SCORE: {score(model, found.group(1) if found else '')}"
        found = _TASK.search(text)
        return plan(model, found.group(1) if found else text)

    return respond


def behaviours() -> dict[str, ModelBehaviour]:
    """The served models."""
    return {name: ModelBehaviour(responder=responder(name)) for name in PRICES}


def write_pool(path: Path, server: WireServer) -> Path:
    """A pool TOML for the three agents on ``server`` (judges answer in text)."""
    lines = []
    for name, price in PRICES.items():
        fields = {"name": name, "model": name, "base_url": server.base_url, "price_input": price, "price_output": price,
                  "structured_output": "none", "timeout_s": 20.0, "max_retries": 1}
        lines += ["[[agents]]", *(f"{k} = {json.dumps(v)}" for k, v in fields.items()), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
