"""Multi-turn GRPO through TRL: whole games per completion, a real step on CPU, resume."""

import pytest
import torch

from sftboot.core.config import defaults
from sftboot.core.errors import UserError
from sftboot.engine.environment import game_specs
from sftboot.envs import builtin
from sftboot.training.rl import group_spec, latest_checkpoint, prompt_dataset, train_rl
from sftboot.training.student import load_student

ENV = builtin("tictactoe", max_turns=5)
PARAMS = defaults(
    "rl",
    steps=1,
    games_per_step=8,
    num_generations=4,
    opponents="range",
    num_groups=2,
    max_tokens_per_turn=24,
    max_tokens_per_game=120,
    save_steps=1,
    learning_rate=5e-3,
    temperature=1.0,
    difficulty_min=0.2,
    difficulty_max=0.7,
    forfeit_invalid=False,
)


def test_group_games_open_like_their_prompt():
    for row in prompt_dataset(PARAMS.model_copy(update={"steps": 3}), ENV, seed=0):
        spec = group_spec(row["prompt"], seed=0, step=2, group=1, params=PARAMS, environment=ENV)
        assert ENV.episode(spec).messages == row["prompt"]
        assert PARAMS.difficulty_min + 0.25 - 1e-9 <= spec.p <= PARAMS.difficulty_max + 1e-9


def test_suite_opponents_take_turns_at_the_evaluation_suites():
    params = PARAMS.model_copy(update={"opponents": "suites"})
    prompts = [row["prompt"] for row in prompt_dataset(params.model_copy(update={"steps": 2}), ENV, seed=0)]
    specs = [group_spec(prompt, seed=0, step=1, group=group, params=params, environment=ENV) for group, prompt in enumerate(prompts)]
    assert [spec.p for spec in specs] == [ENV.suites["optimal"], ENV.suites["random"]] * 2  # lowest p first
    assert all(ENV.episode(spec).messages == prompt for spec, prompt in zip(specs, prompts))


def test_suite_opponents_need_a_group_per_suite_each_step(tmp_path):
    params = PARAMS.model_copy(update={"opponents": "suites", "games_per_step": 4})
    with pytest.raises(UserError, match="rl.opponents: suites .* raise rl.games_per_step to 8"):
        train_rl(None, None, params, ENV, seed=0, work_dir=tmp_path, callbacks=[])


