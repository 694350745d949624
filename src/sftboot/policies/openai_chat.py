"""Any OpenAI-compatible chat endpoint as a policy (OpenAI, vLLM, `transformers serve`, ...).

Transport failures (429 with its `Retry-After`, 5xx, timeouts, dropped connections) are retried by
the openai client itself (`max_retries`, `timeout`). A 200 that is not a completion (not JSON, no
choices) is retried the same number of times: it is the server's failure, not the model's answer.
Only what the model returned, empty or null content included, is game data. Failures that outlast
the retries, or that retrying cannot fix (a rejected key), stop the run; a rerun resumes from the
journal. Every kind of failure is counted per game (`api`), and summed in metrics/teacher.json.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import openai

from sftboot.core.config import OpenAITeacherParams
from sftboot.core.errors import UserError
from sftboot.engine.policy import Reply

NOT_COMPLETION_BACKOFF_S = 0.5


def read_api_key(variable: str) -> str:
    key = os.environ.get(variable)
    if not key:
        raise UserError(
            f"teacher.openai.api_key_env: environment variable {variable} is not set; "
            f"export {variable}=<your key> (any non-empty value for a server without auth)"
        )
    return key


class _Attempts(threading.local):
    """Per thread, so each concurrent request counts its own retries: the client retries in the caller's thread."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()


class OpenAIChatPolicy:
    def __init__(self, params: OpenAITeacherParams) -> None:
        self.params = params
        self.policy_id = f"openai:{params.model}@{params.base_url}"
        self._attempts = _Attempts()
        self.client = openai.OpenAI(
            base_url=params.base_url,
            api_key=read_api_key(params.api_key_env),
            timeout=params.timeout_s,
            max_retries=params.max_retries,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._sent], "response": [self._answered]}),
        )

    def _sent(self, request) -> None:
        self._attempts.counts["requests"] += 1

    def _answered(self, response) -> None:
        counts = self._attempts.counts
        counts["responses"] += 1
        if response.status_code == 429:
            counts["rate_limited"] += 1
        elif response.status_code >= 500:
            counts["server_errors"] += 1

    def _complete(self, messages: list[dict], seed: int, faults: Counter):
        """A chat completion with at least one choice, retrying 200s that are not completions."""
        options = {name: value for name, value in (("top_p", self.params.top_p), ("reasoning_effort", self.params.reasoning_effort)) if value is not None}
        for attempt in range(self.params.max_retries + 1):
            if attempt:
                time.sleep(NOT_COMPLETION_BACKOFF_S * 2 ** (attempt - 1))
            try:
                response = self.client.chat.completions.create(
                    model=self.params.model,
                    messages=messages,
                    temperature=self.params.temperature,
                    max_completion_tokens=self.params.max_tokens,
                    seed=seed,  # best-effort determinism where the server supports it (OpenAI, vLLM)
                    extra_body=self.params.extra_body or None,
                    **options,
                )
            except (openai.APIResponseValidationError, json.JSONDecodeError):
                faults["not_json"] += 1
                continue
            choices = getattr(response, "choices", None) or []
            if choices and getattr(choices[0], "message", None) is not None:
                return response, choices[0]
            faults["no_choices"] += 1
        raise UserError(
            f"teacher: {self.params.max_retries + 1} replies in a row from {self.params.base_url} were not completions "
            "(not JSON, or no choices); finished games are saved, rerun to resume"
        )

    def _ask(self, messages: list[dict], seed: int) -> Reply:
        started = time.perf_counter()
        self._attempts.counts = counts = Counter()
        try:
            response, choice = self._complete(messages, seed, counts)
        except openai.AuthenticationError:
            raise UserError(f"the teacher endpoint rejected the key in {self.params.api_key_env}; check it") from None
        except (openai.APIConnectionError, openai.APIStatusError) as error:
            raise UserError(
                f"teacher request to {self.params.base_url} failed after {self.params.max_retries} retries "
                f"({type(error).__name__}: {str(error)[:200]}); finished games are saved, rerun to resume"
            ) from None
        latency = time.perf_counter() - started
        text = _answer_text(choice.message)
        counts["null_content"] += choice.message.content is None
        counts["empty_content"] += text == ""
        counts["no_response"] += counts.pop("requests", 0) - counts.pop("responses", 0)  # timeouts and dropped connections
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)  # reasoning tokens included, as OpenAI bills them
        details = getattr(usage, "completion_tokens_details", None)
        counts["reasoning_tokens"] += int(getattr(details, "reasoning_tokens", 0) or 0)
        cost = (prompt_tokens * self.params.price_input_per_m + completion_tokens * self.params.price_output_per_m) / 1e6
        return Reply(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency_s=latency,
            at_cap=getattr(choice, "finish_reason", None) == "length",
            api=dict(counts),
        )

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
            return list(pool.map(self._ask, conversations, seeds))


def _answer_text(message) -> str:
    """The answer as the game sees it; reasoning a server split off (`reasoning_content`) goes back into <think>."""
    text = message.content if isinstance(message.content, str) else ""
    reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in text:
        return f"<think>{reasoning.strip()}</think>{text}"
    return text
