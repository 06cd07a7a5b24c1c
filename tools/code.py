"""Code tools for the executor agent and the coding-task check.

``run_python(code)`` and ``run_tests(code, tests)`` are LangChain tools that run
model-written code in a :class:`~sale_graph.tools.sandbox.Sandbox` and return the result
as text. :func:`check_solution` is the grader: it marks a coding task passed or
failed with the failing test's message. :func:`extract_code` pulls the final
code out of a model answer.
"""

from __future__ import annotations

import ast
import inspect
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from sale_graph.tools.sandbox import Sandbox, SandboxLimits, SandboxResult, default_sandbox

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", ""}


def extract_code(text: str) -> str:
    """The final code in a model answer: the last ```python (or untagged) block, else the whole text.

    Models wrap code in prose and fences; graders and tools need the bare code.
    An unclosed last fence (a cut-off answer) counts as a block.

    Args:
        text: The model's answer.

    Returns:
        The code, without fences or surrounding blank lines.
    """
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text)]
    python_blocks = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    if python_blocks:
        return python_blocks[-1].strip("\n")
    return text.strip()


def last_function_name(code: str) -> str | None:
    """Name of the last top-level function defined in ``code`` (None if none or unparsable).

    Args:
        code: Python source.

    Returns:
        The function's name, or None.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    names = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return names[-1] if names else None


def _defines_check(tests: str) -> bool:
    return re.search(r"^def check\s*\(", tests, re.MULTILINE) is not None


def _calls_check(tests: str) -> bool:
    return re.search(r"^check\s*\(", tests, re.MULTILINE) is not None


def build_test_program(code: str, tests: str, entry_point: str | None, sentinel: str) -> str:
    """Candidate code, then the tests, then the call that runs them, then a sentinel print.

    Supports HumanEval-style tests (``def check(candidate)`` called with the
    entry point), MBPP-style top-level asserts, and ``unittest.TestCase``
    classes. The sentinel proves the tests ran to the end (an early
    ``sys.exit(0)`` in the candidate does not count as a pass).

    Args:
        code: The candidate solution.
        tests: The test code.
        entry_point: The function ``check(candidate)`` is called with; None means
            the last top-level function in ``code``.
        sentinel: The text printed once the tests have passed.

    Returns:
        The program to run in the sandbox.

    Raises:
        ValueError: The tests define ``check`` but there is no function to pass to it.
    """
    parts = [code.rstrip(), "", tests.rstrip(), ""]
    if _defines_check(tests) and not _calls_check(tests):
        target = entry_point or last_function_name(code)
        if target is None:
            raise ValueError(
                "tests define check(candidate) but no entry_point was given and the code defines no "
                "top-level function; pass entry_point (the function name to test)"
            )
        parts.append(f"check({target})")
    if "unittest" in tests and "unittest.main(" not in tests:
        parts.append("import unittest as _ut\n_r = _ut.main(exit=False, argv=['tests']).result")
        parts.append("if not _r.wasSuccessful():\n    raise SystemExit(1)")
    parts.append(f"print({sentinel!r})")
    return "\n".join(parts) + "\n"


_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$')


def failure_message(result: SandboxResult, sentinel_seen: bool) -> str:
    """One line saying why a check failed: the exception with the failing source line, or the limit.

    Examples: ``AssertionError (line 9: assert candidate(2, 3) == 6)``,
    ``limit hit: wall_time``.

    Args:
        result: The sandboxed run of the test program.
        sentinel_seen: Whether the program printed its sentinel (the tests ran to the end).

    Returns:
        The reason, or "" when nothing failed.
    """
    if result.limit_hit not in (None, "output"):
        return f"limit hit: {result.limit_hit} (exit code {result.exit_code})"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code != 0 and lines:
        exc_line = lines[-1].strip()
        where = _last_frame(lines)
        return f"{exc_line} ({where})" if where else exc_line
    if result.exit_code != 0:
        return f"exit code {result.exit_code} with no error output"
    if not sentinel_seen:
        return "the program exited before the tests finished (early exit in the code?)"
    return ""


def _last_frame(lines: list[str]) -> str | None:
    """'line N: <source>' for the innermost traceback frame, if the traceback shows one."""
    for i in range(len(lines) - 1, -1, -1):
        match = _FRAME.match(lines[i])
        if match:
            source = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.match(lines[i + 1]) else ""
            if source.startswith(("^", "~")) or source == lines[-1].strip():
                source = ""
            return f"line {match.group(2)}: {source}" if source else f"line {match.group(2)}"
    return None


@dataclass
class CodeCheck:
    """Outcome of checking a candidate solution against its tests.

    Attributes:
        passed: Whether the task is solved.
        message: Why it failed ("" when passed).
        result: The sandboxed run (sentinel removed from stdout).
    """

    passed: bool
    message: str  # why it failed ("" when passed)
    result: SandboxResult


class _LazySandbox:
    """Resolves the default sandbox on first use, so importing this module probes nothing.

    Without working bubblewrap and without an opt-in into the rlimits backend,
    :meth:`get` raises :class:`~sale_graph.tools.sandbox.SandboxUnavailableError`
    on every call: model code never runs on a weaker backend by accident.
    """

    def __init__(self, sandbox: Sandbox | None, backend: str | None = None) -> None:
        self._sandbox = sandbox
        self._backend = backend
        self._lock = threading.Lock()

    def get(self) -> Sandbox:
        with self._lock:
            if self._sandbox is None:
                self._sandbox = default_sandbox(backend=self._backend)
            return self._sandbox


_DEFAULT = _LazySandbox(None)


def check_solution(
    code: str,
    tests: str,
    entry_point: str | None = None,
    sandbox: Sandbox | None = None,
    limits: SandboxLimits | None = None,
) -> CodeCheck:
    """Run ``tests`` against ``code`` in the sandbox and say whether the task is solved.

    Passed means: exit status 0, no limit stopped the run, and the sentinel
    printed after the tests was reached. Otherwise ``message`` holds the failing
    assertion / exception (with its source line) or the limit that stopped it.

    Args:
        code: The candidate solution.
        tests: Assert-style tests, a ``check(candidate)`` function or ``unittest`` cases.
        entry_point: The function to test with ``check``; None means the last one in ``code``.
        sandbox: Where to run; None means :func:`~sale_graph.tools.sandbox.default_sandbox`.
        limits: Resource limits; None means the sandbox's defaults.

    Returns:
        The verdict, the failure message and the run.

    Raises:
        ValueError: ``code`` or ``tests`` is empty, or no entry point can be found.
        SandboxUnavailableError: ``sandbox`` is None, bubblewrap does not work here and
            ``SALE_SANDBOX=rlimits`` was not set.
    """
    if not code.strip():
        raise ValueError("check_solution: code is empty; pass the candidate solution's source")
    if not tests.strip():
        raise ValueError("check_solution: tests are empty; pass assert-style tests or a check(candidate) function")
    sentinel = f"__TESTS_PASSED_{secrets.token_hex(8)}__"
    program = build_test_program(code, tests, entry_point, sentinel)
    result = (sandbox or _DEFAULT.get()).run(program, limits=limits)
    sentinel_seen = sentinel in result.stdout
    passed = result.ok and sentinel_seen
    result.stdout = result.stdout.replace(sentinel + "\n", "").replace(sentinel, "")
    return CodeCheck(passed=passed, message="" if passed else failure_message(result, sentinel_seen), result=result)


def make_code_tools(sandbox: Sandbox | None = None, backend: str | None = None) -> list[BaseTool]:
    """The executor's code tools (``run_python``, ``run_tests``) bound to ``sandbox``.

    ``None`` means :func:`~sale_graph.tools.sandbox.default_sandbox`, chosen on first
    use: bubblewrap, or the rlimits backend only when opted into (``backend="rlimits"``
    or ``SALE_SANDBOX=rlimits``); otherwise the tools raise
    :class:`~sale_graph.tools.sandbox.SandboxUnavailableError` instead of running code.
    Pass your own :class:`~sale_graph.tools.sandbox.Sandbox` (container, e2b, ...) to
    change isolation without touching the agent.

    Args:
        sandbox: Where the tools run code; None means the default sandbox, chosen on first use.
        backend: The default sandbox's backend (``"bubblewrap"``, ``"rlimits"``, ``"auto"``);
            None reads ``SALE_SANDBOX``. Ignored when ``sandbox`` is given.

    Returns:
        The ``run_python`` and ``run_tests`` tools.
    """
    lazy = _LazySandbox(sandbox, backend)

    def run_python(code: str) -> str:
        """Run a Python 3 program in an isolated sandbox and return its exit code, stdout and stderr.

        Use it to try code, compute values or debug. The program runs as a
        script in a fresh empty directory with no network, no secrets and
        limits of about 10 s wall time, 512 MiB memory and 64 KiB output per
        stream; print what you want to see. Markdown ```python fences are
        stripped.
        """
        return lazy.get().run(extract_code(code)).to_text()

    def run_tests(code: str, tests: str) -> str:
        """Run test code against your solution in an isolated sandbox; report PASSED or FAILED with the failing test.

        `code` is the full solution (functions, imports). `tests` is either
        assert statements (e.g. `assert add(2, 3) == 5`) or a
        `def check(candidate): ...` function, which is called with the last
        top-level function defined in `code`. Returns PASSED, or FAILED with
        the failing assertion, followed by the program's output.
        """
        try:
            check = check_solution(extract_code(code), extract_code(tests), sandbox=lazy.get())
        except ValueError as exc:  # bad arguments: tell the model what to fix
            raise ToolException(f"run_tests: {exc}") from exc
        verdict = "PASSED" if check.passed else f"FAILED: {check.message}"
        return f"{verdict}\n{check.result.to_text()}"

    return [_as_tool(run_python), _as_tool(run_tests)]


def _as_tool(func: Callable[..., str]) -> BaseTool:
    return StructuredTool.from_function(
        func=func,
        name=func.__name__,
        description=inspect.cleandoc(func.__doc__ or ""),
        handle_tool_error=True,  # a ToolException's message goes back to the model as the result
    )


#: Module-level tools on the default sandbox (resolved on first call).
run_python, run_tests = make_code_tools()

__all__ = [
    "CodeCheck",
    "build_test_program",
    "check_solution",
    "extract_code",
    "failure_message",
    "last_function_name",
    "make_code_tools",
    "run_python",
    "run_tests",
]
