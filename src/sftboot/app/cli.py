"""`sftboot` command line, beside the pipeline: evaluate any model, or play against one.

sftboot eval --model models/rl --suite optimal --out eval/rl      # exact: every line
sftboot eval --model openai:gpt-4o-mini --suite random --games 50
sftboot eval --model openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 --suite optimal
sftboot eval --model scripted --env mastermind
sftboot play models/rl
sftboot standin lfm2 models/hub/lfm2     # a tiny offline LFM2 with the hub's chat template
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from importlib import metadata
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from sftboot.core.errors import UserError, exits_cleanly
from sftboot.core.io import write_json
from sftboot.evaluation.run import describe, evaluate, load_student_policy
from sftboot.policies import TEACHERS

# Each flag left unset takes its value from the project's params.yaml (or, outside a project, from
# the default profile), so `sftboot eval` plays by the pipeline's rules unless told otherwise.
FROM_PARAMS = {
    "games": "eval.games",
    "seed": "eval.seed",
    "batch_size": "eval.batch_size",
    "max_tokens": "eval.max_tokens_per_turn",
    "api_max_tokens": "teacher.openai.max_tokens",
    "env": "env.name",
    "device": "compute.device",
    "dtype": "compute.dtype",
    "portable": "compute.portable",
    "base_url": "teacher.openai.base_url",
    "api_key_env": "teacher.openai.api_key_env",
    "concurrency": "teacher.openai.concurrency",
    "max_retries": "teacher.openai.max_retries",
    "skill": "teacher.scripted.skill",
    "lookahead": "teacher.scripted.lookahead",
}


def _fill_from_params(args: argparse.Namespace) -> set[str]:
    """Fill unset flags from params; return the flags the person set."""
    from sftboot.core.config import project_params

    params = project_params().model_dump(by_alias=True)
    given = set()
    for flag, key in FROM_PARAMS.items():
        if not hasattr(args, flag):
            continue
        if getattr(args, flag) is None:
            value = params
            for name in key.split("."):
                value = value[name]
            setattr(args, flag, value)
        else:
            given.add(flag)
    return given


def _section(name: str, settings: dict):
    """A params section from flags, refused as the flag that broke its bounds: `--skill: Input should be ...`."""
    from sftboot.core.config import defaults

    try:
        return defaults(name, **settings)
    except ValidationError as error:
        first = error.errors()[0]
        raise UserError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']} (got {first['input']})") from None


def _environment(args: argparse.Namespace):
    """The environment `--env` names, with its settings from params' `env.<name>` section."""
    from sftboot.envs import project_environment

    return project_environment(args.env)


def _policy(args: argparse.Namespace, given: set[str], environment):
    """A model spec as a policy: a teacher of the registry (`scripted`, `openai:NAME`) or a checkpoint folder."""
    name, _, argument = args.model.partition(":")
    if name in TEACHERS:
        teacher = TEACHERS[name]
        if teacher.api and "max_tokens" in given and args.command != "serve":  # serve applies it to the local models beside this one
            raise UserError("--max-tokens: a local model's budget per turn; an API model's budget, thinking included, is --api-max-tokens")
        return teacher.build(_section(f"teacher.{name}", teacher.flags(args, argument)), environment)
    model = args.model
    from sftboot.core.budget import check_budget
    from sftboot.core.device import placement

    check_budget(Path(model), args.max_tokens, "--max-tokens")
    return load_student_policy(model, args.max_tokens, placement(args.device, args.dtype, portable=args.portable))


def _eval(args: argparse.Namespace) -> None:
    """Exact for a greedy student (every line), sampled otherwise or with --sampled; --out keeps the games."""
    given = _fill_from_params(args)
    environment = _environment(args)
    suites = list(environment.suites) if args.suite in ("all", "both") else [args.suite]
    if suites[0] not in environment.suites:
        raise UserError(f"--suite: {environment.name} has no suite {args.suite!r}; choose {', '.join(environment.suites)} or all")
    policy = _policy(args, given, environment)
    evaluation = evaluate(environment, policy, suites, args.games, args.seed, args.batch_size, exact=not args.sampled)
    for opponent, result in evaluation.metrics.items():
        cost = f", cost ${result['cost_usd']}" if result.get("cost_usd") else ""
        print(f"{args.model} vs {opponent}, {describe(result)}{cost}")
    if args.out:
        evaluation.save(Path(args.out))
        write_json(Path(args.out) / "metrics.json", evaluation.metrics)
        print(f"games and metrics in {args.out}/ (games.parquet, moves.parquet, metrics.json)")
    if args.json:
        print(json.dumps(evaluation.metrics, indent=2))


def _play(args: argparse.Namespace) -> None:
    """The environment's own terminal game where it has one (a person against the model), else watch the model play one episode."""
    given = _fill_from_params(args)
    environment = _environment(args)
    policy = _policy(args, given, environment)
    seed = args.game_seed if args.game_seed is not None else random.randrange(2**31)
    environment.play_in_terminal(policy, seed, args.show_thinking)


def _standin(args: argparse.Namespace) -> None:
    """A tiny random-weight stand-in for a hub student, to run the real-model path offline."""
    from sftboot.training.standins import build_standin

    _fill_from_params(args)
    build_standin(args.architecture, Path(args.out), seed=args.seed, environment=_environment(args))
    print(f"{args.architecture} stand-in -> {args.out} (use it as student.model={args.out})")


