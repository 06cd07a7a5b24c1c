"""The ``sale`` command line's parser, whose errors are one line, and argument types that check values.

A mistake on the command line (an unknown option, a count of 0, a Chroma URL that is
no URL) is one line on stderr naming the option, and exit code 2, as for every other
user error of ``sale`` and ``sale bench`` (:func:`sale_graph.cli.commands.main`). The
``sale bench`` sub-commands are made by this parser too (``add_subparsers`` makes them
of its class); their count type lives with them (:mod:`sale_graph.bench.cli.args`),
since that package cannot import this one (``sale`` registers the bench's commands).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn
from urllib.parse import urlparse

from sale_graph.bench.cli.args import positive_int  # a count of at least 1, shared with `sale bench`

#: Exit code of every user error: a bad option, input file, setting or endpoint.
USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``sale run: error: ...``) and exit code 2.

    The sub-parsers of one made by ``add_subparsers`` are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message> (see <prog> --help)`` on stderr and exit with code 2."""
        line = " ".join(f"{self.prog}: error: {message}".split())
        print(f"{line} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(USER_ERROR)


def http_url(text: str) -> str:
    """An argument type: an ``http://host[:port]`` or ``https://...`` URL (a Chroma server, an endpoint)."""
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: expected http://HOST:PORT (or https://...)")
    try:
        parsed.port  # noqa: B018 - reading it checks it: a port that is no number raises ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has a bad port: expected http://HOST:PORT") from None
    return text


__all__ = ["USER_ERROR", "OneLineParser", "http_url", "positive_int"]
