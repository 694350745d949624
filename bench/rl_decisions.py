"""Diagnosis: which tic-tac-toe decisions RL changed, how sure SFT was of them, and what RL's games teach.

Reads both models' exact evaluations (data/eval/<model>/moves.parquet: every position their greedy
lines reach, with its probability and best moves) and prints four tables:

0. Losses: the expected reward each model gives away, by the kind of position: X can win at once
   (win), O threatens (block), both (win+block: the win is the answer), neither (quiet); and at
   win+block positions, how often each model blocks instead.

1. Flips: at every position either model's lines reach, each model's greedy move and SFT's
   smallest top-1/top-2 probability gap along its answer; per gap bin, how often RL answers
   otherwise and the reach of flips that lose value (worse) or gain it (better).
2. Tactics: at positions with an immediate win, or one threat to block, the probability each model
   gives the teacher's answer for it ("I can complete a line at N …" / "O threatens to win at N …")
   and how often its greedy move is the tactic.
3. Chances (--opponents): in games sampled at the RL temperature against each opponent range, how
   often the student can win at once or must block, and how often it does.

    python bench/rl_decisions.py [--before sft] [--after rl] [--opponents 0-0.25 1-1]

Findings so far: docs/results.md (why RL gives back wins).
"""

import argparse
from pathlib import Path

import polars as pl
import torch

from sftboot.core.answer import extract_move, format_answer
from sftboot.core.config import load_params
from sftboot.core.device import CPU
from sftboot.engine.environment import game_specs
from sftboot.engine.generation import StudentPolicy
from sftboot.engine.rollout import play_games
from sftboot.envs import make_environment
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.teacher import explain
from sftboot.training.student import load_student
from sftboot.training.weakspots import INVALID_COST

GAP_BINS = [0.1, 0.2, 0.4, 0.7, 0.9]
GAP_LABELS = ["<=0.1", "0.1-0.2", "0.2-0.4", "0.4-0.7", "0.7-0.9", ">0.9"]


def position_key(row: dict) -> tuple:
    """A position as its line: the suite, the board and the environment's messages that led there."""
    return row["opponent"], row["board"], tuple(m["content"] for m in row["history"] if m["role"] == "user")


@torch.no_grad()
def greedy_answer(model, tokenizer, history: list[dict], max_tokens: int) -> tuple[str, float]:
    """The greedy answer and the smallest gap between the top two token probabilities along it."""
    prompt = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, output_scores=True, return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
    gaps = [float(torch.topk(torch.softmax(score[0].float(), -1), 2).values.diff().abs()) for score in out.scores]
    return tokenizer.decode(out.sequences[0, ids.shape[1] :], skip_special_tokens=True), min(gaps)


@torch.no_grad()
def answer_probability(model, tokenizer, history: list[dict], answer: str) -> float:
    prompt = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]])
    logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logp[start - 1 :].sum().exp())


def cell_of(answer: str) -> int | None:
    move = extract_move(answer)
    return int(move) if move is not None and move.isdigit() else None


def tactic(board: str) -> tuple[str, list[int]] | None:
    """("win", cells) where X can win at once, ("block", [cell]) where O threatens one cell; else None."""
    if wins := rules.winning_cells(board, "X"):
        return "win", wins
    threats = rules.winning_cells(board, "O")
    return ("block", threats) if len(threats) == 1 else None


def positions(evals: Path, names: tuple[str, str]) -> pl.DataFrame:
    """One row per position either model's greedy lines reach, with each model's reach there."""
    rows: dict[tuple, dict] = {}
    for name in names:
        for row in pl.read_parquet(evals / name / "moves.parquet").iter_rows(named=True):
            entry = rows.setdefault(
                position_key(row), {"opponent": row["opponent"], "board": row["board"], "history": row["history"], "best": row["best_cells"]}
            )
            entry[f"{name}_reach"] = entry.get(f"{name}_reach", 0.0) + row["reach"]
    return pl.DataFrame(list(rows.values()), infer_schema_length=None).fill_null(0.0)


