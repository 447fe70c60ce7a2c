"""nginx in front of gunicorn: it holds every client connection, so no client reaches a worker.

gunicorn's sync workers serve one connection each, with blocking reads and writes; idle
connections, clients that send a byte at a time and clients that never read their answer each
hold a worker (measured: two idle connections kept /ping from answering for 28 s). nginx, which
is event driven, reads each request whole (`proxy_request_buffering`) before it hands it to a
worker over a unix socket, and takes each answer whole (`proxy_buffering`, to a file when large)
before it sends it on, so a worker only ever talks to nginx, at memory speed. Every read and
write on a client has a deadline (`client_header_timeout`, `client_body_timeout`,
`send_timeout`); a body over the limit is refused with 413 before any `100 Continue`; clients
may keep their connections alive. `/ping` goes to the health responder in gunicorn's master
(`health.py`), never to a worker. nginx's own refusals are JSON sentences like the app's.

The binary is Debian's (`apt-get install nginx` in the image; `make install` puts the same
package's binary into `.venv/` for `./serve` from a checkout: scripts/nginx.sh).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from container.errors import ContainerError
from container.serving.payload import too_large_sentence
from container.settings import ServingSettings

UPSTREAM_SOCKET = "gunicorn.sock"
HEALTH_SOCKET = "health.sock"

PING_TIMEOUT_S = 1
"""How long nginx waits for the health responder; SageMaker gives /ping 2 s."""

_NGINX_CANDIDATES = ("/usr/sbin/nginx",)


@dataclass(frozen=True)
class RunDir:
    """The private folder of one `serve`: nginx's configuration and buffers, the sockets."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "nginx.conf"

    @property
    def upstream(self) -> Path:
        return self.path / UPSTREAM_SOCKET

    @property
    def health(self) -> Path:
        return self.path / HEALTH_SOCKET


def find_nginx() -> str:
    """The nginx binary: on PATH (a checkout's `.venv/bin`), else Debian's /usr/sbin/nginx."""
    found = shutil.which("nginx") or next(
        (path for path in _NGINX_CANDIDATES if os.access(path, os.X_OK)), None
    )
    if found is None:
        raise ContainerError(
            "serve needs nginx, which it runs in front of its workers, and finds none on PATH "
            "or at /usr/sbin/nginx; run `make install` (or `apt-get install nginx`).",
            500,
        )
    return found


def _json(message: str) -> str:
    """`message` as nginx config text that returns `{"error": message}` (no quotes inside)."""
    return '\'{"error": "' + message.replace("'", "") + "\"}'"


def _error_pages(read_s: int, limit_bytes: int) -> tuple[str, str]:
    """nginx's own refusals, as JSON sentences: the `error_page` lines (every location needs
    them: a location that sets one inherits none) and the named locations they refer to."""
    pages = {
        "unhealthy": (
            503,
            "The server is not ready: the model is loading, or no worker is alive. "
            "See the server log.",
        ),
        "no_answer": (500, "Internal server error; see the server log."),
        "bad_request": (
            400,
            "The request is not valid HTTP/1.1 (its request line, headers or chunked "
            "encoding). Send a request line, headers with a Content-Length (or chunks), "
            "and the body.",
        ),
        "timeout": (
            408,
            f"The request was not received within {read_s} s (XGB_SERVER_READ_TIMEOUT_S); "
            "send the whole request at once.",
        ),
        "length_required": (
            411,
            "A request body needs a Content-Length or Transfer-Encoding: chunked.",
        ),
        "uri_too_long": (414, "The request line is too long; the limit is 16 KB."),
        "not_implemented": (
            400,
            "The Transfer-Encoding is not one this server reads; send a Content-Length, or "
            "Transfer-Encoding: chunked.",
        ),
        "bad_version": (400, "The HTTP version is not supported; send HTTP/1.1 or HTTP/1.0."),
    }
    pages["too_large"] = (413, too_large_sentence(limit_bytes, "over the limit"))
    pages["headers_too_large"] = (
        431,
        "The headers of the request are too large; the limit is 16 KB for a line, 64 KB in all.",
    )
    # nginx's own codes for these; a client's mistake is never a 5xx
    caught = {"headers_too_large": 494, "not_implemented": 501, "bad_version": 505}
    directives = [
        f"error_page {caught.get(name, status)} ={status} /.errors/{name};"
        for name, (status, _) in pages.items()
        if name not in ("unhealthy", "no_answer")
    ]
    lines = []
    for name, (status, message) in pages.items():
        if name == "too_large":
            continue
        lines.append(
            f"        location = /.errors/{name} {{ internal; return {status} {_json(message)}; }}"
        )
    sized = _json(too_large_sentence(limit_bytes, "$content_length bytes"))
    lines += [
        "        location = /.errors/too_large {",
        "            internal;",
        f"            if ($content_length) {{ return 413 {sized}; }}",
        f"            return 413 {_json(pages['too_large'][1])};",
        "        }",
    ]
    return " ".join(directives), "\n".join(lines)


