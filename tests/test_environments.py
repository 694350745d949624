"""The environment interface: Mastermind, the TextArena adapter and a user's own environment, each through the stages."""

import itertools
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, Answering, commit, dvc, micro_run_with_api_teacher, run_stage, set_params, snapshot_repo

from sftboot.core.config import EnvParams, profile_defaults
from sftboot.core.errors import UserError
from sftboot.engine.environment import GameSpec, game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin, make_environment
from sftboot.envs.mastermind import all_codes, codes_of_kind, pegs_for
from sftboot.evaluation.run import evaluate

NIM = {"class": "docs/examples/nim.py:Nim", "max_turns": 8, "stones": 15}
NIM_SOURCE = "docs/examples/nim.py"  # env.source: the stages depend on the file


def _env_params(**changes) -> EnvParams:
    return EnvParams.model_validate(profile_defaults()["env"] | changes)


def test_mastermind_pegs_match_the_rules_and_each_suite_is_every_secret_of_its_kind():
    for guess, secret in itertools.product(all_codes(3, 4), repeat=2):
        black = sum(g == s for g, s in zip(guess, secret))
        unmatched_guess = [g for g, s in zip(guess, secret) if g != s]
        unmatched_secret = [s for g, s in zip(guess, secret) if g != s]
        white = sum(min(unmatched_guess.count(c), unmatched_secret.count(c)) for c in set(unmatched_guess))
        assert pegs_for(guess, secret) == (black, white)
    env = builtin("mastermind")
    for suite, p in env.suites.items():
        secrets = [env.episode(GameSpec(i, i, p)).secret for i in range(len(codes_of_kind(3, 4, p == 1.0)))]
        assert sorted(secrets) == sorted(codes_of_kind(3, 4, p == 1.0)), suite
    assert len(codes_of_kind(3, 4, False)) + len(codes_of_kind(3, 4, True)) == 4**3


def test_mastermind_judges_guesses_and_replays_bit_for_bit():
    env = builtin("mastermind")
    episode = env.episode(GameSpec(0, 5, 0.0))
    episode.step("<think>t</think><move>1 2 5</move>")  # colour 5 does not exist
    episode.step("no tags")
    assert episode.invalid_moves == 2 and not episode.done
    secret = " ".join(map(str, episode.secret))
    episode.step(f"<think>t</think><move>{secret}</move>")
    assert episode.outcome == "win" and episode.rewards().outcome == 1.0 and episode.moves == [int(secret.replace(" ", ""))]
    games = play_games(env, env.scripted_teacher(0.85, 0.2), game_specs(30, 0, 0.0, 1.0, 4), batch_size=30)
    for row in games.iter_rows(named=True):
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        assert env.replay(GameSpec(row["game_id"], row["seed"], row["p"]), answers).messages == row["messages"]


def test_mastermind_search_beats_the_habit_exactly_and_the_teacher_sits_between():
    env = builtin("mastermind")
    search = evaluate(env, env.scripted_teacher(1.0, 1.0), list(env.suites), 1, 0, 64).metrics
    habit = evaluate(env, env.scripted_teacher(1.0, 0.0), list(env.suites), 1, 0, 64).metrics
    assert search["distinct"]["kind"] == "exact" and search["distinct"]["lines"] == 24 and search["repeated"]["lines"] == 40
    for suite in env.suites:
        assert search[suite]["win"]["pct"] > habit[suite]["win"]["pct"]
        assert search[suite]["format"]["pct"] == 100 and search[suite]["invalid_games"]["pct"] == 0


def test_textarena_games_replay_bit_for_bit_however_they_are_batched():
    env = builtin("textarena")
    specs = game_specs(6, 0, 0.0, 1.0)

    bisect = Answering(_bisect, "bisect")
    together = play_games(env, bisect, specs, batch_size=6)
    alone = play_games(env, bisect, specs, batch_size=1)
    assert together["messages"].to_list() == alone["messages"].to_list()
    assert (together["outcome"] == "win").all() and (together["reward_outcome"] == 1.0).all()
    episode = env.episode(specs[0])
    episode.step("<think>t</think><move>banana</move>")
    episode.step("no tags")
    assert episode.invalid_moves == 2 and "invalid move" in episode.messages[3]["content"]


def test_students_are_evaluated_exactly_where_the_environment_enumerates_its_lines():
    assert builtin("tictactoe").evaluates_exactly and builtin("mastermind").evaluates_exactly
    assert not make_environment(_env_params(name="textarena")).evaluates_exactly
    assert not make_environment(_env_params(name="nim", source=NIM_SOURCE, nim=NIM)).evaluates_exactly


def test_a_bad_env_section_is_refused_in_one_line():
    with pytest.raises(UserError, match=r"env\.wordle: missing"):
        make_environment(_env_params(name="wordle"))
    with pytest.raises(UserError, match=r"env\.nim\.class: missing"):
        make_environment(_env_params(name="nim", source=NIM_SOURCE, nim={"max_turns": 8, "stones": 15}))
    with pytest.raises(UserError, match=r"env\.nim\.stones: Input should be greater than or equal to 1"):
        make_environment(_env_params(name="nim", source=NIM_SOURCE, nim=NIM | {"stones": 0}))
    with pytest.raises(
        UserError,
        match=r"^params.yaml: env.source: src/sftboot/envs does not hold env.nim.class's file docs/examples/nim.py; set env.source: docs/examples/nim.py",
    ):
        make_environment(_env_params(name="nim", nim=NIM))
    with pytest.raises(UserError, match=r"env\.textarena\.game: .*single-player game id"):
        builtin("textarena", game="NoSuchGame-v0")
    with pytest.raises(UserError, match=r"env\.mastermind\.colours \(2\) must be at least env\.mastermind\.pegs \(3\)"):
        builtin("mastermind", colours=2)


