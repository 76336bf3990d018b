"""The `edgeseg` command: train -> convert -> check -> run, each stage a subcommand."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from edgeseg import __version__
from edgeseg.cli.common import fail


class OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a value out of range) as the one `error:` line every
    other failure is, naming the command's --help, instead of Typer's usage box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            sys.exit(fail("aborted", 1).exit_code)
        except Exception as exc:
            # Click's usage errors; Typer vendors Click, so they are told by their class names
            kinds = {kind.__name__ for kind in type(exc).__mro__}
            if "ClickException" not in kinds:
                raise
            if "NoArgsIsHelpError" in kinds:  # `edgeseg` alone: the help is the answer
                sys.exit(2)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            sys.exit(fail(f"{exc.format_message()}{hint}", exc.exit_code).exit_code)  # type: ignore[attr-defined]
        sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


app = typer.Typer(
    cls=OneLineErrors,
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
