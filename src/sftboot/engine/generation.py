"""A local transformers model as a policy: every live game decoded together, one forward pass per token.

Each game keeps its exact token stream (prompt, then the model's tokens and the environment's
tokens in the order they happened), so RL trains on precisely the tokens that were sampled, with
their sampling log-probs, and the environment's tokens masked out. For attention-only models the
KV cache of a wave of games lives across turns, so each turn feeds only the environment's new
tokens; generation stops per game at `</move>`, an end-of-turn token or its token budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers.cache_utils import Cache, DynamicLayer

from sftboot.core.answer import MOVE_END
from sftboot.engine.policy import Reply


@dataclass
class Trace:
    """One game's token stream; `env_mask` is 1 on model tokens, 0 on environment tokens."""

    conversation: list[dict]  # held so its id(), the trace's key, cannot be reused while the game lives
    rendered: str
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)

    @property
    def model_tokens(self) -> int:
        return sum(self.env_mask)

    def extend(self, ids: list[int], from_model: bool, logprobs: list[float] | None = None) -> None:
        self.completion_ids += ids
        self.env_mask += [int(from_model)] * len(ids)
        self.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)


class _GrowingLayer(DynamicLayer):
    """A KV cache layer that doubles a preallocated buffer instead of concatenating at every token."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer = self._value_buffer = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = 0 if self._key_buffer is None else self.keys.shape[-2]
        end = start + key_states.shape[-2]
        if self._key_buffer is None or end > self._key_buffer.shape[-2]:
            capacity = max(end, 256, 2 * start)
            self._key_buffer = _grown(self._key_buffer, key_states, capacity, start)
            self._value_buffer = _grown(self._value_buffer, value_states, capacity, start)
        self._key_buffer[..., start:end, :] = key_states
        self._value_buffer[..., start:end, :] = value_states
        self.keys, self.values = self._key_buffer[..., :end, :], self._value_buffer[..., :end, :]
        return self.keys, self.values


def _grown(buffer: torch.Tensor | None, like: torch.Tensor, capacity: int, filled: int) -> torch.Tensor:
    grown = like.new_zeros((*like.shape[:-2], capacity, like.shape[-1]))
    if buffer is not None:
        grown[..., :filled, :] = buffer[..., :filled, :]
    return grown


def attention_only(config) -> bool:
    """Whether every layer is attention, which masks a pad; a convolution or recurrence would read it as a step."""
    return set(getattr(config, "layer_types", None) or ["full_attention"]) == {"full_attention"}


def _new_cache(config):
    """A growing KV cache for attention-only models; other architectures (hybrid, conv) bring their own."""
    return Cache(layer_class_to_replicate=_GrowingLayer) if attention_only(config) else None


class KVBatch:
    """A wave of games decoded together: one row of the KV cache per game, kept across turns.

    Rows grow by different amounts each turn; each feed is left-padded to a common width and the
    pads are masked out, with positions counted over real tokens only. That is exact for attention
    alone: a model with convolution or recurrent layers would read a pad in mid-row as a time step,
    so for those a batch lives one turn and each turn starts from the whole conversation, where
    left pads come before every real token and act as the convolution's own zero padding.
    """

    def __init__(self, model, pad_id: int, size: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.size = size
        self.tokens: list[list[int]] = [[] for _ in range(size)]
        self.logits: torch.Tensor | None = None
        self.cache = _new_cache(model.config)
        self.mask = torch.zeros(size, 0, dtype=torch.long)

    def feed(self, streams: list[list[int]]) -> torch.Tensor:
        """Append each row's tokens; return each row's next-token logits."""
        width = max(1, max(len(tokens) for tokens in streams))
        ids = torch.full((self.size, width), self.pad_id, dtype=torch.long)
        new_mask = torch.zeros(self.size, width, dtype=torch.long)
        for row, tokens in enumerate(streams):
            if tokens:
                ids[row, width - len(tokens) :] = torch.tensor(tokens)
                new_mask[row, width - len(tokens) :] = 1
        positions = torch.tensor([len(tokens) for tokens in self.tokens]).unsqueeze(1) + new_mask.cumsum(1) - 1
        self.mask = torch.cat([self.mask, new_mask], dim=1)
        device = self.model.device
        output = self.model(
            input_ids=ids.to(device),
            attention_mask=self.mask.to(device),
            position_ids=positions.clamp(min=0).to(device),
            cache=self.cache,
            use_cache=True,
        )
        self.cache = output.past_key_values
        for row, tokens in enumerate(streams):
            self.tokens[row] += tokens
        self.logits = output.logits[:, -1, :].float().cpu()
        return self.logits


def _stop_ids(model, tokenizer) -> set[int]:
    """End-of-turn tokens: the tokenizer's and the generation config's (hub models often list several)."""
    configured = model.generation_config.eos_token_id
    listed = configured if isinstance(configured, list) else [configured]
    return {token for token in [tokenizer.eos_token_id, *listed] if token is not None}


class StudentPolicy:
    """`temperature` 0 means greedy decoding (evaluation); > 0 samples (RL rollouts)."""

    def __init__(
        self,
        model,
        tokenizer,
        max_tokens_per_turn: int,
        temperature: float = 0.0,
        max_tokens_per_game: int | None = None,
        record_traces: bool = False,
        policy_id: str = "student",
        seed: int = 0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_tokens_per_turn = max_tokens_per_turn
        self.temperature = temperature
        self.max_tokens_per_game = max_tokens_per_game
        self.record_traces = record_traces
        self.policy_id = policy_id
        self._traces: dict[int, Trace] = {}
        self._rows: dict[int, int] = {}
        self._batch: KVBatch | None = None
        self._generator = torch.Generator().manual_seed(seed)
        self._keeps_cache = attention_only(model.config)
        self._stops = _stop_ids(model, tokenizer)

    @property
    def deterministic(self) -> bool:
        """Greedy decoding answers a conversation the same way every time: evaluation can be exact."""
        return self.temperature == 0

    def _render(self, conversation: list[dict], generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=generation_prompt)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _trace(self, conversation: list[dict]) -> Trace:
        """The game's trace, with the environment's newest message appended as masked tokens."""
        rendered = self._render(conversation)
        trace = self._traces.get(id(conversation))
        if trace is None:
            trace = Trace(conversation=conversation, rendered=rendered, prompt_ids=self._encode(rendered))
            self._traces[id(conversation)] = trace
            return trace
        if rendered.startswith(trace.rendered):
            added = rendered[len(trace.rendered) :]
        else:  # the template rewrote the model's text (e.g. stripped it): continue after its rendered turn
            added = rendered[len(self._render(conversation[:-1], generation_prompt=False)) :]
        trace.extend(self._encode(added), from_model=False)
        trace.rendered = rendered
        return trace

    def _budget(self, trace: Trace) -> int:
        if self.max_tokens_per_game is None:
            return self.max_tokens_per_turn
        return max(0, min(self.max_tokens_per_turn, self.max_tokens_per_game - trace.model_tokens))

    @torch.no_grad()
    def _generate(self, conversations: list[list[dict]], traces: list[Trace], budgets: list[int]) -> list[tuple[list[int], list[float], bool]]:
        """Decode one turn for every game: rows stop at `</move>`, an end-of-turn token or their budget (then flagged)."""
        if not self._keeps_cache or any(id(conversation) not in self._rows for conversation in conversations):
            self._rows = {id(conversation): row for row, conversation in enumerate(conversations)}
            self._batch = KVBatch(self.model, self.tokenizer.pad_token_id, len(conversations))
        batch = self._batch
        rows = [self._rows[id(conversation)] for conversation in conversations]
        streams = [[] for _ in range(batch.size)]
        for row, trace in zip(rows, traces):
            streams[row] = (trace.prompt_ids + trace.completion_ids)[len(batch.tokens[row]) :]
        logits = batch.feed(streams) if any(streams) else batch.logits
        outputs = [([], [], "") for _ in traces]
        finished = set()  # rows that ended their answer themselves, not at the budget
        live = {i for i, budget in enumerate(budgets) if budget > 0}
        while live:
            if self.temperature > 0:
                logprobs = torch.log_softmax(logits / self.temperature, dim=-1)
                sampled = torch.multinomial(logprobs.exp(), 1, generator=self._generator).squeeze(1)
            else:  # greedy decoding has no use for log-probs
                logprobs, sampled = None, logits.argmax(dim=-1)
            step = [[] for _ in range(batch.size)]
            for i in sorted(live):
                token = int(sampled[rows[i]])
                tokens, token_logprobs, text = outputs[i]
                tokens.append(token)
                token_logprobs.append(float(logprobs[rows[i], token]) if logprobs is not None else 0.0)
                text += self.tokenizer.decode([token])
                outputs[i] = (tokens, token_logprobs, text)
                step[rows[i]] = [token]
                if token in self._stops or MOVE_END in text:
                    finished.add(i)
                if i in finished or len(tokens) >= budgets[i]:
                    live.discard(i)
            if live:  # a turn's last token enters the cache with the next turn's environment tokens
                logits = batch.feed(step)
        return [(tokens, token_logprobs, i not in finished) for i, (tokens, token_logprobs, _) in enumerate(outputs)]

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        """`seeds` go unused: sampling draws from the policy's own seeded generator."""
        traces = [self._trace(conversation) for conversation in conversations]
        budgets = [self._budget(trace) for trace in traces]
        generated = self._generate(conversations, traces, budgets)
        replies = []
        for trace, (tokens, token_logprobs, at_cap) in zip(traces, generated):
            context = len(trace.prompt_ids) + len(trace.completion_ids)
            trace.extend(tokens, from_model=True, logprobs=token_logprobs)
            trace.rendered += self.tokenizer.decode(tokens, skip_special_tokens=False)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            replies.append(Reply(text=text, prompt_tokens=context, completion_tokens=len(tokens), at_cap=at_cap))
        return replies

    def finish(self, conversation: list[dict]) -> dict:
        """Forget a finished game; with `record_traces`, hand back its token stream for training."""
        trace = self._traces.pop(id(conversation), None)
        self._rows.pop(id(conversation), None)
        if trace is None or not self.record_traces:
            return {}
        return {
            "prompt_ids": trace.prompt_ids,
            "completion_ids": trace.completion_ids,
            "env_mask": trace.env_mask,
            "sampling_logprobs": trace.logprobs,
        }
