"""Nim written for Verifiers: the worked example of docs/environments.md for `env.name: verifiers` (the tests run it).

A classic Verifiers multi-turn environment, as published on the Environments Hub, with no sftboot
import: a pile of stones, each turn a player takes 1 to 3, whoever takes the last stone wins. The
model moves first; the opponent takes a random legal number with probability `opponent_p`, else the
winning take (leave a multiple of 4). The rubric pays 1 for a win; the state names the outcome and
counts invalid answers, which sftboot reads. Use it with:

    env:
      name: verifiers
      verifiers: {environment: docs/examples/vf_nim.py, args: {}, suites: {eval: {split: eval, args: {}}}, win_reward: 1.0, max_turns: 10}
"""

from __future__ import annotations

import random
import re

import verifiers as vf
from datasets import Dataset

SYSTEM_PROMPT = (
    "You play Nim against an opponent. Players take turns taking 1, 2 or 3 stones from the pile; "
    "whoever takes the last stone wins. Think briefly inside <think>...</think>, then give how many "
    "stones you take inside <move>...</move>, for example <move>2</move>."
)
MOVE = re.compile(r"<move>\s*(\d+)\s*</move>")


def _rows(games: int, seed: int, stones: tuple[int, int], opponent_p: float) -> Dataset:
    rng = random.Random(seed)
    rows = []
    for _ in range(games):
        pile = rng.randint(*stones)
        rows.append({"question": f"The pile has {pile} stones. Your move.", "info": {"pile": pile, "seed": rng.randrange(2**31), "opponent_p": opponent_p}})
    return Dataset.from_list(rows)


class NimEnv(vf.MultiTurnEnv):
    async def setup_state(self, state: vf.State) -> vf.State:
        state["pile"] = state["info"]["pile"]
        state["invalid_moves"] = 0
        return state

    async def env_response(self, messages: vf.Messages, state: vf.State, **kwargs) -> vf.Messages:
        found = MOVE.search(messages[-1].content or "")
        take = int(found.group(1)) if found else 0
        if not 1 <= take <= min(3, state["pile"]):
            state["invalid_moves"] += 1
            return [vf.UserMessage(content=f"Invalid move: take 1 to {min(3, state['pile'])} stones. The pile has {state['pile']} stones.")]
        state["pile"] -= take
        if state["pile"] == 0:
            state["outcome"] = "win"
            state["final_env_response"] = [vf.UserMessage(content="You took the last stone. You win!")]
            return state["final_env_response"]
        rng = random.Random(state["info"]["seed"] + len(state["trajectory"]))
        reply = rng.randint(1, min(3, state["pile"])) if rng.random() < state["info"]["opponent_p"] else state["pile"] % 4 or 1
        state["pile"] -= reply
        if state["pile"] == 0:
            state["outcome"] = "loss"
            state["final_env_response"] = [vf.UserMessage(content=f"The opponent took {reply}, the last stone. You lose!")]
            return state["final_env_response"]
        return [vf.UserMessage(content=f"You took {take}; the opponent took {reply}. The pile has {state['pile']} stones. Your move.")]


def won(state: vf.State, **kwargs) -> float:
    return 1.0 if state.get("outcome") == "win" else 0.0


def load_environment(games: int = 200, eval_games: int = 40, stones: tuple[int, int] = (5, 15), opponent_p: float = 0.5, max_turns: int = 8) -> NimEnv:
    return NimEnv(
        dataset=_rows(games, 0, stones, opponent_p),
        eval_dataset=_rows(eval_games, 1, stones, opponent_p),
        system_prompt=SYSTEM_PROMPT,
        rubric=vf.Rubric(funcs=[won], weights=[1.0]),
        max_turns=max_turns,
    )