def judge(frame: pl.DataFrame, models: dict, max_tokens: int) -> pl.DataFrame:
    found = {f"{name}_{part}": [] for name in models for part in ("cell", "gap", "tactic_p")}
    kinds = []
    for row in frame.iter_rows(named=True):
        known = tactic(row["board"])
        kinds.append(known[0] if known else None)
        for name, (model, tokenizer) in models.items():
            answer, gap = greedy_answer(model, tokenizer, row["history"], max_tokens)
            found[f"{name}_cell"].append(cell_of(answer))
            found[f"{name}_gap"].append(gap)
            taught = [format_answer(explain(row["board"], cell), cell) for cell in known[1]] if known else None
            found[f"{name}_tactic_p"].append(sum(answer_probability(model, tokenizer, row["history"], text) for text in taught) if taught else None)
    return frame.with_columns(tactic=pl.Series(kinds, dtype=pl.String), **{k: pl.Series(v) for k, v in found.items()})


def position_kind(board: str) -> str:
    kinds = [name for name, player in (("win", "X"), ("block", "O")) if rules.winning_cells(board, player)]
    return "+".join(kinds) or "quiet"


def blocks_instead(row: dict) -> bool:
    """The move blocks O's line without completing X's own."""
    return row["cell"] in set(rules.winning_cells(row["board"], "O")) - set(rules.winning_cells(row["board"], "X"))


def print_losses(evals: Path, names: tuple[str, str]) -> None:
    print(f"\n0. Losses: expected reward given away a game, by kind of position (an invalid answer costs {INVALID_COST})")
    tables = []
    for name in names:
        moves = pl.read_parquet(evals / name / "moves.parquet").with_columns(
            kind=pl.col("board").map_elements(position_kind, return_dtype=pl.String),
            blocked=pl.struct("board", "cell").map_elements(blocks_instead, return_dtype=pl.Boolean),
        )
        cost = pl.col("reach") * pl.when(pl.col("cell").is_null()).then(INVALID_COST).otherwise(pl.col("regret"))
        share_blocked = (pl.col("reach") * pl.col("blocked")).sum() / pl.col("reach").sum()
        tables.append(
            moves.group_by("opponent", "kind").agg(
                cost.sum().round(4).alias(f"lost_{name}"),
                pl.when(pl.col("kind").first() == "win+block").then(share_blocked.round(3)).alias(f"blocks_{name}"),
            )
        )
    print(tables[0].join(tables[1], on=["opponent", "kind"], how="full", coalesce=True).sort("opponent", "kind"))


def print_flips(frame: pl.DataFrame, before: str, after: str) -> None:
    keeps = {name: pl.col("best").list.contains(pl.col(f"{name}_cell")).fill_null(False) for name in (before, after)}
    flipped = pl.col(f"{before}_cell").ne_missing(pl.col(f"{after}_cell"))
    judged = frame.filter(pl.col(f"{before}_reach") > 0).with_columns(
        flipped=flipped,
        worse=flipped & keeps[before] & ~keeps[after],
        better=flipped & ~keeps[before] & keeps[after],
        gap=pl.col(f"{before}_gap").bin_intervals(GAP_BINS, labels=GAP_LABELS, right_closed=True),
    )
    print(f"\n1. Flips: where {after} answers otherwise than {before}, by {before}'s smallest top-1/top-2 gap (reach: expected visits a game)")
    print(
        judged.group_by("opponent", "gap")
        .agg(
            positions=pl.len(),
            reach=pl.col(f"{before}_reach").sum().round(4),
            flip_rate=pl.col("flipped").mean().round(3),
            worse_reach=(pl.col(f"{before}_reach") * pl.col("worse")).sum().round(4),
            better_reach=(pl.col(f"{before}_reach") * pl.col("better")).sum().round(4),
        )
        .sort("opponent", "gap")
    )
    print(f"  {after} answers otherwise at {judged['flipped'].sum()} of {judged.height} positions {before}'s lines reach")