def render_config(serving: ServingSettings, run: RunDir, run_as_root: bool) -> str:
    """nginx's whole configuration for these settings."""
    read_s = serving.read_timeout_s
    # gunicorn ends a request that runs past its timeout by restarting the worker; nginx waits
    # a little longer so that it sees that end rather than its own.
    answer_s = serving.timeout_s + 5
    # SIGTERM: nginx finishes the requests it holds, then gunicorn stops; SageMaker waits 30 s.
    shutdown_s = 20
    error_pages, named_locations = _error_pages(read_s, serving.max_payload_bytes)
    host = "[::]" if serving.host == "::" else serving.host
    temp = run.path
    return f"""\
# Written by container/serving/front.py for one `serve`; not meant to be edited.
{"user nobody nogroup;" if run_as_root else ""}
worker_processes 1;
daemon off;
master_process on;
pid {temp}/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 8192;
worker_shutdown_timeout {shutdown_s}s;
events {{
    worker_connections 4096;
}}
http {{
    server_tokens off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    # A request that did not complete (a client cut off by a deadline, or gone) is logged.
    map $request_completion $incomplete {{ OK 0; default 1; }}
    log_format incomplete 'nginx: $remote_addr "$request" $status after $request_time s, '
        '$bytes_sent bytes sent: not completed (the client stopped reading or sending for '
        '{read_s} s, XGB_SERVER_READ_TIMEOUT_S, or closed its connection)';
    access_log /dev/stderr incomplete if=$incomplete;

    client_header_timeout {read_s}s;
    client_body_timeout {read_s}s;
    send_timeout {read_s}s;
    keepalive_timeout 75s;
    client_max_body_size {serving.max_payload_bytes};
    client_body_buffer_size 1m;
    large_client_header_buffers 4 16k;

    upstream workers {{
        server unix:{run.upstream} fail_timeout=0;
    }}
    upstream health {{
        server unix:{run.health} fail_timeout=0;
    }}

    server {{
        listen {host}:{serving.port} default_server backlog=4096;
        default_type application/json;
        proxy_intercept_errors off;

        location = /ping {{
            proxy_pass http://health;
            proxy_connect_timeout {PING_TIMEOUT_S}s;
            proxy_read_timeout {PING_TIMEOUT_S}s;
            proxy_send_timeout {PING_TIMEOUT_S}s;
            proxy_next_upstream off;
            error_page 502 504 =503 /.errors/unhealthy; {error_pages}
        }}
        location / {{
            proxy_pass http://workers;
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_buffer_size 16k;
            proxy_buffers 64 16k;
            proxy_max_temp_file_size 4096m;
            proxy_connect_timeout {answer_s}s;
            proxy_read_timeout {answer_s}s;
            proxy_send_timeout {answer_s}s;
            proxy_next_upstream off;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            error_page 502 504 =500 /.errors/no_answer; {error_pages}
        }}

        {error_pages}
{named_locations}
    }}
}}
"""
