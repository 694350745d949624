"""Diagnosis: how fast SFT teaches the teacher's tic-tac-toe tactics, step by step.

Trains SFT as the `sft` stage does (this folder's params, data/sft/train.jsonl, from --base) and every
--every steps prints, at held-out positions with an immediate win or a single threat to block (from
a perfect teacher's games on another seed), the mean probability of the teacher's answer and the
share of positions where it is above one half. The loss flattens long before these do.

    python bench/sft_tactics.py [--steps 3000] [--every 500] [--base models/base] [--games 600]

Findings so far: docs/results.md (SFT's length, and pretraining).
"""

import argparse
import tempfile
from pathlib import Path

import torch
from rl_decisions import answer_probability, tactic
from transformers import TrainerCallback

from sftboot.core.answer import format_answer
from sftboot.core.config import load_params
from sftboot.core.device import placement
from sftboot.engine.environment import game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import make_environment
from sftboot.envs.tictactoe.teacher import ScriptedTeacher, board_from_text, explain
from sftboot.training.sft import read_records, train_sft
from sftboot.training.student import load_student

HELD_OUT_SEED = 12345  # not a seed the pipeline's teacher games draw from


def held_out_positions(environment, games: int) -> list[tuple[str, list[dict], list[str]]]:
    """(kind, the conversation so far, the teacher's answers) where X can win at once or must block one threat."""
    played = play_games(environment, ScriptedTeacher(1.0), game_specs(games, HELD_OUT_SEED, 0.0, 1.0, 8), batch_size=games)
    found = []
    for messages in played["messages"].to_list():
        for turn, message in enumerate(messages):
            board = board_from_text(messages[turn - 1]["content"]) if message["role"] == "assistant" else None
            if board and (known := tactic(board)):
                found.append((known[0], messages[:turn], [format_answer(explain(board, cell), cell) for cell in known[1]]))
    return found


@torch.no_grad()
def tactic_rates(model, tokenizer, positions) -> dict[str, tuple[float, float]]:
    """Per kind: mean probability of the teacher's answer, and the share of positions where it exceeds 0.5."""
    was_training = model.training
    model.eval()
    probabilities: dict[str, list[float]] = {"win": [], "block": []}
    for kind, history, answers in positions:
        probabilities[kind].append(sum(answer_probability(model, tokenizer, history, answer) for answer in answers))
    model.train(was_training)
    return {kind: (sum(found) / len(found), sum(p > 0.5 for p in found) / len(found)) for kind, found in probabilities.items() if found}


class TacticsEvery(TrainerCallback):
    def __init__(self, tokenizer, positions, every: int) -> None:
        self.tokenizer, self.positions, self.every = tokenizer, positions, every

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            print_row(state.global_step, tactic_rates(model, self.tokenizer, self.positions))


def print_row(step: int, rates: dict[str, tuple[float, float]]) -> None:
    print(f"{step:>6} " + " ".join(f"{rates[kind][0]:>12.3f} {rates[kind][1]:>10.3f}" for kind in ("win", "block") if kind in rates), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="SFT steps (default: sft.max_steps)")
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--base", default="models/base", help="the model SFT starts from")
    parser.add_argument("--games", type=int, default=600, help="held-out perfect-teacher games to take positions from")
    args = parser.parse_args()
    params = load_params(Path("params.yaml"))
    place = placement(**params.compute.model_dump())
    sft = params.sft.model_copy(update={"max_steps": args.steps or params.sft.max_steps})
    positions = held_out_positions(make_environment(params.env), args.games)
    model, tokenizer = load_student(args.base, place.dtype)
    print(f"{sum(kind == 'win' for kind, *_ in positions)} win and {sum(kind == 'block' for kind, *_ in positions)} block positions held out")
    print(f"{'step':>6} {'p(win ans.)':>12} {'win >0.5':>10} {'p(block ans.)':>12} {'block >0.5':>10}")
    print_row(0, tactic_rates(model, tokenizer, positions))
    with tempfile.TemporaryDirectory() as work:
        train_sft(
            model, tokenizer, read_records(Path("data/sft/train.jsonl")), sft, params.seed, Path(work), [TacticsEvery(tokenizer, positions, args.every)], place
        )


if __name__ == "__main__":
    main()
