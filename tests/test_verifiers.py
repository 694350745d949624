"""Verifiers environments (`env.name: verifiers`): classic multi-turn and single-turn environments written in the
test, played, replayed and scored through sftboot's engine, run through the stages, and refused in one line when broken."""

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT, Answering, commit, micro_run_with_api_teacher, run_stage, set_params, snapshot_repo

from sftboot.core.config import profile_defaults
from sftboot.core.errors import UserError
from sftboot.engine.environment import GameSpec, game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs.verifiers import Verifiers, VerifiersParams, import_verifiers
from sftboot.evaluation.run import evaluate
from sftboot.policies.fake_openai import FakeOpenAI

GAMES = '''
"""Two small Verifiers environments: guess a number (multi-turn) and add two numbers (single-turn); `broken` breaks one part."""
import re

import verifiers as vf
from datasets import Dataset

MOVE = re.compile(r"<move>\\s*(-?\\d+)\\s*</move>")


class Guess(vf.MultiTurnEnv):
    def __init__(self, broken=None, **kwargs):
        super().__init__(**kwargs)
        self.broken = broken

    async def env_response(self, messages, state, **kwargs):
        secret = state["info"]["secret"]
        if self.broken == "env_response" and secret == 5 and len(state["trajectory"]) >= 3:
            raise RuntimeError("the referee fell over")
        found = MOVE.search(messages[-1].content or "")
        guess = int(found.group(1)) if found else None
        if guess == secret:
            state["solved"] = True
            state["final_env_response"] = [vf.UserMessage(content="Correct!")]
            return state["final_env_response"]
        hint = "no guess" if guess is None else "higher" if guess < secret else "lower"
        return [vf.UserMessage(content=f"{hint}. Guess again.")]


def lookup(word: str) -> str:
    """Look a word up."""
    return word


def solved(state, **kwargs):
    return float("nan") if state["info"]["nan"] else 1.0 if state.get("solved") else 0.0


def correct(completion, answer, **kwargs):
    found = MOVE.search(completion[-1].content or "")
    return 1.0 if found and found.group(1) == answer else 0.0


def load_environment(kind="guess", broken=None, secrets=(1, 2, 3, 4, 6, 7, 8)):
    if kind == "sum":
        rows = [{"question": f"What is {a} + {b}? Answer inside <move>...</move>.", "answer": str(a + b)} for a in range(4) for b in range(3)]
        return vf.SingleTurnEnv(dataset=Dataset.from_list(rows), eval_dataset=Dataset.from_list(rows[:5]), rubric=vf.Rubric(funcs=[correct]))
    if kind == "tools":
        return vf.ToolEnv(tools=[lookup], dataset=Dataset.from_list([{"question": "q", "answer": "a"}]))
    rows = [{"question": "Guess my number from 1 to 8.", "info": {"secret": s, "nan": broken == "nan"}} for s in secrets]
    return Guess(
        broken=broken,
        dataset=Dataset.from_list(rows if broken != "empty" else []),
        eval_dataset=Dataset.from_list(rows[::2] + [{"question": "Guess my number from 1 to 8.", "info": {"secret": 5, "nan": False}}]),
        system_prompt="Think inside <think>...</think>, then give your guess inside <move>...</move>.",
        rubric=vf.Rubric(funcs=[solved]),
        max_turns=6,
    )
'''
SETTINGS = {"environment": "envs/vf_games.py", "args": {}, "suites": {"eval": {"split": "eval", "args": {}}}, "win_reward": 1.0, "max_turns": 8}


def _answer(messages: list[dict]) -> str:
    """A stand-in LLM for both games: bisects the guess from the hints, or adds the two numbers."""
    question = re.search(r"What is (\d+) \+ (\d+)", messages[-1]["content"])
    if question:
        return f"<think>+</think><move>{int(question[1]) + int(question[2])}</move>"
    low, high = 1, 8
    for asked, told in zip(messages, messages[1:]):
        if asked["role"] == "assistant":
            guess = int(re.search(r"<move>(\d+)</move>", asked["content"]).group(1))
            low, high = (guess + 1, high) if told["content"].startswith("higher") else (low, guess - 1) if told["content"].startswith("lower") else (low, high)
    return f"<think>{low}-{high}</think><move>{(low + high) // 2}</move>"


BISECT = Answering(_answer, "bisect")


