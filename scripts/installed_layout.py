"""Run a static checker (mypy, lint-imports) on the package laid out as it installs.

setuptools `package-dir` maps `convert/` and `runtime/` to `edgeseg.convert` / `edgeseg.runtime`.
mypy and import-linter find modules by folder and cannot follow that mapping: mypy would check a
top-level `convert` package and treat every `edgeseg.convert` import as missing, import-linter
would not see those packages at all. So the sources are copied to `build/installed/` under their
import names (as a wheel installs them), the command runs there with the same pyproject.toml, and
its output is printed with the paths mapped back to the repository's files.

Usage: python scripts/installed_layout.py mypy|lint-imports [ARGS...]   (exit status: the tool's)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "build" / "installed"


def package_dirs() -> dict[str, str]:
    """Import name -> source folder, from [tool.setuptools] package-dir."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return mapping


def lay_out(mapping: dict[str, str], dest: Path) -> None:
    """A fresh copy of each mapped folder at `dest/<import path>`, plus pyproject.toml."""
    shutil.rmtree(dest, ignore_errors=True)
    for name, folder in sorted(mapping.items()):
        shutil.copytree(
            REPO / folder,
            dest.joinpath(*name.split(".")),
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")


def map_back(text: str, mapping: dict[str, str]) -> str:
    """`edgeseg/convert/x.py` -> `convert/x.py`, longest import path first."""
    for name in sorted(mapping, key=len, reverse=True):
        installed, source = name.replace(".", "/") + "/", mapping[name].rstrip("/") + "/"
        if installed != source:
            text = text.replace(installed, source)
    return text


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    mapping = package_dirs()
    lay_out(mapping, TREE)
    tool = shutil.which(argv[0], path=str(Path(sys.executable).parent)) or argv[0]
    proc = subprocess.run([tool, *argv[1:]], cwd=TREE, capture_output=True, text=True, check=False)
    sys.stdout.write(map_back(proc.stdout, mapping))
    sys.stderr.write(map_back(proc.stderr, mapping))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
