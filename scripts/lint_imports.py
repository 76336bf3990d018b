"""Check the import contracts in pyproject.toml ([tool.importlinter]) with import-linter.

`convert/` and `runtime/` become `edgeseg.convert` / `edgeseg.runtime` through setuptools
`package-dir`; import-linter's graph builder (grimp) walks one folder per top-level package and
cannot follow that mapping. So the sources are first laid out under their import names in a
temporary folder (as a wheel would install them), and the contracts are checked there.

Usage: python scripts/lint_imports.py [--verbose]   (exit 0: all contracts kept)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lay_out(package_dir: dict[str, str], dest: Path) -> None:
    """Copy each mapped source folder to `dest/<import path>` (the installed layout)."""
    for name, folder in sorted(package_dir.items()):
        shutil.copytree(
            REPO / folder,
            dest.joinpath(*name.split(".")),
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


def main(argv: list[str]) -> int:
    from importlinter.cli import lint_imports

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dir: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory(prefix="edgeseg-lint-imports-") as tmp:
        lay_out(package_dir, Path(tmp))
        sys.path.insert(0, tmp)  # ahead of the editable install's finder
        os.chdir(tmp)  # import-linter puts the working folder first on sys.path
        for name in [m for m in sys.modules if m == "edgeseg" or m.startswith("edgeseg.")]:
            del sys.modules[name]
        return lint_imports(
            config_filename=str(REPO / "pyproject.toml"),
            no_cache=True,
            no_logo=True,
            verbose="--verbose" in argv,
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