@pytest.fixture
def games_file(project, monkeypatch):
    """A scratch project holding the two games in envs/vf_games.py, as the working directory."""
    (project / "envs").mkdir()
    (project / "envs/vf_games.py").write_text(GAMES)
    monkeypatch.chdir(project)
    return project


def _env(**changes) -> Verifiers:
    return Verifiers(VerifiersParams.model_validate(SETTINGS | changes))


def test_a_multi_turn_environment_plays_through_the_engine_and_replays_bit_for_bit(games_file):
    env = _env()
    specs = game_specs(12, 0, 0.0, 1.0)
    together = play_games(env, BISECT, specs, batch_size=12)
    alone = play_games(env, BISECT, specs, batch_size=1)
    assert together["messages"].to_list() == alone["messages"].to_list()
    assert (together["outcome"] == "win").all() and (together["reward_outcome"] == 1.0).all()
    for row in together.head(4).iter_rows(named=True):
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        assert env.replay(GameSpec(row["game_id"], row["seed"], row["p"]), answers).messages == row["messages"]
        assert row["messages"][-1] == {"role": "user", "content": "Correct!"}
    # the environment's own turn cap ends a game its rubric scores 0: a loss, as is an answer with no move under forfeit
    episode = env.episode(specs[0])
    for _ in range(6):
        episode.step("<think>no idea</think>")
    assert episode.outcome == "loss" and episode.invalid_moves == 6 and episode.rewards().outcome == 0.0
    forfeited = env.episode(specs[0], forfeit_invalid=True)
    forfeited.step("no tags")
    assert forfeited.outcome == "loss" and forfeited.rewards().outcome == 0.0


def test_suites_draw_from_their_own_dataset_and_arguments(games_file):
    env = _env(suites={"eval": {"split": "eval", "args": {}}, "sums": {"split": "train", "args": {"kind": "sum"}}})
    result = evaluate(env, BISECT, list(env.suites), 12, 3, 12)
    assert result.metrics["eval"]["kind"] == "sampled" and result.metrics["eval"]["win"]["pct"] == 100
    assert result.metrics["sums"]["win"]["pct"] == 100
    first_questions = {messages[0]["content"] for messages in result.games.filter(result.games["opponent"] == "sums")["messages"].to_list()}
    assert all(question.startswith("What is") for question in first_questions)
    # the single-turn environment ends after one answer; a wrong sum is a loss
    episode = _env(args={"kind": "sum"}).episode(GameSpec(0, 0, 0.0))
    episode.step("<think>t</think><move>99</move>")
    assert episode.done and episode.outcome == "loss" and episode.turns == 1


def test_the_stages_play_a_single_turn_environment_with_an_api_teacher(games_file, monkeypatch):
    set_params(games_file, env={"name": "verifiers", "verifiers": SETTINGS | {"args": {"kind": "sum"}}}, validate={"min_examples": 5})
    monkeypatch.setenv("SFTBOOT_TEST_KEY", "local")
    with FakeOpenAI(answer=_answer) as server:
        set_params(games_file, teacher={"policy": "openai", "openai": {"base_url": server.base_url, "api_key_env": "SFTBOOT_TEST_KEY"}})
        for stage in ("teacher", "filter", "validate"):
            result = run_stage(games_file, stage)
            assert result.returncode == 0, result.stderr
    teacher = json.loads((games_file / "metrics/teacher.json").read_text())
    assert teacher["win"]["pct"] == 100 and teacher["format"]["pct"] == 100
    assert json.loads((games_file / "metrics/validate.json").read_text())["success"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"args": {"broken": "empty"}}, r"^env\.verifiers: envs/vf_games\.py has no rows for its training dataset; give load_environment a dataset$"),
        ({"args": {"kind": "tools"}}, r"^env\.verifiers: envs/vf_games\.py builds a ToolEnv; sftboot plays text-only MultiTurnEnv and SingleTurnEnv"),
        ({"args": {"colour": "red"}}, r"^env\.verifiers: envs/vf_games\.py's load_environment\(\{'colour': 'red'\}\) failed: .*unexpected keyword"),
        ({"environment": "envs/nope.py"}, r"^env\.verifiers\.environment: no file envs/nope\.py; give the path from the project root$"),
        ({"environment": "no_such_verifiers_env"}, r"^env\.verifiers\.environment: cannot import no_such_verifiers_env .*install it or fix the name$"),
    ],
)
def test_a_broken_environment_is_refused_in_one_line(games_file, changes, message):
    with pytest.raises(UserError, match=message):
        _env(**changes)


