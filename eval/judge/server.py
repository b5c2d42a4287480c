"""``streamvqa eval judge-serve PATH``: a local chat model behind an OpenAI-compatible endpoint.

One judge model can then serve several scoring jobs or Ray workers (``--judge openai:NAME --base-url
http://HOST:PORT/v1``). It implements what judging needs: ``POST /v1/chat/completions`` (greedy, no
streaming) and ``GET /v1/models``. Requests are answered one at a time (one model, one lock).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eval.judge.backends import HFChatJudge

logger = logging.getLogger(__name__)


def make_server(judge: HFChatJudge, host: str, port: int, model_name: str) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) answering chat completions with ``judge``."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            logger.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}: use POST /v1/chat/completions")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}: use POST /v1/chat/completions")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length))
                messages = request["messages"]
                if not isinstance(messages, list) or not all(
                        isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
                    raise ValueError("messages must be a list of {role, content} objects")
            except (ValueError, KeyError, TypeError) as exc:
                self._error(400, f"bad request: {exc}")
                return
            with lock:
                content = judge.reply(messages)
            self._send(200, {
                "id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
            })

    return ThreadingHTTPServer((host, port), Handler)


def serve(path: str, host: str = "127.0.0.1", port: int = 8008, model_name: str | None = None,
          device: str = "auto", local_files_only: bool = False, max_seconds: float | None = None,
          announce: Callable[[str], None] = logger.info) -> None:
    """Serve ``path`` until interrupted (or for ``max_seconds``); ``announce`` gets the URL once listening."""
    judge = HFChatJudge(path, device=device, local_files_only=local_files_only)
    server = make_server(judge, host, port, model_name or path)
    if max_seconds is not None:
        threading.Timer(max_seconds, server.shutdown).start()
    announce(f"serving {path} as {model_name or path} on http://{host}:{server.server_address[1]}/v1")
    try:
        server.serve_forever()
    finally:
        server.server_close()
