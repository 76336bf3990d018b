"""`python -m edgeseg ...`: the `edgeseg` command, for when the environment's bin/ is not on PATH
(a Pi's `--user` install, a venv not activated)."""

from edgeseg.cli.main import app

if __name__ == "__main__":
    app(prog_name="edgeseg")
