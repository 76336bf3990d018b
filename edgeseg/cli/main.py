"""The `edgeseg` command: train -> convert -> check -> run, each stage a subcommand."""

from __future__ import annotations

import typer

from edgeseg import __version__

app = typer.Typer(
    name="edgeseg",
    help=(
        "Semantic segmentation from laptop to embedded hardware.\n\n"
        "train a U-Net on image+mask pairs, convert it to int8 TFLite, check the accuracy drop, "
        "and run it on a camera (Raspberry Pi, Coral Edge TPU)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeseg {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Semantic segmentation from laptop to embedded hardware."""


def _register() -> None:
    # Each command module is light at import time: heavy stages load inside the command body.
    # (one import + one app.command line per command module; keep alphabetical by command)
    from edgeseg.cli import (
        bench_cmd,
        check_cmd,
        convert_cmd,
        demo_cmd,
        eval_cmd,
        info_cmd,
        run_cmd,
        train_cmd,
    )
    from edgeseg.cli.quiet import quiet_command as q

    app.command("bench")(q(bench_cmd.bench_command))
    app.command("check")(q(check_cmd.check_command))
    app.command("convert")(q(convert_cmd.convert))
    app.command("demo")(q(demo_cmd.demo))
    app.command("eval")(q(eval_cmd.eval_command))
    app.command("info")(q(info_cmd.info))
    app.command("run")(q(run_cmd.run_command))
    app.command("train")(q(train_cmd.train))


_register()
