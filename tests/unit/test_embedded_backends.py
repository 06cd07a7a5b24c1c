"""Which server backend the embedded pool runs on, and what each one is told (no server started here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sale_graph.cli import main
from sale_graph.embedded import models as em
from sale_graph.embedded import server as es
from sale_graph.embedded.models import EmbeddedModel, default_backend, embedded_models, embedded_pool, server_slots
from sale_graph.errors import ServerError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No backend, binary or slot setting from the environment; no llama-server installed or on PATH."""
    for name in (em.BACKEND_ENV, em.LLAMA_SERVER_ENV, em.SLOTS_ENV, em.PORT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(em, "_packaged_llama_server", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    return monkeypatch


def _fake_binary(tmp_path: Path, name: str = "llama-server") -> Path:
    binary = tmp_path / name
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return binary


def test_auto_falls_back_to_llama_cpp_python_when_no_llama_server_is_installed(clean_env: pytest.MonkeyPatch) -> None:
    assert em.find_llama_server() is None
    assert default_backend() == "llama-cpp-python"
    pool = embedded_pool()
    assert [a.max_concurrency for a in pool.agents] == [1, 1]
    assert {a.structured_output for a in pool.agents} == {"json_object"}
    assert pool.source == "embedded pool (llama-cpp-python, 1 slot)"


def test_auto_prefers_an_installed_llama_server(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_binary(bindir)
    clean_env.setenv("PATH", str(bindir))
    assert em.find_llama_server() == bindir / "llama-server"
    assert default_backend() == "llama-server"
    pool = embedded_pool()
    assert [a.max_concurrency for a in pool.agents] == [em.LLAMA_SERVER_SLOTS] * 2
    assert {a.structured_output for a in pool.agents} == {"json_schema"}
    assert pool.source == f"embedded pool (llama-server, {em.LLAMA_SERVER_SLOTS} slots)"


def test_the_packaged_binary_comes_before_path(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    packaged = _fake_binary(tmp_path, "packaged-llama-server")
    clean_env.setattr(em, "_packaged_llama_server", lambda: packaged)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_binary(bindir)
    clean_env.setenv("PATH", str(bindir))
    assert em.find_llama_server() == packaged


def test_an_explicit_backend_wins_over_auto(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv(em.LLAMA_SERVER_ENV, str(_fake_binary(tmp_path)))
    clean_env.setenv(em.BACKEND_ENV, "llama-cpp-python")
    assert default_backend() == "llama-cpp-python"
    clean_env.setenv(em.BACKEND_ENV, "llama-server")
    assert default_backend() == "llama-server"


def test_an_unknown_backend_names_the_choices(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(em.BACKEND_ENV, "ollama")
    with pytest.raises(ServerError, match=r"SALE_EMBEDDED_BACKEND='ollama'.*auto, llama-server, llama-cpp-python"):
        default_backend()
    with pytest.raises(ServerError, match="unknown embedded backend 'vllm'"):
        embedded_models("vllm")  # type: ignore[arg-type]


def test_a_configured_binary_that_is_not_executable_is_an_error_not_a_fallback(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    not_exec = tmp_path / "llama-server"
    not_exec.write_text("")
    clean_env.setenv(em.LLAMA_SERVER_ENV, str(not_exec))
    with pytest.raises(ServerError, match="SALE_LLAMA_SERVER=.*is not an executable file"):
        default_backend()


def test_asking_for_llama_server_without_it_says_how_to_install_it(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ServerError, match=r"install the extra .*llama-server.*SALE_LLAMA_SERVER"):
        em.llama_server_binary()


def test_slots_come_from_the_argument_then_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert server_slots() == em.LLAMA_SERVER_SLOTS
    clean_env.setenv(em.SLOTS_ENV, "4")
    assert server_slots() == 4
    assert server_slots(3) == 3
    models = embedded_models("llama-server")
    assert [m.slots for m in models] == [4, 4]
    assert [a.max_concurrency for a in embedded_pool("llama-server").agents] == [4, 4]
    assert [m.slots for m in embedded_models("llama-cpp-python")] == [1, 1]  # one request at a time, whatever is set


@pytest.mark.parametrize(("raw", "message"), [("two", "not a whole number"), ("0", "outside 1-64"), ("65", "outside 1-64")])
def test_bad_slot_settings_are_errors(clean_env: pytest.MonkeyPatch, raw: str, message: str) -> None:
    clean_env.setenv(em.SLOTS_ENV, raw)
    with pytest.raises(ServerError, match=f"SALE_EMBEDDED_SLOTS=.*{message}"):
        embedded_models("llama-server")
    with pytest.raises(ServerError, match="parallel=0 is outside"):
        EmbeddedModel("m", 9000, 1.0, 1.0, None, False, backend="llama-server", parallel=0)


def test_llama_server_command_line(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("SALE_HOME", str(tmp_path / "home"))
    clean_env.setattr(es, "llama_server_binary", lambda: Path("/opt/llama-server"))
    clean_env.setattr(es, "model_path", lambda alias: Path(f"/models/{alias}.gguf"))
    smol, gemma = embedded_models("llama-server", 3)
    args = es._llama_server_args(smol)
    assert args[0] == "/opt/llama-server"

    def value(flag: str, argv: list[str]) -> str:
        return argv[argv.index(flag) + 1]

    assert value("--parallel", args) == "3"
    assert value("--ctx-size", args) == str(smol.n_ctx * 3)  # each slot keeps the model's whole context
    assert value("--threads", args) == value("--threads-batch", args) == "1"  # one core per model server
    assert value("--host", args) == "127.0.0.1" and value("--port", args) == str(smol.port)
    assert value("--alias", args) == "smollm2-135m" and "--chat-template-file" not in args  # its own template
    gemma_args = es._llama_server_args(gemma)
    template = Path(value("--chat-template-file", gemma_args))
    assert template.read_text() == es.PLAIN_TEMPLATE  # the base model gets plain text, no chat markup
    command = es._command(gemma)
    assert command[:4] == [sys.executable, "-m", "sale_graph.embedded.llama_entry", "--exec"]  # dies with its parent


def test_the_base_model_stops_where_its_plain_format_stops() -> None:
    smol, gemma = embedded_pool("llama-server").agents
    assert "stop" not in smol.extra_body
    assert gemma.extra_body["stop"] == ["\nTask:", "\nObservation:"]
    assert "stop" not in embedded_pool("llama-cpp-python").agents[1].extra_body  # that server's format adds them itself


def test_serve_rejects_bad_slots_before_starting_anything(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setattr(es.EmbeddedServer, "start", lambda self: pytest.fail("no server may start"))
    assert main(["serve", "--backend", "llama-server", "--slots", "0"]) == 2
    assert "slots=0 is outside 1-64" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--backend", "ollama"])


@pytest.mark.parametrize(("running", "label", "note"), [
    (("llama-server", 3), "llama-server, 3 slots per model", False),
    (("llama-server", None), "llama-server, 2 slots per model", True),
    (("llama-cpp-python", None), "llama-cpp-python, 1 slot per model", False),
])
def test_sale_run_adopts_running_servers_and_says_when_their_slots_are_unknown(
    clean_env: pytest.MonkeyPatch, running: tuple[str, int | None], label: str, note: bool,
) -> None:
    from rich.console import Console

    from sale_graph.cli import embedded as cli

    clean_env.setattr(cli, "running_setup", lambda: running)
    err = Console(record=True, width=200)
    models = cli.embedded_models_for_run(err)
    text = err.export_text()
    assert f"using the embedded servers already running ({label})" in text
    assert ("did not give one slot count; max_concurrency 2 assumed" in text) is note
    assert models[0].backend == running[0]
