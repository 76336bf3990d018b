"""The `edgeseg` command: train -> convert -> check -> run, each stage a subcommand."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from edgeseg import __version__
from edgeseg.cli.common import fail


class TidyCommand(TyperCommand):
    """A command whose --help reads as a Unix tool's: a flag shows no `<bool>` beside it (it
    takes no value) and an argument is named in capitals (`MODEL`, not `{model}`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "argument" and param.nargs != 1:
                # `<path>`, as every other path shows, not Typer's `<list[Path]>`
                shown = getattr(param, "display_type_rich")  # noqa: B009 (Typer's, not click's)
                object.__setattr__(param, "display_type_rich", _element_type(shown))
            if param.metavar is not None:
                continue
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif param.param_type_name == "argument" and param.name:
                param.metavar = param.name.upper()

    def get_help_option(self, ctx: Any) -> Any:
        return _flag_look(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`[OPTIONS] MODEL`, `[OPTIONS] [DATA]`: arguments as Unix usage lines name them."""
        pieces = ["[OPTIONS]"] if self.get_params(ctx) else []
        for param in self.params:
            if param.param_type_name != "argument":
                continue
            name = str(param.metavar or (param.name or "").upper())
            if " " not in name:  # a metavar that is a usage of its own is kept as written
                name = name if param.required else f"[{name}]"
                name += "..." if param.nargs != 1 else ""
            pieces.append(name)
        return pieces


def _element_type(shown: Any) -> Any:
    """Typer's type label for help, a list type shown as its element type (`<list[Path]>` ->
    `<path>`)."""

    def display(ctx: Any) -> str | None:
        label = shown(ctx)
        return None if label is None else re.sub(r"list\[(\w+)\]", lambda m: m[1].lower(), label)

    return display


HELP_OPTIONS = ["-h", "--help"]


def _flag_look(option: Any) -> Any:
    """The --help option without a `<bool>` beside it: a flag takes no value."""
    if option is not None:
        option.metavar = ""
    return option


class OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a value out of range) as the one `error:` line every
    other failure is, naming the command's --help, instead of Typer's usage box."""

    def get_help_option(self, ctx: Any) -> Any:
        return _flag_look(super().get_help_option(ctx))

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
        "Train a U-Net on image+mask pairs, convert it to int8 TFLite, check the accuracy drop, "
        "and run it on a camera (Raspberry Pi, Coral Edge TPU)."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": HELP_OPTIONS},  # -h too, in every command
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
        False,
        "--version",
        callback=_version,
        is_eager=True,
        metavar="",
        help="Print the version.",
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

    tidy = TidyCommand
    app.command("bench", cls=tidy)(q(bench_cmd.bench_command))
    app.command("check", cls=tidy)(q(check_cmd.check_command))
    app.command("convert", cls=tidy)(q(convert_cmd.convert))
    app.command("demo", cls=tidy)(q(demo_cmd.demo))
    app.command("eval", cls=tidy)(q(eval_cmd.eval_command))
    app.command("info", cls=tidy)(q(info_cmd.info))
    app.command("run", cls=tidy)(q(run_cmd.run_command))
    app.command("train", cls=tidy)(q(train_cmd.train))


_register()