def test_a_grpo_step_trains_on_whole_games_and_resumes(tiny_sft_dir, tmp_path):
    model, tokenizer = load_student(tiny_sft_dir)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    trained, history, answers = train_rl(model, tokenizer, PARAMS, ENV, seed=0, work_dir=tmp_path, callbacks=[])
    assert answers["total"] >= 8 and 0 <= answers["at_cap"] <= answers["total"]  # every game answered at least once
    logged = next(entry for entry in history if "reward" in entry)
    assert logged["frac_reward_zero_std"] < 1.0, "no group had reward variance: nothing to learn from"
    for key in ("rewards/outcome_reward/mean", "rewards/format_reward/mean", "rewards/invalid_reward/mean", "rewards/reading_reward/mean", "step_time"):
        assert key in logged
    assert any(not torch.equal(before[name], tensor) for name, tensor in trained.state_dict().items())
    assert latest_checkpoint(tmp_path).name == "checkpoint-1"

    model, tokenizer = load_student(tiny_sft_dir)
    _, resumed, _ = train_rl(model, tokenizer, PARAMS.model_copy(update={"steps": 2}), ENV, seed=0, work_dir=tmp_path, callbacks=[])
    steps = [entry for entry in resumed if "reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    assert steps[0] == logged  # step 1 came back from the checkpoint (a replay would have timed it anew)
    assert latest_checkpoint(tmp_path).name == "checkpoint-2"


def test_groups_start_at_weak_spots_which_are_probed_and_found_anew(tiny_sft_dir, tmp_path):
    from sftboot.envs.tictactoe.teacher import ScriptedTeacher
    from sftboot.evaluation.run import evaluate
    from sftboot.training.weakspots import weak_spots

    evaluation = evaluate(ENV, ScriptedTeacher(skill=1.0, lookahead=0.0), ["random", "optimal"], games=1, seed=0, batch_size=64)
    spots = weak_spots(ENV, evaluation.games, evaluation.moves, limit=8, seed=0)
    params = PARAMS.model_copy(update={"steps": 2, "weak_spots": PARAMS.weak_spots.model_copy(update={"share": 1.0, "refresh_every": 1})})
    params = params.model_copy(update={"probe": params.probe.model_copy(update={"every": 1, "spots": 2, "samples": 4})})
    model, tokenizer = load_student(tiny_sft_dir)
    _, history, answers = train_rl(model, tokenizer, params, ENV, seed=0, work_dir=tmp_path, callbacks=[], spots=spots)
    steps = [entry for entry in history if "reward" in entry]
    assert [entry["spots/spot_groups"] for entry in steps] == [2, 2]  # share 1: every group of both steps
    assert all(0 <= entry["probe/p_best"] <= 1 and 0 <= entry["probe/p_invalid"] <= 1 for entry in steps)
    assert answers["games"] == 16


def test_the_reading_reward_is_the_share_of_answers_that_state_the_board_truly():
    from sftboot.engine.rollout import play_games
    from sftboot.envs.tictactoe.teacher import ScriptedTeacher

    reading = ENV.reward_parts()["reading"].score
    games = play_games(ENV, ScriptedTeacher(skill=1.0), game_specs(4, seed=0, p_min=0.5, p_max=0.5), batch_size=4)
    conversations = games["messages"].to_list()
    assert [reading({"messages": messages}) for messages in conversations] == [1.0] * len(conversations)  # the teacher states them truly
    messages = [dict(message) for message in conversations[0]]
    answers = [index for index, message in enumerate(messages) if message["role"] == "assistant"]
    first = messages[answers[0]]
    first["content"] = (
        first["content"].replace("Threats: none.", "Threats: 4.", 1)
        if "Threats: none." in first["content"]
        else first["content"].replace("Threats: ", "Threats: 9, ", 1)
    )
    assert reading({"messages": messages}) == pytest.approx(1 - 1 / len(answers))  # one misread answer of the game
    assert list(builtin("mastermind").reward_parts()) == ["outcome", "format", "invalid"]  # Mastermind states no facts to judge


def test_an_environment_adds_a_reward_part_that_rl_weighs(tiny_sft_dir, tmp_path):
    """A reward part is the environment's: named by it, weighed by `rl.reward_weights.<name>`, logged by TRL; a weight
    for a part it lacks, or a part without a weight, is refused in one line."""
    from sftboot.engine.environment import RewardPart
    from sftboot.envs.tictactoe import TicTacToe

    class Brief(TicTacToe):
        def reward_parts(self):
            return super().reward_parts() | {"brevity": RewardPart("1 for games of at most 3 turns", lambda game: float(game["turns"] <= 3))}

    env = Brief(ENV.params)
    with pytest.raises(UserError, match=r"rl\.reward_weights\.brevity: missing; weigh tictactoe's part 'brevity'"):
        train_rl(None, None, PARAMS, env, seed=0, work_dir=tmp_path, callbacks=[])
    with pytest.raises(UserError, match=r"rl\.reward_weights\.speed: tictactoe has no reward part 'speed'"):
        train_rl(None, None, PARAMS.model_copy(update={"reward_weights": PARAMS.reward_weights | {"speed": 1.0}}), ENV, seed=0, work_dir=tmp_path, callbacks=[])
    model, tokenizer = load_student(tiny_sft_dir)
    params = PARAMS.model_copy(update={"reward_weights": PARAMS.reward_weights | {"brevity": 0.5}})
    _, history, _ = train_rl(model, tokenizer, params, env, seed=0, work_dir=tmp_path, callbacks=[])
    logged = next(entry for entry in history if "reward" in entry)
    assert 0.0 <= logged["rewards/brevity_reward/mean"] <= 1.0


def test_imitation_mixes_the_teachers_sound_answers_into_each_rl_step(tiny_sft_dir, kept_games, tmp_path):
    """rl.imitation adds next-token loss on the teacher's kept games to GRPO's loss: on its answers alone, and only
    those that keep the position's value; logged per step, it leaves the student closer to those games than RL without it."""
    from sftboot.envs.tictactoe.exact import keeps_value
    from sftboot.training.imitation import ImitationMix

    model, tokenizer = load_student(tiny_sft_dir)
    env = builtin("tictactoe", max_turns=8)
    mix = ImitationMix.from_games(kept_games, env, tokenizer, batch_size=4, seed=0)
    verdicts = [env.sound_answers(game) for game in kept_games.iter_rows(named=True)]
    assert 0 < sum(not sound for game in verdicts for sound in game)  # the teacher slips (skill 0.9), and those slips are judged
    assert not keeps_value("XX  O O  ", 8) and keeps_value("XX  O O  ", 2)  # X misses its win at 2, where O then wins
    for (ids, labels), game in zip(mix.examples, verdicts):
        answered = tokenizer.decode(ids[labels != -100])
        assert answered.count("<move>") == sum(game)  # one labelled answer per sound move, the slips unlabelled
        assert "Available positions" not in answered and "Your turn" not in answered  # the environment's turns carry no loss
    after = {}
    for weight in (0.0, 1.0):
        params = PARAMS.model_copy(update={"steps": 2, "imitation": PARAMS.imitation.model_copy(update={"weight": weight})})
        model, tokenizer = load_student(tiny_sft_dir)
        trained, history, _ = train_rl(model, tokenizer, params, ENV, seed=0, work_dir=tmp_path / str(weight), callbacks=[], teacher_games=kept_games)
        assert all(("imitation_loss" in entry) == bool(weight) for entry in history if "reward" in entry)
        with torch.no_grad():
            after[weight] = sum(mix.loss(trained, step).item() for step in range(8))
    assert after[1.0] < after[0.0]
