"""`sftboot` command line, beside the pipeline: evaluate any model, or play against one.

    sftboot eval --model models/rl --opponent optimal --out eval/rl      # exact: every line
    sftboot eval --model openai:gpt-4o-mini --opponent random --games 50
    sftboot eval --model openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 --opponent optimal
    sftboot play models/rl
    sftboot standin lfm2 models/hub/lfm2     # a tiny offline LFM2 with the hub's chat template
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from pydantic import ValidationError

from sftboot.errors import UserError, exits_cleanly
from sftboot.evaluation import OPPONENTS, describe, evaluate, load_student_policy
from sftboot.io import write_json

OPENAI_PREFIX = "openai:"


def _flag_error(error: ValidationError) -> UserError:
    """A flag's value the params model rejects, said as the flag: `--skill: Input should be ...`."""
    first = error.errors()[0]
    return UserError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']} (got {first['input']})")


def _scripted_teacher(args: argparse.Namespace):
    """This project's scripted teacher (params.yaml's teacher.scripted, else the config defaults),
    with --skill and --lookahead overriding it."""
    from sftboot.config import PARAMS_FILE, ScriptedTeacherParams, load_params
    from sftboot.policies.scripted import ScriptedTeacher

    settings = load_params().teacher.scripted if PARAMS_FILE.exists() else ScriptedTeacherParams()
    flags = {name: getattr(args, name) for name in ("skill", "lookahead") if getattr(args, name) is not None}
    try:  # the bounds live in the params model, as for teacher.scripted
        settings = ScriptedTeacherParams(**(settings.model_dump() | flags))
    except ValidationError as error:
        raise _flag_error(error) from None
    return ScriptedTeacher(**settings.model_dump())


def _policy(args: argparse.Namespace):
    model, base_url, api_key_env = args.model, args.base_url, args.api_key_env
    if model == "scripted":
        return _scripted_teacher(args)
    if model.startswith(OPENAI_PREFIX):
        from sftboot.config import OpenAITeacherParams
        from sftboot.policies.openai_chat import OpenAIChatPolicy

        settings = {"model": model[len(OPENAI_PREFIX) :], "api_key_env": api_key_env, "max_tokens": args.max_tokens}
        for name, value in (("base_url", base_url), ("concurrency", args.concurrency)):
            if value is not None:  # unset: OpenAITeacherParams' default
                settings[name] = value
        try:
            return OpenAIChatPolicy(OpenAITeacherParams(**settings))
        except ValidationError as error:
            raise _flag_error(error) from None
    from sftboot.budget import check_budget
    from sftboot.device import placement

    check_budget(Path(model), args.max_tokens, "--max-tokens")
    return load_student_policy(model, args.max_tokens, placement(args.device, args.dtype))


def _eval(args: argparse.Namespace) -> None:
    """Exact for a greedy student (every line), sampled otherwise or with --sampled; --out keeps the games."""
    policy = _policy(args)
    opponents = list(OPPONENTS) if args.opponent == "both" else [args.opponent]
    evaluation = evaluate(policy, opponents, args.games, args.seed, args.max_turns, args.batch_size, exact=not args.sampled)
    for opponent, result in evaluation.metrics.items():
        cost = f", cost ${result['cost_usd']}" if result.get("cost_usd") else ""
        print(f"{args.model} vs {opponent}, {describe(result)}{cost}")
    if args.out:
        evaluation.save(Path(args.out))
        write_json(Path(args.out) / "metrics.json", evaluation.metrics)
        print(f"games and metrics in {args.out}/ (games.parquet, moves.parquet, metrics.json)")
    if args.json:
        print(json.dumps(evaluation.metrics, indent=2))


def _ask_human(board: str, seed: int, p: float) -> int:
    """The person at the terminal plays O."""
    from sftboot import board as rules

    print(rules.render(board))
    free = rules.free_cells(board)
    while True:
        typed = input(f"your move (O), one of {free}: ").strip()
        if typed.isdigit() and int(typed) in free:
            return int(typed)
        print("pick a free cell number")