def test_the_guides_worked_example_plays_through_the_interface():
    env = make_environment(_env_params(name="nim", source=NIM_SOURCE, nim=NIM))
    perfect = evaluate(env, env.scripted_teacher(1.0, 1.0), list(env.suites), 200, 0, 200).metrics
    assert perfect["optimal"]["win"]["pct"] == 100 and perfect["random"]["win"]["pct"] == 100
    sloppy = evaluate(env, env.scripted_teacher(0.5, 0.5), list(env.suites), 200, 0, 200).metrics
    assert sloppy["optimal"]["win"]["pct"] < 50
    assert "docs/examples/nim.py" in (ROOT / "docs/environments.md").read_text()


def _bisect(messages: list[dict]) -> str:
    """A stand-in LLM for GuessTheNumber: halves the range after each hint."""
    low, high = 1, 20
    for asked, told in zip(messages[2::2], messages[3::2]):
        guess = int(re.search(r"<move>(\d+)</move>", asked["content"]).group(1))
        if "higher" in told["content"]:
            low = guess + 1
        elif "lower" in told["content"]:
            high = guess - 1
    return f"<think>between {low} and {high}</think><move>{(low + high) // 2}</move>"


@pytest.fixture(scope="module")
def env_repo(tmp_path_factory):
    return snapshot_repo(tmp_path_factory.mktemp("envs") / "repo")


def _eval(repo, model):
    return json.loads((repo / f"metrics/eval/{model}.json").read_text())


@pytest.mark.slow
def test_mastermind_runs_the_whole_micro_pipeline(env_repo):
    dvc(env_repo, "exp", "run", "-S", "profile=micro", "-S", "env.name=mastermind")
    for model in ("base", "sft", "rl", "teacher"):
        assert set(_eval(env_repo, model)) == {"distinct", "repeated"}
    assert _eval(env_repo, "sft")["distinct"]["kind"] == "exact" and _eval(env_repo, "sft")["repeated"]["lines"] == 40
    summary = json.loads((env_repo / "metrics/summary.json").read_text())
    assert {"sft_win_vs_distinct", "rl_win_vs_repeated", "teacher_format"} <= set(summary)
    assert "# sftboot report: mastermind" in (env_repo / "report.md").read_text()
    assert yaml.safe_load((env_repo / "params.yaml").read_text())["env"]["name"] == "mastermind"
    commit(env_repo, "mastermind run")


@pytest.mark.slow
def test_a_textarena_game_runs_the_micro_pipeline_to_rl_with_an_api_teacher(env_repo):
    micro_run_with_api_teacher(env_repo, _bisect, ["env.name=textarena"], ["evaluate@base", "evaluate@rl"])
    teacher = json.loads((env_repo / "metrics/teacher.json").read_text())
    assert teacher["games"] == 40 and teacher["win"]["pct"] == 100
    for model in ("base", "sft", "rl"):
        assert _eval(env_repo, model)["default"]["kind"] == "sampled"
    commit(env_repo, "textarena run")
    # sampled students: their evaluations follow eval.games and eval.seed, through the plan
    assert json.loads((env_repo / "data/eval/plan.json").read_text()) == {"games": 8, "seed": profile_defaults()["eval"]["seed"]}
    set_params(env_repo, eval={"games": 6})
    assert "eval_plan:" in dvc(env_repo, "status").stdout
    dvc(env_repo, "repro", "--single-item", "eval_plan")
    assert {"evaluate@base:", "evaluate@sft:", "evaluate@rl:"} <= set(dvc(env_repo, "status").stdout.split())


def test_a_users_environment_file_runs_the_teacher_and_validate_stages(project):
    (project / "docs/examples").mkdir(parents=True)
    shutil.copy(ROOT / "docs/examples/nim.py", project / "docs/examples/nim.py")
    set_params(project, env={"name": "nim", "source": NIM_SOURCE, "nim": NIM}, teacher={"games": 60}, validate={"min_examples": 5})
    for stage in ("teacher", "filter", "validate"):
        result = run_stage(project, stage)
        assert result.returncode == 0, result.stderr
    assert json.loads((project / "metrics/validate.json").read_text())["success"]
    set_params(project, env={"nim": {"class": "docs/examples/nim.py:Nope"}})
    result = run_stage(project, "teacher")
    assert result.returncode == 2 and result.stderr.strip() == "error: env: docs/examples/nim.py has no Environment subclass 'Nope'"


def test_tictactoe_through_the_interface_gives_the_committed_data_and_teacher_metrics(project):
    """The stages that need no training, rerun on the default params: the committed metrics must not move."""
    for stage in ("teacher", "filter", "validate"):
        assert run_stage(project, stage).returncode == 0
    result = subprocess.run([sys.executable, "stages/evaluate.py", "teacher"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("teacher", "filter", "validate", "eval/teacher"):
        assert json.loads((project / f"metrics/{name}.json").read_text()) == json.loads((ROOT / f"metrics/{name}.json").read_text()), name
