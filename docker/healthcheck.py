"""Container health check: GET /healthz (liveness, no I/O) on this container's own web server.

The Host header names one of ALLOWED_HOSTS (Django answers 400 to any other), and when
a proxy's HTTPS header is trusted the probe sends it, so SECURE_SSL_REDIRECT does not
turn the probe into a redirect. Exit 0 when healthy, 1 otherwise. Standard library only:
the slim image has no curl.
"""

import http.client
import os
import sys


def _host() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip().lstrip(".")
        if entry and entry != "*":
            return entry
    return "localhost"


def _headers() -> dict[str, str]:
    headers = {"Host": _host()}
    # SECURE_PROXY_SSL_HEADER names the WSGI key, e.g. HTTP_X_FORWARDED_PROTO.
    proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip()
    if proxy_header.startswith("HTTP_"):
        headers[proxy_header.removeprefix("HTTP_").replace("_", "-").title()] = "https"
    return headers


def main() -> int:
    connection = http.client.HTTPConnection("127.0.0.1", int(os.environ.get("PORT", "8000")), timeout=5)
    try:
        connection.request("GET", "/healthz", headers=_headers())
        response = connection.getresponse()
        print(response.status, response.read(500).decode(errors="replace"))
        return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"unreachable: {error}")
        return 1
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
