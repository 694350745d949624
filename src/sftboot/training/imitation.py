"""The teacher's answers mixed into RL's loss (PPO-ptx, as in InstructGPT): a small student's RL moves
the weights its reading of the task shares with its decisions; next-token loss on a few SFT games each
step holds that reading where SFT left it, while the policy gradient moves the decisions."""

from __future__ import annotations

import random

import torch


class ImitationMix:
    """Tokenized SFT games (answers as labels, everything else masked) and the batch each RL step draws."""

    def __init__(self, records: list[dict], tokenizer, batch_size: int, seed: int):
        self.examples = []
        for record in records:
            encoded = tokenizer.apply_chat_template(record["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            ids, mask = encoded["input_ids"], encoded["assistant_masks"]
            self.examples.append((torch.tensor(ids), torch.tensor([token if keep else -100 for token, keep in zip(ids, mask)])))
        self.batch_size, self.seed, self.pad = batch_size, seed, tokenizer.pad_token_id

    def loss(self, model, step: int, process: int = 0) -> torch.Tensor:
        """Mean next-token loss over the answers of the games drawn for (step, process): the same draw on a resumed run."""
        drawn = random.Random(f"imitation:{self.seed}:{step}:{process}").sample(self.examples, self.batch_size)
        ids = torch.nn.utils.rnn.pad_sequence([ids for ids, _ in drawn], batch_first=True, padding_value=self.pad)
        labels = torch.nn.utils.rnn.pad_sequence([labels for _, labels in drawn], batch_first=True, padding_value=-100)
        attention = torch.arange(ids.shape[1]) < torch.tensor([[len(ids)] for ids, _ in drawn])
        device = next(model.parameters()).device
        return model(input_ids=ids.to(device), attention_mask=attention.long().to(device), labels=labels.to(device)).loss


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
