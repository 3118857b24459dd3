"""Trainer callbacks both training backends add: the default one (``bgetune.training.trainer``) and FlagEmbedding's
runner (``bgetune.training.flagembedding_main``), which imports this module alone rather than the default trainer.

Example::

    trainer = SentenceTransformerTrainer(..., callbacks=[LogTheLastStep()])
    runner.trainer.add_callback(LogTheLastStep())      # FlagEmbedding's runner
"""
from __future__ import annotations

from transformers import TrainerCallback


class LogTheLastStep(TrainerCallback):
    """The Trainer logs the loss every ``logging_steps`` (train.log_every) only, so the steps after the last multiple
    (31–34 of 34 at 5; the whole of a 3-step trial) were never logged: the summary's final loss was an older
    window's, or None. Logging at the last step records their mean (the Trainer averages since its previous log)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_log = True
        return control