def test_a_missing_or_unsupported_verifiers_is_refused_in_one_line(monkeypatch):
    import verifiers

    monkeypatch.setattr(verifiers, "__version__", "0.4.0")
    with pytest.raises(UserError, match=r"^env\.verifiers: verifiers 0\.4\.0 is installed; sftboot speaks its classic API, verifiers>=0\.2,<0\.4: pip install"):
        import_verifiers()
    monkeypatch.setitem(sys.modules, "verifiers", None)  # what an environment without the extra sees
    with pytest.raises(UserError, match=r"^env\.name=verifiers needs Verifiers: pip install -e '\.\[verifiers\]'$"):
        import_verifiers()


def test_a_failing_env_response_or_rubric_stops_in_one_line_and_loses_no_finished_game(games_file, tmp_path):
    env = _env(args={"broken": "nan"})
    with pytest.raises(UserError, match=r"^env\.verifiers: Guess failed in its rubric on its row \d+: reward nan, not a number$"):
        play_games(env, BISECT, game_specs(2, 0, 0.0, 1.0), batch_size=2)
    env = _env(args={"broken": "env_response"})
    specs = [GameSpec(i, i, 0.0, suite="eval") for i in range(5)]  # secrets 1, 3, 6, 8, 5: the last fails at its third answer
    journal = tmp_path / "journal"
    with pytest.raises(UserError, match=r"^env\.verifiers: Guess failed in its rollout on its row 4: the referee fell over$"):
        play_games(env, BISECT, specs, batch_size=5, journal_dir=journal)
    kept = [json.loads(line)["game_id"] for path in journal.iterdir() for line in path.read_text().splitlines()]
    assert sorted(kept) == [0, 1, 2]  # the games that ended by then (in two or three answers) are journaled


@pytest.mark.slow
def test_a_verifiers_environment_runs_the_micro_pipeline_to_rl_and_the_cli(tmp_path_factory):
    repo = snapshot_repo(tmp_path_factory.mktemp("verifiers") / "repo")
    (repo / "envs").mkdir()
    (repo / "envs/vf_games.py").write_text(GAMES)
    commit(repo, "a Verifiers environment")
    # to RL's evaluation: the control, the report and the other evaluations run the same code on every environment (test_pipeline, Mastermind)
    micro_run_with_api_teacher(repo, _answer, ["env.name=verifiers", "env.verifiers.environment=envs/vf_games.py"], ["evaluate@rl"])
    assert json.loads((repo / "metrics/teacher.json").read_text())["win"]["pct"] == 100
    assert json.loads((repo / "metrics/eval/rl.json").read_text())["eval"]["kind"] == "sampled"
    cli = [sys.executable, "-m", "sftboot.app.cli"]
    evaluated = subprocess.run([*cli, "eval", "--model", "models/sft", "--games", "3", "--json"], cwd=repo, capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout[evaluated.stdout.index("{") :])["eval"]["games"] == 3
    played = subprocess.run([*cli, "play", "models/rl", "--game-seed", "1"], cwd=repo, capture_output=True, text=True)
    assert played.returncode == 0, played.stderr
    assert "Guess my number from 1 to 8." in played.stdout and re.search(r"^outcome: (win|loss)$", played.stdout, re.M)


def _nim(messages: list[dict]) -> str:
    """Nim's winning rule: leave a multiple of 4."""
    pile = int(re.findall(r"(\d+) stones", messages[-1]["content"])[-1])
    return f"<think>t</think><move>{pile % 4 or 1}</move>"


def test_the_default_section_plays_the_docs_example_whose_winning_rule_always_wins(monkeypatch):
    monkeypatch.chdir(ROOT)
    env = Verifiers(VerifiersParams.model_validate(profile_defaults()["env"]["verifiers"]))
    games = play_games(env, Answering(_nim, "nim"), game_specs(20, 0, 0.0, 1.0), batch_size=20)
    start = [int(re.search(r"(\d+) stones", messages[1]["content"])[1]) for messages in games["messages"].to_list()]
    assert games["outcome"].to_list() == ["win" if pile % 4 else games["outcome"][i] for i, pile in enumerate(start)]
    assert games.filter(games["outcome"] == "win")["reward_outcome"].to_list() == [1.0] * (games["outcome"] == "win").sum()
    episode = env.episode(GameSpec(0, 0, 0.0))
    episode.step("<think>t</think><move>7</move>")
    assert episode.invalid_moves == 1 and episode.messages[-1]["content"].startswith("Invalid move")