def _play(args: argparse.Namespace) -> None:
    """A person plays O against the model; --show-thinking prints the model's whole answer."""
    from sftboot import board as rules
    from sftboot.answer import extract_move
    from sftboot.env import GameSpec, TicTacToeEnv

    policy = _policy(args)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    env = TicTacToeEnv(GameSpec(0, seed=seed, p=0.0), max_turns=args.max_turns, opponent=_ask_human)
    while not env.done:
        answer = policy.respond([env.messages], [seed])[0].text
        if args.show_thinking:
            print(f"model: {answer}")
        print(f"model plays X at {extract_move(answer)}")
        invalid_before = env.invalid_moves
        env.step(answer)
        if env.invalid_moves > invalid_before:
            print("(not a legal move; the model tries again)")
    print(rules.render(env.board))
    print({"win": "The model wins.", "loss": "You win!" if not env.capped else "The model ran out of turns.", "draw": "A draw."}[env.outcome])


def _standin(args: argparse.Namespace) -> None:
    """A tiny random-weight stand-in for a hub student, to run the real-model path offline."""
    from sftboot.standins import build_standin

    build_standin(args.architecture, Path(args.out), seed=args.seed)
    print(f"{args.architecture} stand-in -> {args.out} (use it as student.model={args.out})")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sftboot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    for name, handler, help_text in (("eval", _eval, "evaluate a model"), ("play", _play, "play O against a model")):
        command = commands.add_parser(name, help=help_text)
        if name == "eval":
            command.add_argument("--model", required=True, help="a checkpoint folder, openai:MODEL, or scripted")
            command.add_argument("--opponent", choices=[*OPPONENTS, "both"], default="both")
            command.add_argument("--games", type=int, default=100, help="games per opponent when sampled")
            command.add_argument("--sampled", action="store_true", help="sample games even for a greedy student, instead of every line")
            command.add_argument("--out", default=None, help="a folder for games.parquet, moves.parquet and metrics.json")
            command.add_argument("--batch-size", type=int, default=400, help="lines or games a local model decodes together")
            command.add_argument("--json", action="store_true", help="also print all metrics as JSON")
            command.add_argument("--seed", type=int, default=12345)
        else:
            command.add_argument("model", help="a checkpoint folder, openai:MODEL, or scripted")
            command.add_argument("--show-thinking", action="store_true", help="print the model's whole answer")
            command.add_argument("--seed", type=int, default=None)
        command.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint for openai:MODEL")
        command.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
        command.add_argument("--concurrency", type=int, default=None, help="parallel requests to an API model (default 8)")
        command.add_argument("--max-tokens", type=int, default=64, help="tokens per answer (a served model's reasoning included)")
        command.add_argument("--max-turns", type=int, default=8)
        command.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="where a local model runs (auto: CUDA if present)")
        command.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto", help="a local model's precision (auto: bf16 on a GPU)")
        command.add_argument("--skill", type=float, default=None, help="the scripted teacher's skill (default: params.yaml's teacher.scripted.skill)")
        command.add_argument("--lookahead", type=float, default=None, help="the scripted teacher's lookahead (default: params.yaml's)")
        command.set_defaults(handler=handler)
    from sftboot.standins import ARCHITECTURES

    standin = commands.add_parser("standin", help="write a tiny offline stand-in of a hub architecture")
    standin.add_argument("architecture", choices=ARCHITECTURES)
    standin.add_argument("out", help="the folder to write the model and tokenizer to")
    standin.add_argument("--seed", type=int, default=0)
    standin.set_defaults(handler=_standin)
    return top


@exits_cleanly
def main() -> None:
    args = parser().parse_args()
    for flag in ("games", "batch_size"):
        if getattr(args, flag, 1) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1")
    args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
