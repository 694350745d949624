"""Batched, KV-cached student generation: same answers as one game at a time, exact token streams."""

import pytest
import torch

from sftboot.engine.environment import GameSpec, game_specs
from sftboot.engine.generation import StudentPolicy
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin
from sftboot.training.student import load_student


@pytest.fixture(scope="module")
def student(tiny_model_dir):
    model, tokenizer = load_student(tiny_model_dir)
    model.eval()
    return model, tokenizer


def test_batched_greedy_games_equal_one_at_a_time(student):
    model, tokenizer = student
    specs = game_specs(6, seed=3, p_min=0.0, p_max=1.0, num_groups=2)
    batched = play_games(builtin("tictactoe", max_turns=6), StudentPolicy(model, tokenizer, max_tokens_per_turn=12), specs, batch_size=6)
    single = play_games(builtin("tictactoe", max_turns=6), StudentPolicy(model, tokenizer, max_tokens_per_turn=12), specs, batch_size=1)
    assert batched["messages"].to_list() == single["messages"].to_list()


def test_traces_hold_exactly_the_played_tokens(student):
    model, tokenizer = student
    policy = StudentPolicy(model, tokenizer, max_tokens_per_turn=10, temperature=1.0, max_tokens_per_game=45, record_traces=True, seed=1)
    games = play_games(builtin("tictactoe", max_turns=6), policy, game_specs(5, seed=0, p_min=1.0, p_max=1.0), batch_size=5)
    for row in games.iter_rows(named=True):
        mask, completion, logprobs = row["env_mask"], row["completion_ids"], row["sampling_logprobs"]
        assert len(mask) == len(completion) == len(logprobs)
        assert sum(mask) == row["completion_tokens"] <= 45
        assert all(lp == 0.0 for lp, m in zip(logprobs, mask) if not m)
        assert all(lp < 0 and lp > -1e4 for lp, m in zip(logprobs, mask) if m)
        # the model's tokens, decoded, are the game's assistant messages
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        runs, run = [], []
        for token, from_model in zip(completion, mask):
            if from_model:
                run.append(token)
            elif run:
                runs, run = runs + [tokenizer.decode(run, skip_special_tokens=True)], []
        runs += [tokenizer.decode(run, skip_special_tokens=True)] if run else []
        assert [text for text in runs if text] == [text for text in answers if text]
        # the sampling log-probs are the model's own, recomputed on the whole sequence
        ids = torch.tensor([row["prompt_ids"] + completion])
        with torch.no_grad():
            full = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
        start = len(row["prompt_ids"]) - 1
        recomputed = full[start:].gather(-1, torch.tensor(completion).unsqueeze(-1)).squeeze(-1)
        model_positions = torch.tensor(mask).bool()
        assert torch.allclose(recomputed[model_positions], torch.tensor(logprobs)[model_positions], atol=1e-4)
        # and the environment scored the game as a replay of the same answers does
        again = builtin("tictactoe", max_turns=6).replay(GameSpec(row["game_id"], row["seed"], row["p"]), answers)
        assert again.rewards().total == pytest.approx(row["reward_total"])


def test_sampling_is_seeded(student):
    model, tokenizer = student
    specs = game_specs(4, seed=0, p_min=0.5, p_max=0.5)

    def play(seed):
        policy = StudentPolicy(model, tokenizer, max_tokens_per_turn=8, temperature=1.0, seed=seed)
        return play_games(builtin("tictactoe", max_turns=5), policy, specs, batch_size=4)["messages"].to_list()

    assert play(7) == play(7)
    assert play(7) != play(8)


def test_answers_cut_by_the_token_budget_are_counted(tiny_sft_dir):
    model, tokenizer = load_student(tiny_sft_dir)
    specs = game_specs(4, seed=0, p_min=1.0, p_max=1.0)
    cut = play_games(builtin("tictactoe", max_turns=5), StudentPolicy(model.eval(), tokenizer, max_tokens_per_turn=4), specs, batch_size=4)
    assert (cut["answers_at_cap"] == cut["turns"]).all()  # no answer fits in 4 tokens
    whole = play_games(builtin("tictactoe", max_turns=5), StudentPolicy(model, tokenizer, max_tokens_per_turn=32), specs, batch_size=4)
    assert whole["answers_at_cap"].sum() < whole["well_formed_turns"].sum()  # most answers end by themselves
    assert (whole["answers_at_cap"] <= whole["completion_tokens"] // 32).all()  # each cut answer spent all 32 tokens
