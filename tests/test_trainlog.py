from sftboot.training.trainlog import log_summary


def test_stage_summary_counts_trainer_steps_not_log_lines():
    """SFT logs once every 2 % of its steps; metrics/sft.json must still say how many steps ran."""
    history = [{"loss": 2.0, "step": 10}, {"loss": 1.0, "step": 20}, {"loss": 0.5, "step": 25}, {"train_runtime": 3.21, "step": 25}]
    summary = log_summary(history, "loss")
    assert summary["steps"] == 25 and summary["first_loss"] == 2.0 and summary["final_loss"] == 0.5
    assert "seconds" not in summary  # clock time lives in metrics/timings/, out of `dvc metrics diff`


def test_the_trend_is_a_mean_over_a_tenth_of_the_run_not_one_noisy_step():
    rewards = [0.9, 0.1] * 10 + [0.95, 0.15] * 10  # noisy steps around 0.5, then around 0.55
    history = [{"reward": reward, "step": step + 1} for step, reward in enumerate(rewards)]
    summary = log_summary(history, "reward")
    assert summary["first_reward"] == 0.9 and summary["final_reward"] == 0.15  # single steps: a fall of 0.75
    assert summary["reward_mean_first_tenth"] == 0.5 and summary["reward_mean_last_tenth"] == 0.55  # the trend: a rise
