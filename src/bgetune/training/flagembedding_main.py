"""``python -m bgetune.training.flagembedding_main ARGS``: FlagEmbedding's encoder-only trainer, then its state saved.

It parses ARGS and runs exactly as ``python -m FlagEmbedding.finetune.embedder.encoder_only.base`` does (the same
three argument classes and runner), with one callback added (``LogTheLastStep``: the last steps' loss is logged, as
on the default backend), then calls the HF Trainer's own ``save_state()``. FlagEmbedding's module stops after
``save_model()`` and the train stage runs it with ``save_strategy: no``, so without this the Trainer's log history —
the loss of each logging window, the learning rate, the steps taken — would end with the process, and
results/train.json, the curves and the model card would have nothing to say about the run. The train stage reads
``trainer_state.json`` from the output folder (rank 0 writes it; save_state checks that itself).

Example::

    python -m bgetune.training.flagembedding_main --model_name_or_path models/base --train_data train.jsonl \\
        --output_dir out --save_strategy no      # → out/model.safetensors, out/trainer_state.json
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    from FlagEmbedding.finetune.embedder.encoder_only.base import (
        EncoderOnlyEmbedderDataArguments,
        EncoderOnlyEmbedderModelArguments,
        EncoderOnlyEmbedderRunner,
        EncoderOnlyEmbedderTrainingArguments,
    )

    parser = HfArgumentParser((EncoderOnlyEmbedderModelArguments, EncoderOnlyEmbedderDataArguments,
                               EncoderOnlyEmbedderTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    runner = EncoderOnlyEmbedderRunner(model_args=model_args, data_args=data_args, training_args=training_args)
    # The steps after the last full logging window are logged too, as on the default backend.
    from bgetune.training.callbacks import LogTheLastStep

    runner.trainer.add_callback(LogTheLastStep())
    runner.run()
    runner.trainer.save_state()


if __name__ == "__main__":
    main()