def print_tactics(frame: pl.DataFrame, before: str, after: str) -> None:
    tactical = frame.filter(pl.col("tactic").is_not_null())
    hit = {name: pl.col("best").list.contains(pl.col(f"{name}_cell")).fill_null(False) for name in (before, after)}
    weight = pl.col(f"{before}_reach") + pl.col(f"{after}_reach")
    print(f"\n2. Tactics: the teacher's answer's probability (reach-weighted) and greedy hits, {before} -> {after}")
    print(
        tactical.with_columns(**{f"{name}_hit": hit[name] for name in hit})
        .group_by("opponent", "tactic")
        .agg(
            positions=pl.len(),
            **{f"p_{name}": ((pl.col(f"{name}_tactic_p") * weight).sum() / weight.sum()).round(3) for name in (before, after)},
            higher_after=(pl.col(f"{after}_tactic_p") > pl.col(f"{before}_tactic_p")).mean().round(3),
            **{f"greedy_{name}": pl.col(f"{name}_hit").mean().round(3) for name in (before, after)},
        )
        .sort("opponent", "tactic")
    )


def print_chances(model, tokenizer, environment, opponents: list[str], temperature: float, max_tokens: int, max_game_tokens: int, games: int) -> None:
    print(f"\n3. Chances: {games} games sampled at temperature {temperature} per opponent range (p: chance of a random move)")
    for text in opponents:
        low, high = (float(part) for part in text.split("-"))
        policy = StudentPolicy(model, tokenizer, max_tokens_per_turn=max_tokens, temperature=temperature, max_tokens_per_game=max_game_tokens, seed=1)
        played = play_games(environment, policy, game_specs(games, 7, low, high, 4), batch_size=100, forfeit_invalid=True)
        counts = {"win": [0, 0], "block": [0, 0]}
        for game in played.iter_rows(named=True):
            board, marks = " " * 9, ("O", "X") if game["opponent_started"] else ("X", "O")
            for index, cell in enumerate(game["moves"]):
                if marks[index % 2] == "X" and (known := tactic(board)):
                    counts[known[0]][0] += 1
                    counts[known[0]][1] += cell in known[1]
                board = rules.place(board, cell, marks[index % 2])
        print(
            f"  p {low}-{high}: win chances a game {counts['win'][0] / played.height:.2f} (taken {counts['win'][1] / max(counts['win'][0], 1):.2f}), "
            f"blocks needed a game {counts['block'][0] / played.height:.2f} (made {counts['block'][1] / max(counts['block'][0], 1):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="sft", help="model and evaluation name (models/<name>, data/eval/<name>)")
    parser.add_argument("--after", default="rl")
    parser.add_argument("--opponents", nargs="*", default=[], help="opponent ranges for table 3, e.g. 0-0.25 1-1")
    parser.add_argument("--games", type=int, default=400)
    args = parser.parse_args()
    params = load_params(Path("params.yaml"))
    models = {name: load_student(f"models/{name}", CPU.dtype) for name in (args.before, args.after)}
    for model, _ in models.values():
        model.eval()
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_width_chars(160)
    print_losses(Path("data/eval"), (args.before, args.after))
    frame = judge(positions(Path("data/eval"), (args.before, args.after)), models, params.eval.max_tokens_per_turn)
    print_flips(frame, args.before, args.after)
    print_tactics(frame, args.before, args.after)
    if args.opponents:
        model, tokenizer = models[args.before]
        print_chances(
            model,
            tokenizer,
            make_environment(params.env),
            args.opponents,
            params.rl.temperature,
            params.rl.max_tokens_per_turn,
            params.rl.max_tokens_per_game,
            args.games,
        )


if __name__ == "__main__":
    main()
