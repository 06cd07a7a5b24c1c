"""``sale calibrate`` without a server: the exact solver, the whole job on fakes, and the command's bad input (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sale_graph import SaleContext, Weights, build_sale_graph, calibrate_weights
from sale_graph.bench.market.errors import MarketError
from sale_graph.bench.market.parse import build_market
from sale_graph.calibrate import AuctionTable, CalibrationError, Target, read_task_file, solve_cost_weight
from sale_graph.cli.commands import main
from tests.fakes import FakeFactory, pool_of, prompt_text


def table(tokens: list[list[int]], values: list[list[float]], prices: tuple[float, float] = (1.0, 10.0)) -> AuctionTable:
    t = np.array(tokens, dtype=float)
    return AuctionTable(task_ids=[f"t{k}" for k in range(len(t))], agents=["cheap", "dear"], price=np.array(prices),
                        tokens=t, value=np.array(values), ok=np.ones(t.shape, dtype=bool), auction_cost=np.full(len(t), 0.001))


# Four tasks, both bids 10 tokens; the dear bid is worth 0.1 .. 0.4 more. The dear agent wins task k while
# w_c * (10 * 10 - 1 * 10) < 0.1 * (k + 1): the breakpoints are 0.1/90 .. 0.4/90, and at a breakpoint the tie
# goes to the cheaper agent.
FOUR = table([[10, 10]] * 4, [[0.5, 0.5 + 0.1 * (k + 1)] for k in range(4)])


@pytest.mark.parametrize(("share", "w_c"), [(1.0, 0.0), (0.75, 0.1 / 90), (0.5, 0.2 / 90), (0.3, 0.3 / 90), (0.0, 0.4 / 90)])
def test_smallest_cost_weight_meeting_a_share_is_a_breakpoint(share: float, w_c: float) -> None:
    sol = solve_cost_weight(FOUR, Target(largest_share=share))
    assert sol.w_c == pytest.approx(w_c, rel=1e-9, abs=1e-15)
    assert sol.largest_share <= share and sol.breakpoints == 4
    assert sol.interval[0] == pytest.approx(w_c, abs=1e-15)
    assert sol.at_zero == 1.0
    # just below it (beyond the table's rounding of C - V to 1e-6) the share is over the target: it is the smallest
    if w_c > 0:
        assert FOUR.dearest_share(FOUR.winners_exact(w_c * (1 - 1e-3))) > share


def test_vectorised_winners_are_the_live_rule() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 200, size=(50, 3))
    values = np.round(rng.uniform(0, 1.5, size=(50, 3)), 6)
    t = AuctionTable(task_ids=[str(k) for k in range(50)], agents=["a", "b", "c"], price=np.array([0.05, 0.4, 3.0]),
                     tokens=tokens.astype(float), value=values, ok=np.ones((50, 3), dtype=bool), auction_cost=np.zeros(50))
    for w in [0.0, *t.breakpoints()[::7].tolist(), 0.01, 1.0]:
        assert (t.winners(w) == t.winners_exact(w)).all()


def test_a_target_no_weight_meets_is_one_clear_error() -> None:
    # The dear agent's bid is so short that its cost line is the flattest: it keeps task 0 however large w_c grows.
    short = table([[100, 5], [10, 10]], [[0.5, 0.9], [0.5, 0.9]])
    with pytest.raises(CalibrationError, match=r"no cost weight meets the target .* dearest agent's share any w_c gives is 50.0%"):
        solve_cost_weight(short, Target(largest_share=0.0))
    assert solve_cost_weight(short, Target(largest_share=0.5)).largest_share == 0.5


def test_budget_target() -> None:
    # An execution of 1000 tokens costs $0.001 (cheap, $1/1M) or $0.01 (dear, $10/1M); the auction $0.001 per task.
    sol = solve_cost_weight(FOUR, Target(budget_usd=0.001 + (2 * 0.001 + 2 * 0.01) / 4, execution_tokens=1000))
    assert sol.w_c == pytest.approx(0.2 / 90) and sol.wins == {"cheap": 2, "dear": 2}
    with pytest.raises(CalibrationError, match=r"the auction itself costs \$0.001 per task"):
        solve_cost_weight(FOUR, Target(budget_usd=0.0005, execution_tokens=1000))


POOL = pool_of(("small", 0.1), ("large", 1.0))


def fake_market() -> FakeFactory:
    """``large`` bids a longer plan, rated by every judge 2 or 3 points above ``small``'s, depending on the task."""

    def bid(agent: str, messages) -> str:
        text = prompt_text(messages)
        case = int(text.split("case ")[1].split(")")[0])
        n = 10 + (case * 7) % 30 if agent == "large" else 8
        return f"{agent.upper()}{case % 3} " + " ".join(f"{agent}{k}" for k in range(n))

    def jury(agent: str, messages) -> str:
        text = prompt_text(messages).split("<strategy-")[-1]
        for k in range(3):
            if f"LARGE{k}" in text:
                return f"SCORE: {3 + (k > 0) + (k > 1)}"
        return "SCORE: 2"

    return FakeFactory({"bid": bid, "jury": jury, "execute": lambda a, m: "Final Answer: ok"})


TASKS = [f"Check the timetable (case {k})." for k in range(24)]


