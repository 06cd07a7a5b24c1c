"""The task of a chat turn (issue 20, finding 1): the latest request in its conversation, condensed to a budget."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from sale_graph import SaleContext
from sale_graph.conversation import (
    CUT_MARK,
    DEFAULT_CONVERSATION_MAX_TOKENS,
    REQUEST_LABEL,
    conversation_task,
    estimate_tokens,
    search_query,
)


def test_a_one_shot_task_is_the_message_itself() -> None:
    for messages in ([HumanMessage("What is 2 + 3?")], [SystemMessage("Be brief."), HumanMessage("What is 2 + 3?")],
                     [{"role": "user", "content": "What is 2 + 3?"}], [("user", "What is 2 + 3?")]):
        turn = conversation_task(messages)
        assert turn is not None and turn.text == "What is 2 + 3?" and turn.note() is None
    assert conversation_task([AIMessage("hello")]) is None and conversation_task([]) is None
    assert conversation_task([HumanMessage("   ")]) is None


def test_a_follow_up_carries_its_conversation_and_is_marked_as_the_request() -> None:
    messages = [
        SystemMessage("You are a geography assistant."),
        HumanMessage("What is the capital of Australia?"),
        AIMessage("", tool_calls=[{"name": "web_search", "args": {"query": "capital of Australia"}, "id": "c1"}]),
        ToolMessage("Canberra is the capital city of Australia ... (a long search result)", tool_call_id="c1"),
        AIMessage("<think>the search says Canberra</think>The capital of Australia is Canberra."),
        HumanMessage("And its population?"),
    ]
    turn = conversation_task(messages)
    assert turn is not None and turn.request == "And its population?" and turn.earlier_turns == 1
    assert turn.text == (
        "Conversation:\n"
        "User: What is the capital of Australia?\n"
        "Assistant (called web_search): The capital of Australia is Canberra.\n"
        f"{REQUEST_LABEL} And its population?"
    )
    # Tool results, the system prompt and the reasoning are not part of the task.
    assert "long search result" not in turn.text and "geography assistant" not in turn.text and "think" not in turn.text
    assert turn.note() is None  # nothing condensed
    # Messages after the latest request (this turn's own work) are not part of the task either.
    assert conversation_task([*messages, AIMessage("working on it")]) == turn
    # JSON messages read the same way.
    as_json = [{"role": "user", "content": "What is the capital of Australia?"},
               {"role": "assistant", "content": "The capital of Australia is Canberra.",
                "tool_calls": [{"type": "function", "function": {"name": "web_search", "arguments": "{}"}}]},
               {"role": "user", "content": [{"type": "text", "text": "And its population?"}]}]
    json_turn = conversation_task(as_json)
    assert json_turn is not None and json_turn.text == turn.text


def test_a_long_history_is_condensed_to_the_budget_and_the_request_is_kept_whole() -> None:
    messages = []
    for i in range(12):
        messages += [HumanMessage(f"Question {i} about topic {i}?"), AIMessage(f"Answer {i}: " + "word " * 40)]
    request = "And the last one? " + "detail " * 300  # a request far above the budget is never cut
    messages.append(HumanMessage(request))
    turn = conversation_task(messages, max_tokens=220)
    assert turn is not None and turn.text.endswith(request) and turn.request == request
    earlier = turn.text[: turn.text.index(REQUEST_LABEL)]
    assert estimate_tokens(earlier.split("\n", 1)[1].rstrip("\n")) <= 220  # the turns after the header fit the budget
    # The most recent turns are kept whole, the next one cut, the older ones left out (their number said).
    assert "Question 11 about topic 11?\nAssistant: Answer 11: " + "word " * 39 + "word" in earlier
    assert "Question 10 about topic 10?" in earlier
    assert turn.kept + turn.cut + turn.left_out == turn.earlier_turns == 12
    assert turn.kept == 3 and turn.cut == 1 and turn.left_out == 8
    assert earlier.startswith("Conversation (8 older turns left out):\n")
    assert earlier.count(CUT_MARK) == 1 and "Question 3 " not in earlier
    assert turn.note() == ("conversation condensed: the request's 12 earlier turn(s) exceed conversation_max_tokens=220 "
                           "(estimated at 4 characters a token): 3 kept whole, 1 cut, 8 left out")
    # The most recent turn alone over the budget: it is cut (its question first), not dropped.
    big = [HumanMessage("What is the capital of Australia?"), AIMessage("Canberra. " + "More. " * 400),
           HumanMessage("And its population?")]
    cut = conversation_task(big, max_tokens=20)
    assert cut is not None and cut.kept == 0 and cut.cut == 1 and "What is the capital of Australia?" in cut.text
    # A zero budget leaves the earlier turns out: the request alone, said in a note.
    bare = conversation_task(big, max_tokens=0)
    assert bare is not None and bare.text == "And its population?" and bare.left_out == 1 and bare.note()


def test_the_opening_search_of_a_chat_turn_asks_its_questions_not_the_whole_conversation() -> None:
    turn = conversation_task([HumanMessage("Who wrote Hamlet?"), AIMessage("Shakespeare."),
                              HumanMessage("What is the capital of Australia?"), AIMessage("Canberra, a planned city."),
                              HumanMessage("And its population?")])
    assert turn is not None and search_query(turn.text) == "What is the capital of Australia? And its population?"
    assert search_query("What is the capital of Australia?") == "What is the capital of Australia?"


def test_token_estimate_is_four_characters_a_token_rounded_up() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_settings_of_the_conversation_and_the_per_turn_policy_are_checked_by_name() -> None:
    ctx = SaleContext()
    assert ctx.conversation_max_tokens == DEFAULT_CONVERSATION_MAX_TOKENS and ctx.auction_per == "turn"
    assert SaleContext(auction_per="thread", conversation_max_tokens=0).auction_per == "thread"
    with pytest.raises(ValueError, match="auction_per must be 'turn' or 'thread', got 'session'"):
        SaleContext(auction_per="session")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conversation_max_tokens must be 0 or more"):
        SaleContext(conversation_max_tokens=-1)
