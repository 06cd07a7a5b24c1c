"""The task of a chat turn: the conversation, not the last line.

A follow-up such as "And its population?" means nothing on its own: its subject is in
the earlier turns. :func:`conversation_task` turns a chat's messages into the
auction's task text for the turn: the latest human message, whole and marked as the
request, after the earlier turns condensed to a budget of tokens
(``SaleContext.conversation_max_tokens``). The bidders, the jury, the refinement's
retrieval and the memory all read that one text, so a stored task is self-contained
and retrieval compares conversations with conversations.

The rule (docs/method.md states it too)::

    Conversation:
    User: What is the capital of Australia?
    Assistant (called web_search): The capital of Australia is Canberra.
    Request: And its population?

* the request is the last human message, whole, after ``Request:``; messages after it
  are not part of the task;
* one turn is a human message and what followed it up to the next human message,
  written ``User: ...`` and, when the assistant answered in text, ``Assistant: ...``;
  its tool calls are summarised as the tools' names, and tool results, system
  messages and reasoning (``<think>`` blocks) are dropped;
* the earlier turns get at most ``max_tokens`` tokens, counted with
  :func:`estimate_tokens` (about 4 characters a token, the estimate the ledger uses
  when an endpoint reports no usage; no tokenizer is needed): the most recent turns
  are kept whole, the first turn that no longer fits is cut to what is left of the
  budget (its user line comes first, so it is kept longest), and older turns are left
  out, their number said in the header (``Conversation (3 older turns left out):``).
  The request is never cut and does not count against the budget;
* with no earlier turn (a one-shot task), or ``max_tokens=0``, the task is the
  request's text alone, unchanged.

The labels are short on purpose: every stored conversation task shares them, and with
the default embedder long shared labels lifted unrelated conversations above the
memory's retrieval floor (0.88).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from sale_graph.llm.reasoning import strip_think

CHARS_PER_TOKEN = 4
"""The token estimate: one token per 4 characters, rounded up (no tokenizer is available offline)."""

DEFAULT_CONVERSATION_MAX_TOKENS = 512
"""The default budget of the earlier turns (``SaleContext.conversation_max_tokens``)."""

EARLIER_HEADER = "Conversation{left_out}:"
REQUEST_LABEL = "Request:"
"""The labels of a conversation task: short, because every stored conversation task shares them, and long
shared boilerplate pulls unrelated conversations above the memory's retrieval floor."""
CUT_MARK = " [...]"
MIN_CUT_TOKENS = 9
"""A turn that does not fit is cut only when at least this many tokens of the budget are left; else it is left out."""

