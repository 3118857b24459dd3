"""One module per pipeline stage, named like the stage: each reads its inputs, calls the concept modules, and
writes its outputs together (``bgetune.outputs``). The scripts in ``stages/`` only load params.yaml and call
``run``, so the same code runs from DVC, a test or a notebook."""
