"""Instructions per request, counted by valgrind's callgrind: a sign-up POST and the
hello-world ceiling, through the whole middleware stack, in one process.

    python -m bench.instructions [--requests 200]

Wall-clock figures on a shared 2-core machine move by ±5 % from run to run;
instruction counts do not (two runs of the same code agree within 0.3 %), so this is
how a change to the request path is judged. Each view is run twice under callgrind,
with 20 and with 20 + `--requests` requests, and the difference divided by
`--requests`, so start-up is not counted. Only the web process is counted, not Redis.

As under load: a drain of the intake is under way (no sign-up asks for another), and
the sign-up page is reused as a busy process reuses it (callgrind runs about 50 times
slower, which would otherwise make every POST re-check the page in PostgreSQL).
Needs valgrind (Debian package `valgrind`). Prints one JSON line.
"""

import argparse
import io
import json
import os
import re
import subprocess
import sys
from typing import Any, cast
from urllib.parse import quote

from bench.server import PYTHON, ROOT, prepare_database
from bench.signup import FORM_PATH, unlimited_signup_env

DATABASE = "tidings_bench_instructions"
REDIS_DB = 15
WARM_UP = 5
BASE_REQUESTS = 20
ORIGIN = "http://127.0.0.1:8000"


def _environ(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    host, port = ORIGIN.removeprefix("http://").split(":")
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": host, "SERVER_PORT": port, "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": f"{host}:{port}", "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
        **headers,
    }  # fmt: skip


def _child(view: str, count: int) -> None:
    """Serve `count` requests of `view` in this process (run under callgrind)."""
    app = _app_as_under_load()
    stamp = _form_stamp(app)
    prefix = f"instructions-{os.getpid()}"
    for i in range(WARM_UP + count):
        _serve_one(app, view, stamp, prefix, i)


def _app_as_under_load() -> Any:
    """The WSGI app, with a drain of the intake under way and the sign-up page reused."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    from subscriptions.redis_client import redis_client
    from subscriptions.services.signup import stream
    from subscriptions.views import signup

    app = get_wsgi_application()
    signup.POST_REUSES_PAGE_SECONDS = float("inf")
    redis_client().set(stream.DRAIN_FLAG, "1", ex=3600)
    return app


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    """One request through `app`: its status line and body."""
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"] = status

    body = b"".join(app(environ, cast(Any, start_response)))
    return answer["status"], body


def _form_stamp(app: Any) -> "re.Match[bytes]":
    """GET the sign-up form once; every POST reuses its stamp."""
    status, page = _call(app, _environ("GET", FORM_PATH))
    stamp = re.search(rb'name="stamp" value="([^"]+)"', page)
    if not status.startswith("200") or stamp is None:
        raise RuntimeError(f"could not read the sign-up form: {status}")
    return stamp


def _serve_one(app: Any, view: str, stamp: "re.Match[bytes]", prefix: str, i: int) -> None:
    if view == "hello":
        environ = _environ("GET", "/bench/hello/")
        expected = "200"
    else:
        body = f"stamp={quote(stamp.group(1).decode())}&email={prefix}-{i}%40example.com"
        body += "&first_name=Sam&consent=on&website="
        environ = _environ(
            "POST", FORM_PATH, body.encode(), CONTENT_TYPE="application/x-www-form-urlencoded", HTTP_ORIGIN=ORIGIN
        )
        expected = "302"
    answer, content = _call(app, environ)
    if not answer.startswith(expected):
        raise RuntimeError(f"{view}: {answer} {content[:200]!r}")


def _instructions(env: dict[str, str], view: str, count: int) -> int:
    """Instructions callgrind counted for a process serving `count` requests."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         PYTHON, "-m", "bench.instructions", "--child", view, "--requests", str(count)],
        cwd=ROOT, env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total: {result.stderr[-500:]}")
    return int(found.group(1))


def run(requests: int) -> dict[str, object]:
    env = unlimited_signup_env(database=DATABASE, redis_db=REDIS_DB)
    prepare_database(env, DATABASE)
    per_request = {}
    for view in ("signup", "hello"):
        few = _instructions(env, view, BASE_REQUESTS)
        many = _instructions(env, view, BASE_REQUESTS + requests)
        per_request[view] = round((many - few) / requests)
    ratio = round(per_request["hello"] / per_request["signup"], 3)
    return {"bench": "instructions", "requests": requests, **per_request, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--child", choices=["signup", "hello"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.requests)
        return
    print(json.dumps(run(args.requests)))


if __name__ == "__main__":
    main()
