"""evaluate <name>: one retriever on the test split — base | finetuned | merged | bm25 | extra <key>."""
import sys

from _common import run, start

from bgetune.steps import evaluate

NAMES = ("base", "finetuned", "merged", "bm25")


def main() -> None:
    if not (len(sys.argv) == 2 and sys.argv[1] in NAMES) and not (len(sys.argv) == 3 and sys.argv[1] == "extra"):
        sys.exit("usage: python stages/evaluate.py base|finetuned|merged|bm25, or: python stages/evaluate.py extra "
                 "<key>")
    if sys.argv[1] == "extra":
        params = start(f"evaluate extra {sys.argv[2]}")
        if sys.argv[2] not in params.eval.extra_models:
            sys.exit(f"[evaluate] eval.extra_models has no model named {sys.argv[2]!r}")
        run("evaluate", evaluate.run, params, f"extra_{sys.argv[2]}",
            extra_reference=params.eval.extra_models[sys.argv[2]])
    else:
        run("evaluate", evaluate.run, start(f"evaluate {sys.argv[1]}"), sys.argv[1])


# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    main()
