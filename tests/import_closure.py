"""The package modules a stage script runs: its import closure, lazy imports inside functions included.

Every import statement anywhere in a file counts (a stage imports most modules inside functions, so they load only
when used); a package's ``__init__.py`` counts when anything under it is imported; so does a module named by a whole
string such as ``"bgetune.training.flagembedding_main"``, which a stage runs in a subprocess (``python -m``). Paths are
relative to the repo.

Example::

    closure(REPO / "stages/train.py")   # {"stages/_common.py", "src/bgetune/steps/train.py", ...}
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    parts = name.split(".")
    base = SRC.joinpath(*parts)
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    return None


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and re.fullmatch(r"bgetune(\.\w+)+", node.value) and module_file(node.value) is not None):
            names.add(node.value)   # a module the stage runs as ``python -m`` in a subprocess
    return names


def closure(script: Path) -> set[str]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            if name == "_common" or name.startswith("_common."):
                todo.append(script.parent / "_common.py")
                continue
            if not name.startswith("bgetune"):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:i]))
                if found is not None:
                    todo.append(found)
    return {str(p.relative_to(REPO)) for p in seen}


def code_deps(script: Path) -> list[str]:
    """The closure as dvc.yaml lists it: a folder stands for all its .py files when every one is in the closure."""
    files = closure(script)
    deps = set(files)
    folders = sorted({str(Path(f).parent) for f in files if f.startswith("src/bgetune/")}, key=len)
    for folder in folders:
        if folder == "src/bgetune":
            continue
        inside = {str(p.relative_to(REPO)) for p in (REPO / folder).rglob("*.py")}
        if inside and inside <= files:
            deps -= inside
            deps = {d for d in deps if not d.startswith(folder + "/")}
            deps.add(folder)
    return sorted(deps)


def expand(deps: list[str]) -> set[str]:
    """dvc.yaml code deps back to files (a folder → its .py files)."""
    out = set()
    for dep in deps:
        path = REPO / dep
        if path.is_dir():
            out |= {str(p.relative_to(REPO)) for p in path.rglob("*.py")}
        elif dep.endswith(".py"):
            out.add(dep)
    return out


STAGE_SCRIPTS = {"split": "split", "qa-gen": "qa_gen", "vocab": "vocab", "mine-negatives": "mine_negatives",
                 "train": "train", "rerank": "rerank", "merge": "merge", "evaluate": "evaluate",
                 "evaluate-base": "evaluate", "evaluate-bm25": "evaluate", "evaluate-extra": "evaluate", "report": "report", "publish": "publish"}


if __name__ == "__main__":
    # python tests/import_closure.py: rewrite the code deps of dvc.yaml from the import closures (comments kept).
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = REPO / "dvc.yaml"
    document = yaml.load(path.read_text())
    for stage, script in STAGE_SCRIPTS.items():
        body = document["stages"][stage]
        body = body["do"] if "do" in body else body
        deps = body["deps"]
        # Code deps deleted in place (not the list cleared) so that the data deps keep their trailing comments.
        for index in reversed(range(len(deps))):
            if str(deps[index]).endswith(".py") or str(deps[index]).startswith("src/"):
                del deps[index]
        deps.extend(code_deps(REPO / "stages" / f"{script}.py"))
    yaml.dump(document, path)