def _serve(args: argparse.Namespace) -> None:
    """A local web app: play any model, watch its answers, browse the evaluation games side by side."""
    import uvicorn

    from sftboot.app.webapp import create_app

    given = _fill_from_params(args)
    environment = _environment(args)
    specs = args.models or [f"models/{name}" for name in ("rl", "sft", "base") if Path(f"models/{name}").exists()] + ["scripted"]

    def make_policy(spec: str):
        return _policy(argparse.Namespace(**(vars(args) | {"model": spec})), given, environment)

    app = create_app(specs, Path(args.eval_dir), environment, args.timeout, make_policy)
    print(f"sftboot: http://{args.host}:{args.port}/ ({', '.join(specs)})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def _allowed(setting: str) -> tuple[str, ...]:
    """The values the `compute` params allow for `setting`, so flag and params cannot disagree."""
    from sftboot.core.config import ComputeParams

    return get_args(ComputeParams.model_fields[setting].annotation)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sftboot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"sftboot {metadata.version('sftboot')}")
    commands = top.add_subparsers(dest="command", required=True)
    for name, handler, help_text in (
        ("eval", _eval, "evaluate a model"),
        ("play", _play, "play against a model in the terminal, or watch it play"),
        ("serve", _serve, "play and browse in a web page"),
    ):
        command = commands.add_parser(
            name, help=help_text, description="Unset flags take the project's params.yaml values (the default profile's outside a project)."
        )
        if name == "eval":
            command.add_argument("--model", required=True, help="a checkpoint folder, openai:MODEL, or scripted")
            command.add_argument("--suite", "--opponent", default="all", help="one of the environment's suites, or all")
            command.add_argument("--games", type=int, help="games per suite when sampled (eval.games)")
            command.add_argument("--sampled", action="store_true", help="sample games even for a greedy student, instead of every line")
            command.add_argument("--out", default=None, help="a folder for games.parquet, moves.parquet and metrics.json")
            command.add_argument("--batch-size", type=int, help="lines or games a local model decodes together (eval.batch_size)")
            command.add_argument("--json", action="store_true", help="also print all metrics as JSON")
            command.add_argument("--seed", type=int, help="the sampled games' seed (eval.seed)")
        elif name == "play":
            command.add_argument("model", help="a checkpoint folder, openai:MODEL, or scripted")
            command.add_argument("--show-thinking", action="store_true", help="print the model's whole answer")
            command.add_argument("--game-seed", type=int, default=None, help="who starts and the model's draws (default: random)")
        else:
            command.add_argument("models", nargs="*", help="checkpoint folders, openai:MODEL or scripted (default: models/rl, sft, base and scripted)")
            command.add_argument("--port", type=int, default=7860)
            command.add_argument("--host", default="127.0.0.1", help="the address to listen on; 0.0.0.0 exposes the app to your network")
            command.add_argument("--eval-dir", default="data/eval", help="where the evaluation games are (data/eval/<model>/games.parquet)")
            command.add_argument("--timeout", type=float, default=60.0, help="seconds a model may take for one answer")
        command.add_argument("--base-url", help="OpenAI-compatible endpoint for openai:MODEL (teacher.openai.base_url)")
        command.add_argument("--api-key-env", help="environment variable holding the key (teacher.openai.api_key_env)")
        command.add_argument("--concurrency", type=int, help="parallel requests to an API model (teacher.openai.concurrency)")
        command.add_argument("--max-retries", type=int, help="retries of a failed request to an API model (teacher.openai.max_retries)")
        command.add_argument("--max-tokens", type=int, help="a local model's tokens per answer (eval.max_tokens_per_turn)")
        command.add_argument("--api-max-tokens", type=int, help="an API model's tokens per answer, thinking included (teacher.openai.max_tokens)")
        command.add_argument("--env", help="the environment, settings from params' env.<name> (env.name)")
        command.add_argument("--device", choices=_allowed("device"), help="where a local model runs (compute.device)")
        command.add_argument("--dtype", choices=_allowed("dtype"), help="a local model's precision (compute.dtype)")
        command.add_argument("--portable", action=argparse.BooleanOptionalAction, help="pinned, machine-independent arithmetic (compute.portable)")
        command.add_argument("--skill", type=float, help="the scripted teacher's skill (teacher.scripted.skill)")
        command.add_argument("--lookahead", type=float, help="the scripted teacher's lookahead (teacher.scripted.lookahead)")
        command.set_defaults(handler=handler)
    from sftboot.training.standins import ARCHITECTURES

    standin = commands.add_parser("standin", help="write a tiny offline stand-in of a hub architecture")
    standin.add_argument("architecture", choices=ARCHITECTURES)
    standin.add_argument("out", help="the folder to write the model and tokenizer to")
    standin.add_argument("--seed", type=int, default=0)
    standin.add_argument("--env", help="the environment whose texts teach the tokenizer (env.name)")
    standin.set_defaults(handler=_standin)
    return top


@exits_cleanly(takes_arguments=True)
def main() -> None:
    args = parser().parse_args()
    for flag in ("games", "batch_size"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1")
    args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
