"""Any OpenAI-compatible chat endpoint as a policy (OpenAI, vLLM, `transformers serve`, ...).

Retries, backoff and `Retry-After` are the openai client's own (`max_retries`, `timeout`).
Whatever the server says, a reply is game data: an empty or unreadable answer is played as an
empty message and the environment penalises it. Only failures that outlast the retries, or that
retrying cannot fix (a rejected key), stop the run, and a rerun resumes from the journal.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from sftboot.config import OpenAITeacherParams
from sftboot.errors import UserError
from sftboot.policies import Reply


def read_api_key(variable: str) -> str:
    key = os.environ.get(variable)
    if not key:
        raise UserError(
            f"teacher.openai.api_key_env: environment variable {variable} is not set; "
            f"export {variable}=<your key> (any non-empty value for a server without auth)"
        )
    return key


class OpenAIChatPolicy:
    def __init__(self, params: OpenAITeacherParams) -> None:
        self.params = params
        self.policy_id = f"openai:{params.model}@{params.base_url}"
        self.client = openai.OpenAI(
            base_url=params.base_url,
            api_key=read_api_key(params.api_key_env),
            timeout=params.timeout_s,
            max_retries=params.max_retries,
        )

    def _ask(self, messages: list[dict], seed: int) -> Reply:
        started = time.perf_counter()
        try:
            response = self.client.chat.completions.create(
                model=self.params.model,
                messages=messages,
                temperature=self.params.temperature,
                max_completion_tokens=self.params.max_tokens,
                seed=seed,  # best-effort determinism where the server supports it (OpenAI, vLLM)
            )
        except openai.AuthenticationError:
            raise UserError(f"the teacher endpoint rejected the key in {self.params.api_key_env}; check it") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError):  # a 200 that is not a completion
            return Reply(text="", latency_s=time.perf_counter() - started)
        except (openai.APIConnectionError, openai.APIStatusError) as error:
            raise UserError(
                f"teacher request to {self.params.base_url} failed after {self.params.max_retries} retries "
                f"({type(error).__name__}: {str(error)[:200]}); finished games are saved, rerun to resume"
            ) from None
        latency = time.perf_counter() - started
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        text = getattr(message, "content", None)
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = (prompt_tokens * self.params.price_input_per_m + completion_tokens * self.params.price_output_per_m) / 1e6
        return Reply(
            text=text if isinstance(text, str) else "",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency_s=latency,
        )

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
            return list(pool.map(self._ask, conversations, seeds))
