"""Benchmark: games per second of the rollout engine.

Prints games/s for the scripted teacher, and for the OpenAI-compatible teacher against a local
chat-completions server (sftboot.policies.fake_openai, answering after a fixed delay that stands in for
model latency) at concurrency 1, 8 and 32.

    python bench/rollouts.py [--games 400] [--delay 0.05]
"""

import argparse
import os
import time

from sftboot.core.config import defaults
from sftboot.engine.environment import game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import project_environment
from sftboot.policies.fake_openai import FakeOpenAI
from sftboot.policies.openai_chat import OpenAIChatPolicy


def games_per_s(policy, games: int, batch_size: int) -> float:
    specs = game_specs(games, seed=0, p_min=0.0, p_max=1.0, num_groups=8)
    started = time.perf_counter()
    play_games(project_environment(), policy, specs, batch_size=batch_size, description=policy.policy_id)
    return games / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=400)
    parser.add_argument("--delay", type=float, default=0.05, help="server seconds per reply")
    args = parser.parse_args()
    scripted = defaults("teacher.scripted")
    teacher = project_environment().scripted_teacher(scripted.skill, scripted.lookahead)
    print(f"scripted teacher: {games_per_s(teacher, args.games, 256):8.1f} games/s")
    os.environ["SFTBOOT_BENCH_KEY"] = "local"
    with FakeOpenAI(lambda messages: teacher.respond([messages], [0])[0].text, delay_s=args.delay) as server:
        for concurrency in (1, 8, 32):
            params = defaults("teacher.openai", base_url=server.base_url, model="local", api_key_env="SFTBOOT_BENCH_KEY", concurrency=concurrency)
            games = min(args.games, 16 * concurrency)
            rate = games_per_s(OpenAIChatPolicy(params), games, concurrency)
            print(f"openai teacher, {args.delay * 1000:.0f} ms/reply, concurrency {concurrency:2d}: {rate:8.1f} games/s")


if __name__ == "__main__":
    main()
