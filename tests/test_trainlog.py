from sftboot.trainlog import log_summary


def test_stage_summary_counts_trainer_steps_not_log_lines():
    """SFT logs once every 2 % of its steps; metrics/sft.json must still say how many steps ran."""
    history = [{"loss": 2.0, "step": 10}, {"loss": 1.0, "step": 20}, {"loss": 0.5, "step": 25}, {"train_runtime": 3.21, "step": 25}]
    assert log_summary(history, "loss") == {"steps": 25, "first_loss": 2.0, "final_loss": 0.5, "seconds": 3.2}
