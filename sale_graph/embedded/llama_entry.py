r"""Entry point of the embedded llama.cpp server processes (``python -m sale_graph.embedded.llama_entry``).

It registers one extra chat format and then runs llama-cpp-python's own server
``main``. ``sale-plain`` joins the messages' texts as plain text, with no chat
markup: the right prompt for a *base* model such as Gemma-3-270m, which
continues text rather than following chat turns. The prompts end with a cue
(``Plan:\n1.``, ``SCORE:``) that a base model continues naturally.

Both backends load the weights into plain CPU buffers (no extra buffer types: llama.cpp's
weight repacking and its AMX kernels). Those kernels die with SIGILL on virtual machines
whose CPUs advertise AMX but do not hand its tile registers to the guest (seen on a
Sapphire Rapids VM: the server exits with code -4 at its first matrix product); for models
of this size the repacking gains nothing worth that risk. llama-server takes
``--no-repack`` (see :mod:`.server`); llama-cpp-python's server has no such option, so
:func:`_plain_cpu_buffers` sets ``use_extra_bufts`` off in its model parameters.

``--exec PROGRAM ARGS...`` runs another server instead (llama.cpp's
``llama-server``): this process arranges to be killed with its parent, then
becomes ``PROGRAM`` (``execv`` keeps the arrangement).
"""

from __future__ import annotations

from typing import Any


def _register_plain_format() -> None:
    from llama_cpp import llama_chat_format as fmt

    @fmt.register_chat_format("sale-plain")
    def sale_plain(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        prompt = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("content"))
        return fmt.ChatFormatterResponse(prompt=prompt, stop=["\n\n\n", "\nTask:"])


def _plain_cpu_buffers() -> None:
    """Make llama-cpp-python load every model with ``use_extra_bufts`` off (see the module docstring)."""
    import llama_cpp.llama_cpp as native

    default = native.llama_model_default_params

    def plain_params() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    native.llama_model_default_params = plain_params


def _die_with_parent(kill: bool = False) -> None:
    """Exit with the process that started this server, even if it is killed without cleaning up.

    On Linux the kernel sends SIGTERM (SIGKILL with ``kill``) when the parent dies
    (``PR_SET_PDEATHSIG``); a parent that died before that was set is caught by
    comparing parent pids.
    """
    import os
    import signal
    import sys

    expected = os.environ.get("SALE_SERVER_PARENT_PID")
    if not expected or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL if kill else signal.SIGTERM)
    if os.getppid() != int(expected):
        raise SystemExit("the process that started this server is gone")


def main() -> None:
    """Register the extra chat format and run llama-cpp-python's OpenAI-compatible server (or ``--exec`` another)."""
    import os
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--exec":
        # SIGKILL: llama-server shuts down gracefully on SIGTERM, and a second signal during
        # that shutdown left it hung (in 2 of 3 test sessions whose `sale serve` was killed).
        _die_with_parent(kill=True)
        os.execv(sys.argv[2], sys.argv[2:])
    _die_with_parent()
    _register_plain_format()
    _plain_cpu_buffers()
    from llama_cpp.server.__main__ import main as server_main

    server_main()


if __name__ == "__main__":
    main()
