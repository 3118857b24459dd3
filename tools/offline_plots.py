"""Make `dvc plots show` work offline: vega, vega-lite and vega-embed (the versions DVC's renderer asks for) are
fetched once from the npm registry, inlined into an HTML template, and the repository's local DVC config points
`plots.html_template` at it. Without this DVC's page loads them from a CDN and the plots are blank offline.

    python tools/offline_plots.py          # run by `make setup`; needs npm (Node.js)

The template has no `{scripts}` placeholder, so the CDN script tags DVC would add are never written.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"vega@5.20.2": "package/build/vega.min.js", "vega-lite@5.2.0": "package/build/vega-lite.min.js",
            "vega-embed@6.18.2": "package/build/vega-embed.min.js"}
TEMPLATE = ROOT / ".dvc" / "plots" / "offline.html"


def fetch_scripts() -> list[str]:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js to make `dvc plots show` work offline (plots then load "
                         "vega from a CDN)")
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", "--silent", *PACKAGES], cwd=tmp, check=True, capture_output=True, timeout=300)
        for spec, member in PACKAGES.items():
            name, version = spec.rsplit("@", 1)
            with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as archive:
                scripts.append(archive.extractfile(member).read().decode("utf-8"))
    return scripts


def write_template(scripts: list[str]) -> None:
    escaped = [s.replace("</script", "<\\/script") for s in scripts]   # a literal end tag would end the element
    inline = "\n".join(f"<script>\n{s}\n</script>" for s in escaped)
    page = ("<!DOCTYPE html>\n<html>\n<head>\n{refresh_tag}\n<meta charset=\"utf-8\">\n<title>DVC Plot</title>\n"
            f"{inline}\n<style>table {{ border-spacing: 15px; }}</style>\n</head>\n<body>\n{{plot_divs}}\n"
            "</body>\n</html>\n")
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_text(page, encoding="utf-8")


def main() -> None:
    if not TEMPLATE.exists():
        write_template(fetch_scripts())
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", "plots/offline.html"],
                   cwd=ROOT, check=True)
    print(f"dvc plots show: offline template {TEMPLATE.relative_to(ROOT)} ({TEMPLATE.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
