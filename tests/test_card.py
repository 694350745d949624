"""Model cards: the origin's licence and hub id flow into every card, and the report stage completes them with the evaluation."""

import huggingface_hub.constants
from conftest import ROOT
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.errors import EntryNotFoundError

import sftboot.training.card
from sftboot.core.config import load_params
from sftboot.training.card import completed_card, inherited, origin, write_card


def _card_folder(folder, **data):
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(f"---\n{ModelCardData(**data).to_yaml()}\n---\n\n# a model\n")
    return folder


def test_the_origin_comes_from_the_models_own_card(tmp_path, monkeypatch):
    assert origin("builtin:tiny") == {"license": "mit", "base_model": None}
    snapshot = _card_folder(tmp_path / "hub/models--LiquidAI--LFM2-350M/snapshots/0123abc", license="other", license_name="lfm1.0", license_link="LICENSE")
    assert origin(str(snapshot)) == {"base_model": "LiquidAI/LFM2-350M", "license": "other", "license_name": "lfm1.0", "license_link": "LICENSE"}
    finetuned = _card_folder(tmp_path / "mine", license="apache-2.0", base_model="Qwen/Qwen3-0.6B")
    assert origin(str(finetuned))["base_model"] == "Qwen/Qwen3-0.6B" and origin(str(finetuned))["license"] == "apache-2.0"
    assert origin(str(tmp_path))["license"] is None  # a folder without a card: nothing is made up
    asked = []

    def hub(repo, filename, revision=None):  # the hub, for two repositories: one with a card, one without
        asked.append((repo, filename, revision))
        if repo != "Qwen/Qwen3-0.6B":
            raise EntryNotFoundError(f"{repo} has no {filename}")
        return str(finetuned / "README.md")

    monkeypatch.setattr(sftboot.training.card, "hf_hub_download", hub)
    assert origin("Qwen/Qwen3-0.6B", revision="abc123")["license"] == "apache-2.0" and asked == [("Qwen/Qwen3-0.6B", "README.md", "abc123")]
    assert origin("someorg/cardless")["license"] is None
    monkeypatch.undo()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import: the environment variable comes too late
    assert origin("someorg/unreachable") == {"base_model": "someorg/unreachable", "license": None, "license_name": None, "license_link": None}


def test_trained_cards_inherit_the_origin_and_the_report_adds_the_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = load_params()
    base, sft = tmp_path / "base", tmp_path / "sft"
    base.mkdir(), sft.mkdir()
    snapshot = _card_folder(tmp_path / "models--Qwen--Qwen3-0.6B/snapshots/1", license="apache-2.0")
    write_card(base, "base", params, {}, origin(str(snapshot)))
    write_card(sft, "sft", params, {"SFT steps": 3}, inherited(base))
    data = ModelCard.load(sft / "README.md").data
    assert (data.license, data.base_model) == ("apache-2.0", "Qwen/Qwen3-0.6B")
    evaluation = {
        suite: {"kind": "exact", **{key: {"pct": 10.0 * i} for i, key in enumerate(("win", "draw", "loss", "format", "invalid_games"))}}
        for suite in ("random", "optimal")
    }
    (tmp_path / "done.md").write_text(completed_card(sft / "README.md", "sft", "tictactoe", evaluation))
    done = ModelCard.load(tmp_path / "done.md")
    assert done.data.license == "apache-2.0" and done.data.model_name == "sftboot-tictactoe-sft"
    results = {(result.dataset_config, result.metric_type): result.metric_value for result in done.data.eval_results}
    assert results[("optimal", "draw")] == 10.0 and results[("random", "invalid_games")] == 40.0 and len(results) == 10
    assert "## Evaluation results" in done.text and "| optimal | exact | 0.00 | 10.00 | 20.00 | 30.00 | 40.00 |" in done.text
