"""Requests built from a template are the openai SDK's own, field by field (method, URL, headers in order, body, extensions)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai._base_client import FinalRequestOptions, make_request_options

from sale_graph.llm.request_template import TemplatedBuild, template_requests


def _options(body: dict[str, Any], **kw: Any) -> FinalRequestOptions:
    extra = make_request_options(extra_headers=kw.pop("extra_headers", None), extra_body=kw.pop("extra_body", None),
                                 timeout=kw.pop("timeout", openai.NOT_GIVEN), security={"bearer_auth": True})
    return FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body, **extra, **kw)


def _same(a: Any, b: Any) -> None:
    assert a.method == b.method
    assert str(a.url) == str(b.url)
    assert a.headers.raw == b.headers.raw  # names, values and order
    assert a.content == b.content
    assert a.extensions == b.extensions


BODIES = [
    {"messages": [{"role": "user", "content": "hi"}], "model": "m", "max_tokens": 5},
    {"messages": [{"role": "user", "content": "a longer question, with ünïcödé"}], "model": "m", "max_tokens": 50,
     "temperature": 0.3, "logprobs": True, "top_logprobs": 5},
    {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x" * 5000}], "model": "m"},
]


@pytest.mark.parametrize("client_type", [openai.OpenAI, openai.AsyncOpenAI])
def test_templated_requests_equal_the_sdks_own(client_type: type) -> None:
    kwargs = {"api_key": "sk-test", "base_url": "http://127.0.0.1:9/v1", "default_headers": {"X-Team": "router"}}
    plain = client_type(**kwargs)
    templated = template_requests(client_type(**kwargs))
    templated._platform = plain._platform = None
    build = templated.__dict__["_build_request"]
    assert isinstance(build, TemplatedBuild)
    cases = [
        (BODIES[0], {}, 0),
        (BODIES[1], {}, 0),
        (BODIES[2], {}, 0),
        (BODIES[1], {}, 1),  # the retry count header differs: its own template
        (BODIES[0], {"timeout": 7.5}, 0),  # the read-timeout header and the extensions differ
        (BODIES[2], {"extra_headers": {"X-Call": "1"}}, 0),
        (BODIES[0], {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}, 0),
        (BODIES[2], {"extra_body": {"messages": [{"role": "user", "content": "moved"}]}}, 2),
    ]
    for _ in range(2):  # the first round makes the templates, the second is built from them
        for body, kw, retries in cases:
            _same(build(_options(body, **kw), retries_taken=retries), plain._build_request(_options(body, **kw), retries_taken=retries))
    assert build.built >= len(cases)


def test_a_changed_api_key_makes_a_new_template() -> None:
    client = template_requests(openai.OpenAI(api_key="sk-one", base_url="http://127.0.0.1:9/v1"))
    build = client.__dict__["_build_request"]
    build(_options(BODIES[0]))
    client.api_key = "sk-two"
    request = build(_options(BODIES[0]))
    assert request.headers["authorization"] == "Bearer sk-two"


def test_requests_a_template_cannot_stand_for_are_the_sdks() -> None:
    client = template_requests(openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1"))
    build = client.__dict__["_build_request"]
    get = FinalRequestOptions.construct(method="get", url="/models")
    with_query = _options(BODIES[0], params={"api-version": "1"})
    for options in (get, with_query, get, with_query):
        build(options)
    assert build.built == 0
    assert "api-version=1" in str(build(with_query).url)


def test_template_requests_is_idempotent() -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")
    first = template_requests(client).__dict__["_build_request"]
    assert template_requests(client).__dict__["_build_request"] is first
