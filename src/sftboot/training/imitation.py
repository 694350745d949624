"""The teacher's answers mixed into RL's loss (PPO-ptx, as in InstructGPT): a small student's RL moves
the weights its reading of the task shares with its decisions; next-token loss on a few SFT games each
step holds that reading where SFT left it, while the policy gradient moves the decisions. Answers the
environment judges to give up the position's value carry no loss: imitating the teacher's slips would
pull back the very moves RL is fixing."""

from __future__ import annotations

import random

import torch

from sftboot.core.errors import UserError


class ImitationMix:
    """Tokenized SFT games (sound answers as labels, everything else masked) and the batch each RL step draws."""

    @classmethod
    def from_games(cls, games, environment, tokenizer, batch_size: int, seed: int) -> ImitationMix:
        """From the teacher's kept games (a games frame), as the SFT data holds them, judged by `environment`."""
        from sftboot.data.dataset import sft_records

        return cls(sft_records(games), tokenizer, batch_size, seed, [environment.sound_answers(game) for game in games.iter_rows(named=True)])

    def __init__(self, records: list[dict], tokenizer, batch_size: int, seed: int, sound: list[list[bool] | None] | None = None):
        """`sound[i][k]`: whether record i's k-th answer is imitated (None: every answer of the record)."""
        from trl.chat_template_utils import has_generation_markers

        if not has_generation_markers(tokenizer.chat_template):
            raise UserError(
                "rl.imitation.weight: the student's chat template has no {% generation %} markers to tell its answers from the "
                "environment's turns; add them around the assistant turn in its chat_template.jinja, or set rl.imitation.weight: 0"
            )
        self.examples = []
        for record, verdicts in zip(records, sound or [None] * len(records)):
            encoded = tokenizer.apply_chat_template(record["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            ids, mask = encoded["input_ids"], list(encoded["assistant_masks"])
            if verdicts is not None:
                mask = _answers_kept(mask, verdicts)
            self.examples.append((torch.tensor(ids), torch.tensor([token if keep else -100 for token, keep in zip(ids, mask)])))
        self.batch_size, self.seed, self.pad = batch_size, seed, tokenizer.pad_token_id

    def loss(self, model, step: int, process: int = 0) -> torch.Tensor:
        """Mean next-token loss over the answers of the games drawn for (step, process): the same draw on a resumed run."""
        drawn = random.Random(f"imitation:{self.seed}:{step}:{process}").sample(self.examples, min(self.batch_size, len(self.examples)))
        ids = torch.nn.utils.rnn.pad_sequence([ids for ids, _ in drawn], batch_first=True, padding_value=self.pad)
        labels = torch.nn.utils.rnn.pad_sequence([labels for _, labels in drawn], batch_first=True, padding_value=-100)
        attention = torch.arange(ids.shape[1]) < torch.tensor([[len(ids)] for ids, _ in drawn])
        device = next(model.parameters()).device
        return model(input_ids=ids.to(device), attention_mask=attention.long().to(device), labels=labels.to(device)).loss


def _answers_kept(mask: list[int], verdicts: list[bool]) -> list[int]:
    """The assistant mask with the spans of the answers judged unsound cleared (span k is answer k)."""
    starts = {index for index, keep in enumerate(mask) if keep and (index == 0 or not mask[index - 1])}
    if len(starts) != len(verdicts):
        raise ValueError(f"{len(starts)} answer spans in the template's mask for {len(verdicts)} judged answers")
    kept, answer = [], -1
    for index, keep in enumerate(mask):
        answer += index in starts
        kept.append(int(keep and verdicts[answer]))
    return kept


def imitating_trainer(mix: ImitationMix | None, weight: float):
    """TRL's GRPOTrainer, its loss plus `weight` times the mix's loss on every step (the trainer itself when there is no mix)."""
    from trl import GRPOTrainer

    if mix is None:
        return GRPOTrainer

    class ImitatingGRPOTrainer(GRPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            imitation = mix.loss(model, self.state.global_step, self.accelerator.process_index)
            self._metrics["train"]["imitation_loss"].append(imitation.item())
            return loss + weight * imitation

    return ImitatingGRPOTrainer