_USER_ROLES = ("human", "user")
_AI_ROLES = ("ai", "assistant")
_TOOL_ROLES = ("tool", "function")


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` by the documented estimate: ``ceil(len(text) / 4)``."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ConversationTask:
    """The task text of one chat turn and how its conversation was condensed.

    Attributes:
        text: the auction's task text (the request alone when there is no earlier turn).
        request: the latest human message's text, whole.
        earlier_turns: how many turns came before the request.
        kept: earlier turns written whole.
        cut: earlier turns cut to fit the budget (0 or 1).
        left_out: older turns left out.
        max_tokens: the budget of the earlier turns.
    """

    text: str
    request: str
    earlier_turns: int = 0
    kept: int = 0
    cut: int = 0
    left_out: int = 0
    max_tokens: int = DEFAULT_CONVERSATION_MAX_TOKENS

    @property
    def condensed(self) -> bool:
        """Whether some of the conversation was cut or left out to fit the budget."""
        return bool(self.cut or self.left_out)

    def note(self) -> str | None:
        """The run note that says how the conversation was condensed (``None`` when nothing was)."""
        if not self.condensed:
            return None
        return (f"conversation condensed: the request's {self.earlier_turns} earlier turn(s) exceed "
                f"conversation_max_tokens={self.max_tokens} (estimated at {CHARS_PER_TOKEN} characters a token): "
                f"{self.kept} kept whole, {self.cut} cut, {self.left_out} left out")


@dataclass
class _Turn:
    user: str = ""
    replies: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"User: {self.user}"] if self.user else []
        reply = "\n".join(self.replies)
        tools = ", ".join(dict.fromkeys(self.tools))
        if reply or tools:
            called = f" (called {tools})" if tools else ""
            lines.append(f"Assistant{called}:" + (f" {reply}" if reply else ""))
        return "\n".join(lines)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def _role_text_tools(message: Any) -> tuple[str, str, list[str]]:
    """(role, visible text, names of the tools it called) of a message object, a JSON message or a (role, text) pair."""
    if isinstance(message, BaseMessage):
        if isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage):
            role = "assistant"
        elif isinstance(message, ToolMessage):
            role = "tool"
        elif isinstance(message, SystemMessage):
            role = "system"
        else:
            role = message.type
        calls = [str(c.get("name") or "") for c in getattr(message, "tool_calls", None) or []]
        return role, _content_text(message.content), [c for c in calls if c]
    if isinstance(message, Mapping):
        role = str(message.get("role") or message.get("type") or "")
        calls = [str((c.get("function") or c).get("name") or "") for c in message.get("tool_calls") or []
                 if isinstance(c, Mapping)]
        return role, _content_text(message.get("content")), [c for c in calls if c]
    if isinstance(message, (tuple, list)) and len(message) == 2:
        return str(message[0]), _content_text(message[1]), []
    return "", "", []


def _normalised(role: str) -> str:
    if role in _USER_ROLES:
        return "user"
    if role in _AI_ROLES:
        return "assistant"
    if role in _TOOL_ROLES:
        return "tool"
    return "other"


def _split(messages: Sequence[Any]) -> tuple[str | None, list[_Turn]]:
    """The latest human message's text and the turns before it."""
    parsed = [(_normalised(role), text, tools) for role, text, tools in map(_role_text_tools, messages)]
    last = max((i for i, (role, _, _) in enumerate(parsed) if role == "user"), default=None)
    if last is None:
        return None, []
    turns: list[_Turn] = []
    for role, text, tools in parsed[:last]:
        if role == "user":
            turns.append(_Turn(user=text.strip()))
            continue
        if role != "assistant":  # tool results, system prompts: not part of the task
            continue
        if not turns:
            turns.append(_Turn())
        visible = strip_think(text)[0]
        if visible:
            turns[-1].replies.append(visible)
        turns[-1].tools.extend(tools)
    return parsed[last][1], [t for t in turns if t.render()]


def _cut(text: str, tokens: int) -> str:
    """``text`` cut to about ``tokens`` tokens, at a word boundary where one is near, marked with :data:`CUT_MARK`."""
    room = max(0, tokens * CHARS_PER_TOKEN - len(CUT_MARK))
    head = text[:room]
    space = head.rfind(" ")
    if space > room * 3 // 4:
        head = head[:space]
    return head.rstrip() + CUT_MARK


def conversation_task(messages: Sequence[Any] | None, max_tokens: int = DEFAULT_CONVERSATION_MAX_TOKENS) -> ConversationTask | None:
    """The auction's task for the chat turn that ends ``messages`` (see the module docstring for the rule).

    Args:
        messages: the chat's messages, oldest first: LangChain messages, JSON messages
            (``{"role": "user", "content": ...}``) or ``(role, text)`` pairs.
        max_tokens: the budget of the earlier turns, in estimated tokens; 0 leaves them out.

    Returns:
        The task, or ``None`` when ``messages`` holds no human message with text.
    """
    request, turns = _split(list(messages or []))
    if request is None or not request.strip():
        return None
    if not turns or max_tokens <= 0:
        return ConversationTask(text=request, request=request, earlier_turns=len(turns),
                                left_out=len(turns), max_tokens=max_tokens)
    remaining, written, cut = max_tokens, [], 0
    for turn in reversed(turns):
        block = turn.render()
        cost = estimate_tokens(block + "\n")
        if cost <= remaining:
            written.append(block)
            remaining -= cost
            continue
        if remaining >= MIN_CUT_TOKENS:
            written.append(_cut(block, remaining - 1))
            cut = 1
        break
    kept = len(written) - cut
    left_out = len(turns) - len(written)
    if not written:
        return ConversationTask(text=request, request=request, earlier_turns=len(turns), left_out=left_out,
                                max_tokens=max_tokens)
    omitted = f" ({left_out} older turn{'s' if left_out != 1 else ''} left out)" if left_out else ""
    text = "\n".join([EARLIER_HEADER.format(left_out=omitted), *reversed(written), f"{REQUEST_LABEL} {request}"])
    return ConversationTask(text=text, request=request, earlier_turns=len(turns), kept=kept, cut=cut,
                            left_out=left_out, max_tokens=max_tokens)


def search_query(task: str) -> str:
    """A web-search query for a task: for a conversation task, its last earlier user line and the request.

    The executor's opening search (``search_first``) would otherwise send the whole
    conversation, assistant answers included, to the search backend. "What is the
    capital of Australia?" then "And its population?" searches for both questions;
    any other task is searched as it is.
    """
    lines = task.split("\n")
    if not lines or not lines[0].startswith(EARLIER_HEADER.split("{", 1)[0]):
        return task
    request = next((i for i in range(len(lines) - 1, 0, -1) if lines[i].startswith(f"{REQUEST_LABEL} ")), None)
    if request is None:
        return task
    users = [line.removeprefix("User: ") for line in lines[1:request] if line.startswith("User: ")]
    asked = "\n".join(lines[request:]).removeprefix(f"{REQUEST_LABEL} ")
    return " ".join([*users[-1:], asked])


__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_CONVERSATION_MAX_TOKENS",
    "ConversationTask",
    "conversation_task",
    "estimate_tokens",
    "search_query",
]
