"""A stand-in OAuth 2.0 provider on loopback: a token endpoint (RFC 6749: client credentials
and refresh tokens) and an introspection endpoint (RFC 7662) that Dovecot asks about each token.
It keeps what it was asked, and a test may revoke the tokens it issued."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_ID, CLIENT_SECRET = "intake-gateway", "client-secret"
REFRESH_TOKEN = "refresh-token-of-the-mailbox"


@dataclass
class Provider:
    username: str
    url: str = ""
    token_requests: list[dict[str, str]] = field(default_factory=list)
    live: set[str] = field(default_factory=set)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    def revoke_all(self) -> None:
        self.live.clear()

    def issue(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        self.token_requests.append(form)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        if grant == "refresh_token" and form.get("refresh_token") != REFRESH_TOKEN:
            return 400, {"error": "invalid_grant"}
        if grant not in ("client_credentials", "refresh_token"):
            return 400, {"error": "unsupported_grant_type"}
        token = secrets.token_urlsafe(24)
        self.live.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def introspect(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("token") in self.live:
            return 200, {"active": "true", "username": self.username}
        return 200, {"active": "false"}


@contextmanager
def oauth2_provider(username: str) -> Iterator[Provider]:
    provider = Provider(username)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            route = {"/token": provider.issue, "/introspect": provider.introspect}.get(self.path)
            status, body = route(form) if route else (404, {"error": "not_found"})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