def test_calibration_on_fakes_is_exact_for_the_live_auction(tmp_path: Path) -> None:
    factory = fake_market()
    cal = calibrate_weights(POOL, TASKS, largest_share=0.25, model_factory=factory, check_endpoints=False,
                            log=tmp_path / "log.jsonl", jobs=2)
    assert cal.solution.largest_share <= 0.25 and cal.solution.at_zero == 1.0
    assert len(factory.calls) == len(TASKS) * (2 + 4)  # bids and votes only: nothing executed
    assert all(phase in ("bid", "jury") for _, phase in factory.calls)
    # The live auction with the calibrated weights picks, task by task, the winner the solver predicted.
    predicted = cal.table.winners_exact(cal.solution.w_c)
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    context = SaleContext(pool=POOL, weights=cal.weights, route_only=True, use_memory=False, check_endpoints=False)
    live = [graph.invoke({"task": t}, context=context)["selection"]["winner"] for t in TASKS]
    assert live == [cal.table.agents[i] for i in predicted]
    assert live.count("large") / len(live) == cal.solution.largest_share
    # the weights file round-trips through load_weights with its provenance
    path = cal.save(tmp_path / "w.json")
    data = json.loads(path.read_text())
    assert data["w_c"] == cal.solution.w_c and data["meta"]["calibration"]["target"] == {"largest_share": 0.25}
    # solving again for another target reuses the log: no model call
    calls = len(factory.calls)
    again = calibrate_weights(POOL, TASKS, largest_share=0.5, model_factory=factory, check_endpoints=False, log=tmp_path / "log.jsonl")
    assert len(factory.calls) == calls and again.auctions.reused == len(TASKS)
    # the log is a market log of kind "route": the bench's report refuses it by name
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"route"} and len(records) == len(TASKS)
    with pytest.raises(MarketError, match="route-only auction of `sale calibrate`"):
        build_market(records, "log.jsonl")
    # a log of another pool is refused before any call
    with pytest.raises(CalibrationError, match="recorded with another pool"):
        calibrate_weights(pool_of(("small", 0.1), ("large", 2.0)), TASKS, largest_share=0.5, model_factory=factory,
                          check_endpoints=False, log=tmp_path / "log.jsonl")
    assert len(factory.calls) == calls


def test_value_weights_are_kept_and_the_cost_weight_replaced(tmp_path: Path) -> None:
    base = Weights(w_c=0.5, w_h=0.2, jury={"small": 0.3, "large": 0.7})
    cal = calibrate_weights(POOL, TASKS[:6], largest_share=0.5, weights=base, model_factory=fake_market(), check_endpoints=False)
    assert (cal.weights.w_h, cal.weights.jury) == (0.2, {"small": 0.3, "large": 0.7}) and cal.weights.w_c != 0.5


def test_task_files(tmp_path: Path) -> None:
    text = tmp_path / "tasks.txt"
    text.write_text("first task\n\n  second task  \nfirst task\n", encoding="utf-8")
    tasks, digest = read_task_file(text)
    assert [t.text for t in tasks] == ["first task", "second task", "first task"]
    assert tasks[2].id == tasks[0].id + "-2" and len(digest) == 64
    bench = tmp_path / "tasks.jsonl"
    bench.write_text('{"id": "q1", "domain": "search", "text": "Who?", "gold": ["x"], "bin": 0}\n{"text": "Why?"}\n', encoding="utf-8")
    tasks, _ = read_task_file(bench, domain="coding")
    assert [(t.id, t.domain) for t in tasks] == [("q1", "search"), (tasks[1].id, "coding")]


def _pool_file(tmp_path: Path, prices: tuple[float, ...] = (0.1, 1.0)) -> Path:
    lines = []
    for k, price in enumerate(prices):
        lines += ["[[agents]]", f'name = "a{k}"', f'model = "m{k}"', 'base_url = "http://127.0.0.1:9/v1"',
                  f"price_input = {price}", f"price_output = {price}", ""]
    path = tmp_path / f"pool{len(prices)}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("missing tasks", "task file '{tmp}/none.txt' does not exist"),
    ("empty tasks", "task file '{tmp}/empty.txt' holds no task"),
    ("not utf-8", "task file '{tmp}/latin1.txt' is not UTF-8 text"),
    ("no text field", "{tmp}/bad.jsonl:1: the task needs a non-empty 'text'"),
    ("share above 1", "--largest-share is a share of the tasks in [0, 1], got 1.5"),
    ("share below 0", "--largest-share is a share of the tasks in [0, 1], got -0.1"),
    ("negative budget", "--budget is dollars per task, a positive number, got -1.0"),
    ("one agent", "has 1 agent; a cost weight needs at least two agents"),
    ("same prices", "every agent has the same price"),
    ("missing pool", "pool file '{tmp}/nopool.toml' does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 task\n".encode("latin-1"))
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")
    (tmp_path / "ok.txt").write_text("a task\n", encoding="utf-8")
    pool, tasks, target = str(_pool_file(tmp_path)), str(tmp_path / "ok.txt"), ["--largest-share", "0.3"]
    if case == "missing tasks":
        tasks = str(tmp_path / "none.txt")
    elif case in ("empty tasks", "not utf-8", "no text field"):
        tasks = str(tmp_path / {"empty tasks": "empty.txt", "not utf-8": "latin1.txt", "no text field": "bad.jsonl"}[case])
    elif case == "share above 1":
        target = ["--largest-share", "1.5"]
    elif case == "share below 0":
        target = ["--largest-share", "-0.1"]
    elif case == "negative budget":
        target = ["--budget", "-1"]
    elif case == "one agent":
        pool = str(_pool_file(tmp_path, (0.1,)))
    elif case == "same prices":
        pool = str(_pool_file(tmp_path, (0.5, 0.5)))
    elif case == "missing pool":
        pool = str(tmp_path / "nopool.toml")
    code = main(["calibrate", "--pool", pool, "--tasks", tasks, *target, "--out", str(tmp_path / "w.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert message.format(tmp=tmp_path) in err
    assert not (tmp_path / "w.json").exists()
