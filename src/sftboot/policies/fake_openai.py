"""A real HTTP server on 127.0.0.1 that speaks the chat-completions protocol and injects faults:
what the tests and `bench/rollouts.py` run an API teacher against, without an API.

It answers each request with what `answer(messages)` returns (a legal move of the environment under test), unless the next entry of
`faults` says otherwise: "429" (with Retry-After), "500", "hang" (longer than the client timeout),
"badjson" (a 200 whose body is not JSON), "empty" (no choices), "drop" (the connection closed
unanswered), "null" (a completion with null content), "garbage" (prose, no move tags),
"reasoning" (the answer's thinking split off into `reasoning_content`, with reasoning tokens).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default of 5 refuses connections at high client concurrency


class FakeOpenAI:
    def __init__(
        self,
        answer: Callable[[list[dict]], str],
        faults: list[str] | None = None,
        hang_s: float = 3.0,
        delay_s: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.faults = list(faults or [])
        self.answer = answer
        self.hang_s = hang_s
        self.delay_s = delay_s
        self.api_key = api_key
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self) -> str | None:
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(request)
                    fake.headers_seen.append(dict(self.headers))
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, b'{"error": {"message": "bad key"}}')
                fault = fake._next_fault()
                time.sleep(fake.delay_s)
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "1"})
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "boom"}}')
                if fault == "hang":
                    time.sleep(fake.hang_s)
                if fault == "badjson":
                    return self._send(200, b"{not json")
                if fault == "drop":
                    self.close_connection = True
                    return
                choices = []
                if fault != "empty":
                    text = "I think I will just chat." if fault == "garbage" else None if fault == "null" else fake.answer(request["messages"])
                    message = {"role": "assistant", "content": text}
                    if fault == "reasoning":
                        message = {"role": "assistant", "content": text.split("</think>")[1], "reasoning_content": "first free cell"}
                    choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
                body = {
                    "id": "fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": request["model"],
                    "choices": choices,
                    "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
                    | ({"completion_tokens_details": {"reasoning_tokens": 4}} if fault == "reasoning" else {}),
                }
                self._send(200, json.dumps(body).encode())

        return Handler
