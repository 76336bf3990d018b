"""What users type: choices in --help, an example in every command's help, WIDTHxHEIGHT camera
sizes, `--source 0`, errors naming the option typed, and --verbose on every command."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edgeseg.cli.main import app
from edgeseg.runtime.sources import CameraSource, ImageFolderSource, open_source

runner = CliRunner()
COMMANDS = ("bench", "check", "convert", "demo", "eval", "info", "run", "train")


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_an_example_and_verbose(command: str) -> None:
    code, out = cli(command, "--help")
    assert code == 0
    assert "Example" in out and f"edgeseg {command}" in out.split("Example", 1)[1]
    assert "--verbose" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_as_a_unix_tools(command: str) -> None:
    """Typer 0.29 shows flags with `<bool>` (as if they took a value: `--verbose true DATA`
    then failed) and arguments as `{model}`; -h was an unknown option."""
    result = runner.invoke(app, [command, "-h"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    usage = result.output.split("Usage: ", 1)[1].splitlines()[0]
    assert "<bool>" not in result.output and "{" not in usage
    assert "list[" not in result.output  # check showed its argument as <list[Path]>
    expected = {"check": "[FLOAT_MODEL] INT8_MODEL", "train": "[DATA]", "info": "PATH"}
    assert usage.split()[2:] == ["[OPTIONS]", *expected.get(command, "MODEL").split()] or (
        command == "demo" and usage.split()[2:] == ["[OPTIONS]"]
    )
    assert "<bool>" not in runner.invoke(app, ["-h"], env={"COLUMNS": "100"}).output


def test_enumerated_options_show_their_choices() -> None:
    _, train = cli("train", "--help")
    for choices in (
        "transpose|resize",
        "ce+lovasz|ce+dice|ce|focal+dice|ohem+dice",
        "stretch|letterbox",
        "default|mirrored|multiworker",
        "cpu|edgetpu",
    ):
        assert choices in train, choices
    _, run = cli("run", "--help")
    assert "overlay|side|mask" in run
    assert "WIDTHxHEIGHT" in run and "640x480" in run


def test_cli_choices_are_the_library_choices() -> None:
    """The CLI's Literal types repeat the library's tuples (typer needs them static): a loss or
    weighting added to one and not the other would be offered but refused, or hidden."""
    from typing import get_args

    from edgeseg.cli.options import ClassWeights, Loss
    from edgeseg.train.recipe import CLASS_WEIGHTINGS, LOSSES

    assert get_args(Loss) == LOSSES
    assert get_args(ClassWeights) == CLASS_WEIGHTINGS


def test_train_help_defaults_are_the_config_defaults() -> None:
    """`train --help` writes its defaults out (the options default to None so a resumed run can
    tell what was typed): each must be what TrainConfig actually uses, or the help lies."""
    from dataclasses import MISSING, fields

    from typer.main import get_command

    from edgeseg.train.config import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    train = get_command(app).commands["train"]  # type: ignore[attr-defined]
    compared = 0
    for param in train.params:
        shown = re.search(r"\[default: ([^\]]*)\]", getattr(param, "help", None) or "")
        value = defaults.get(param.name or "")
        if shown is None or value is None or isinstance(value, bool):
            continue
        assert shown.group(1).split(";")[0] == str(value), (param.name, shown.group(1), value)
        compared += 1
    assert compared >= 10  # warmup, batch, lr, encoder, depth, loss, val_fraction, seed, ...


def test_bad_choice_is_a_usage_error() -> None:
    code, out = cli("train", "--upsample", "bilinear")
    assert code == 2
    assert "bilinear" in out and "transpose" in out


def test_capture_size_error_names_the_option_typed(tmp_path: Path) -> None:
    code, out = cli("run", str(tmp_path / "m.tflite"), "--camera", "0", "--capture-size", "640:480")
    assert code == 2
    assert "--capture-size '640:480'" in out and "WIDTHxHEIGHT" in out
    assert "--size" not in out.replace("--capture-size", "")


def test_capture_size_is_width_first() -> None:
    from edgeseg.cli.options import parse_capture_size

    assert parse_capture_size("640x480") == (480, 640)  # (height, width) inside
    assert parse_capture_size("640,480") == (480, 640)
    assert parse_capture_size(" 1280X720 ") == (720, 1280)


def test_source_digit_is_a_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = open_source(source="0", size=(480, 640))
    assert isinstance(source, CameraSource) and source.target == 0 and source.size == (480, 640)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "0").mkdir()  # a folder literally named 0 wins over the camera
    assert isinstance(open_source(source="0"), ImageFolderSource)


def test_single_image_save_refuses_a_folder_source(tmp_path: Path) -> None:
    code, out = cli("run", str(tmp_path / "m.tflite"), "--source", str(tmp_path), "--save", "x.png")
    assert code == 2
    assert "--save x.png" in out and "one frame" in out


def test_train_target_edgetpu_refuses_transpose_before_loading_anything() -> None:
    code, out = cli("train", "--target", "edgetpu", "--upsample", "transpose")
    assert code == 2
    assert "--upsample resize" in out


def test_help_paragraphs_are_not_broken_mid_sentence() -> None:
    _, out = cli("run", "--help")
    assert "Ctrl-C or SIGTERM stops cleanly" in out  # one docstring paragraph, one line
    lines = out.splitlines()
    examples = [ln.strip() for ln in lines if ln.strip().startswith("edgeseg run ")]
    assert len(examples) == 3  # the examples stay one per line


@pytest.mark.parametrize(
    ("preset", "expected_x86"), [(None, "1"), ("0", "0")], ids=["default", "user-chose-off"]
)
def test_train_turns_on_onednn_before_tensorflow_loads(
    tmp_path: Path, preset: str | None, expected_x86: str
) -> None:
    # a fresh process: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it loads
    code = (
        "import os, sys\n"
        "from typer.testing import CliRunner\n"
        "from edgeseg.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['train', {str(tmp_path / 'nowhere')!r}])\n"
        "print(r.exit_code, os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'tensorflow' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if preset is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = preset
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert out == ["2", expected_x86 if x86 else str(preset), "False"]


def test_python_dash_m_edgeseg_is_the_edgeseg_command() -> None:
    """`python -m edgeseg` (no bin/ on PATH, as on a Pi's --user install) names itself `edgeseg`,
    lists every command and keeps the usage-error exit code."""
    env = {**os.environ, "COLUMNS": "200"}
    ok = subprocess.run(
        [sys.executable, "-m", "edgeseg", "--help"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "Usage: edgeseg " in ok.stdout
    assert all(f" {command} " in ok.stdout for command in COMMANDS)
    bad = subprocess.run(
        [sys.executable, "-m", "edgeseg", "nosuch"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "No such command 'nosuch'" in bad.stderr


def test_progress_bars_draw_on_a_terminal_only_and_until_done_closes_at_the_total(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CI log gets no bar and not even a stray blank line; on a terminal a bar `until_done`
    (dataset checks inside `edgeseg train`) is gone once its total is reached."""
    import io

    from rich.console import Console

    from edgeseg.cli import common

    for terminal in (False, True):
        out = io.StringIO()
        monkeypatch.setattr(common, "err_console", Console(file=out, force_terminal=terminal))
        with common.progress_bar("checking pairs", until_done=True) as progress:
            progress(1, 2)
            progress(2, 2)
            drawn = out.getvalue()
            progress(2, 2)  # training goes on; nothing is drawn any more
        assert out.getvalue() == drawn
        assert ("checking pairs" in drawn) is terminal and (drawn == "") is not terminal
    out = io.StringIO()  # a convert's steps in a CI log: one line each, nothing else
    monkeypatch.setattr(common, "err_console", Console(file=out, force_terminal=False))
    with common.phases("export") as steps:
        steps.phase("calibrate")
    assert re.fullmatch(r"  export \d+\.\d s\n  calibrate \d+\.\d s\n", out.getvalue())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "m.tflite", "--alpha", "1.5"], "Invalid value for '--alpha'"),
        (["train", "--steps", "abc"], "Invalid value for '--steps'"),
        (["run", "m.tflite", "--bogus"], "No such option: --bogus"),
        (["info"], "Missing argument"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
)
def test_usage_errors_are_one_error_line_naming_the_help(args: list[str], message: str) -> None:
    """A value out of range or an unknown option ends as every other failure does: one
    `error:` line (exit 2) pointing at the command's --help, not Typer's usage box."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    command = "edgeseg" if args[0] == "nosuch" else f"edgeseg {args[0]}"
    assert lines[0].endswith(f"(see {command} --help)")
    assert "Usage:" not in result.output
    bare = runner.invoke(app, [])  # no command at all: the help, as before
    assert bare.exit_code == 2 and "Usage: edgeseg" in bare.output


def test_bench_threads_take_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--threads auto` (the default of `edgeseg run`) is accepted by bench too: with --stream
    it is the stream's own trial (None), otherwise the counts the trial chooses between."""
    from edgeseg.cli import bench_cmd
    from edgeseg.runtime import segmenter

    monkeypatch.setattr(segmenter, "default_threads", lambda: 4)
    assert bench_cmd._threads("auto,1,1") == [None, 1]
    assert bench_cmd._counts(bench_cmd._threads("Auto,2")) == [4, 3, 2]
    assert bench_cmd._counts(None) is None
    result = runner.invoke(app, ["bench", "m.tflite", "--threads", "two"])
    assert result.exit_code == 2 and "expected a comma list such as 1,2,4 or auto" in result.stderr


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("rtsp://127.0.0.1:8554/cam", "takes a video file"),
        ("0", "takes a video file"),
        ("{folder}", "is a folder; --stream takes a video file"),
        ("{image}", "is an image; --stream takes a video file"),
        ("{folder}/missing.mp4", "video file not found"),
    ],
)
def test_bench_stream_refuses_what_is_no_video_file(
    stream: str, message: str, tmp_path: Path
) -> None:
    """The URL is quoted as typed (a Path option turned rtsp:// into rtsp:/), and a folder or
    an image is named as such instead of 'video file not found' or a one-frame table."""
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "street.jpg"), np.zeros((8, 8, 3), np.uint8))
    source = stream.format(folder=tmp_path, image=tmp_path / "street.jpg")
    result = runner.invoke(app, ["bench", str(tmp_path / "m.tflite"), "--stream", source])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == f"error: --stream {source}: {message}" or (
        line.startswith(f"error: --stream {source}: ") and message in line
    )


def test_run_options_a_source_does_nothing_with_are_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from edgeseg.cli import common, run_cmd
    from edgeseg.runtime import interpreter
    from edgeseg.runtime.sources import CameraSource, VideoFileSource

    out = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=out, width=300))
    monkeypatch.setattr(interpreter, "default_threads", lambda: 2)
    run_cmd._warn_unused(ImageFolderSource(tmp_path), True, True, 64, True)
    said = out.getvalue()
    assert "--fallback cpu applies when a --delegate fails" in said
    assert "--capture-size applies to cameras" in said
    assert "--realtime paces a video file" in said and "images have no frame rate" in said
    assert "--threads 64 on 2 core(s)" in said
    quiet = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=quiet, width=300))
    run_cmd._warn_unused(CameraSource(0, (480, 640)), True, False, 2)  # all of it applies
    run_cmd._warn_unused(VideoFileSource(str(tmp_path / "clip.mp4")), False, True, None)
    assert quiet.getvalue() == ""


def test_a_ctrl_c_a_finaliser_swallowed_comes_back_at_the_next_progress_step() -> None:
    """TensorFlow's ConcreteFunction.__del__ can be running when Ctrl-C arrives; Python then
    prints 'Exception ignored' and goes on, and convert used to finish and publish. The CLI's
    handler remembers it and the next progress or phase callback raises it again."""
    import os
    import signal

    from edgeseg.cli import common

    with pytest.raises(typer.Exit) as stopped, common.interrupts_kept():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        except KeyboardInterrupt:
            pass  # what a finaliser does with it
        with common.progress_bar("calibrate") as progress, pytest.raises(KeyboardInterrupt):
            progress(1, 10)
    assert stopped.value.exit_code == 130
    common.raise_if_interrupted()  # forgotten once the command ends


@pytest.mark.parametrize(("signum", "code", "said"), [("SIGINT", 130, "interrupted"),
                                                      ("SIGTERM", 143, "terminated")])  # fmt: skip
def test_a_stop_however_it_lands_ends_the_command_with_its_code_and_line(
    signum: str, code: int, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Near the end of a convert, Ctrl-C swallowed by a finaliser after the last progress step
    exited 0; SIGTERM raised while the report printed (outside user_errors) exited 130 with no
    word. Both end as a stop does: the line, then 130 / 143."""
    import io
    import os
    import signal

    from rich.console import Console

    from edgeseg.cli import common

    said_lines = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=said_lines, width=300))
    with pytest.raises(typer.Exit) as swallowed, common.interrupts_kept():
        try:
            os.kill(os.getpid(), getattr(signal, signum))
            for _ in range(1000):
                pass
        except KeyboardInterrupt:
            pass  # a finaliser's, after the last step that checks
    assert swallowed.value.exit_code == code
    assert said_lines.getvalue().startswith(f"{said} after the command had finished")
    with pytest.raises(typer.Exit) as raised, common.interrupts_kept():
        os.kill(os.getpid(), getattr(signal, signum))
        for _ in range(1000):
            pass
    assert raised.value.exit_code == code
    assert said_lines.getvalue().splitlines()[-1] == said


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "data", "--classes", ","], "--classes ',': expected class names a,b,c"),
        (["train", "data", "--depth", "20"], "--depth must be 1..8, got 20"),
        (["train", "--out", "runs/x", "--resume", "--overwrite"], "pick one"),
        (["bench", "m.tflite", "--max-frames", "3"], "--max-frames applies to --stream VIDEO"),
        (["info", "/dev/null"], "not a regular file (a device or pipe)"),
    ],
)
def test_options_that_would_be_silently_ignored_or_crash_are_refused(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


@pytest.mark.parametrize("command", ["eval", "check"])
def test_eval_and_check_threads_take_auto_as_run_does(command: str) -> None:
    """`--threads auto` was 'Input should be a valid integer' in eval and check."""
    base = [command, "missing.tflite", "--data", "nowhere"]
    auto = runner.invoke(app, [*base, "--threads", "auto"])
    assert auto.exit_code == 2 and "model file not found" in auto.output, auto.output
    for bad in ("two", "0"):
        refused = runner.invoke(app, [*base, "--threads", bad])
        assert refused.exit_code == 2
        assert "expected 'auto' or a number of threads, 1..256" in refused.output


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "m.tflite", "--json", "/dev/full"],
        ["eval", "m.tflite", "--data", "d", "--out", "/dev/full"],
        ["check", "m.tflite", "--data", "d", "--out-dir", "/dev/null"],
        ["run", "m.tflite", "--source", "v.mp4", "--headless", "--stats", "/dev/full"],
    ],
)
def test_an_output_that_cannot_be_written_fails_before_the_work(args: list[str]) -> None:
    """`bench --json /dev/full` ran the whole benchmark, `run --stats` the whole stream, before
    exit 4; `eval --out` did not name its option. The model here does not even exist: the output
    is checked first."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    result = runner.invoke(app, args)
    assert result.exit_code == 4, result.output
    option = args[-2]
    assert f"{option} /dev/" in result.output and "not found" not in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_examples_stay_indented_and_fit_an_80_column_terminal(command: str) -> None:
    """Typer dedents the text after the summary, so an Examples block right after it lost its
    indent; a long example wrapped, and pasting its first line ran it without the rest."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    lines = result.output.splitlines()
    examples = [line for line in lines if line.strip().startswith("edgeseg ")]
    assert examples, result.output
    for line in examples:
        assert line.startswith("   edgeseg "), line  # indented under Example(s):
    after = [lines[lines.index(line) + 1] for line in examples]
    assert all(not nxt.strip() or nxt.strip().startswith("edgeseg ") for nxt in after), after


def test_the_cli_starts_without_numpy_or_opencv() -> None:
    """Every start (--help, --version) imported numpy and OpenCV (0.5 s here, seconds on a Pi,
    and a broken cv2 made --help a traceback): the commands load them when they run."""
    code = "import sys, edgeseg.cli.main; print(sorted({'cv2', 'numpy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_reader_that_went_away_does_not_change_the_exit_code(closed: str) -> None:
    """`edgeseg ... | head -1` exited 1 with no word once head closed the pipe (Click's answer
    to EPIPE): for `check` the accuracy-regression code CI acts on, and a training stopped at
    its next line. The command finishes with its own exit code, its output dropped."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    other = subprocess.PIPE
    streams = {"stdout": write_end, "stderr": other} if closed == "stdout" else {
        "stdout": other, "stderr": write_end}  # fmt: skip
    # `info` of a folder that is no dataset: its error goes to stderr, exit 2
    for args, code in ((["--help"], 0), (["info", "/nonexistent-edgeseg-data"], 2)):
        proc = subprocess.run(
            [sys.executable, "-m", "edgeseg", *args], **streams, text=True, timeout=120
        )
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        left = proc.stderr if closed == "stdout" else proc.stdout
        assert "Traceback" not in (left or "") and "BrokenPipe" not in (left or "")
    os.close(write_end)


@pytest.mark.parametrize("closed", ["1", "2"])
def test_a_command_started_with_its_output_closed_keeps_its_exit_code(closed: str) -> None:
    """`edgeseg info x 2>&-` (Python then has no sys.stderr) exited 120: every write of the
    wrapped None failed. The command runs to its own exit code with that output dropped."""
    import shlex

    command = f"{shlex.quote(sys.executable)} -m edgeseg info /nonexistent-edgeseg-data"
    proc = subprocess.run(
        ["bash", "-c", f"{command} {closed}>&-"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    if closed == "1":
        assert "error: /nonexistent-edgeseg-data: not found" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_ctrl_c_before_a_first_checkpoint_says_nothing_new_was_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only 'interrupted', where a later stop says what was kept; then it said 'nothing
    new was saved' for any Ctrl-C escaping training, one after a finished run's last write too."""
    from edgeseg.train import fit
    from edgeseg.train.config import StoppedBeforeCheckpoint

    stop: type[KeyboardInterrupt] = StoppedBeforeCheckpoint

    def stopped(config: object, **kwargs: object) -> object:
        raise stop  # fit.train raises this one only with no checkpoint written

    monkeypatch.setattr(fit, "train", stopped)
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 130, result.output
    assert "interrupted: before the first epoch ended; nothing new was saved" in result.output
    stop = KeyboardInterrupt  # e.g. while the finished run drew its curves
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "nothing new" not in result.output


def test_info_of_a_model_a_killed_training_set_aside_says_where_it_is(tmp_path: Path) -> None:
    """After `kill -9` of `train --overwrite`, info said only 'model file not found'."""
    (tmp_path / "run" / ".replaced").mkdir(parents=True)
    (tmp_path / "run" / ".replaced" / "model.keras").write_bytes(b"PK")
    result = CliRunner().invoke(app, ["info", str(tmp_path / "run" / "model.keras")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"left the previous run's in {tmp_path / 'run' / '.replaced'}" in said
    assert f"edgeseg train --out {tmp_path / 'run'}` puts it back first" in said


def test_a_stop_inside_native_work_waits_for_its_safe_point_and_a_second_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM landing inside TensorFlow's step came out as `SystemError: bad argument to
    internal function` (a CI run: train ended in a traceback, exit 1). Inside the library's
    `safe_points` the handler only remembers it; the next `stop_point` raises it. A second
    Ctrl-C still stops at once."""
    import io
    import os
    import signal

    from rich.console import Console

    from edgeseg.cli import common
    from edgeseg.core import stops

    monkeypatch.setattr(common, "err_console", Console(file=io.StringIO(), width=300))
    landed_quietly = False
    with pytest.raises(typer.Exit) as stopped, common.interrupts_kept():
        with stops.safe_points():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
            landed_quietly = True
            with pytest.raises(common.Terminated):
                stops.stop_point()
            stops.stop_point()  # raised once
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
            os.kill(os.getpid(), signal.SIGINT)  # the second: at once
            with pytest.raises(KeyboardInterrupt):
                for _ in range(1000):
                    pass
    assert landed_quietly and stopped.value.exit_code == 143


def test_a_stop_pending_when_the_native_work_ends_is_raised_there() -> None:
    from edgeseg.core import stops

    assert not stops.defer_stop(KeyboardInterrupt)  # outside: the handler raises as usual
    with pytest.raises(KeyboardInterrupt), stops.safe_points():
        assert stops.defer_stop(KeyboardInterrupt)
    stops.stop_point()  # nothing left pending


def test_an_error_that_a_stop_caused_ends_as_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """What TensorFlow makes of a KeyboardInterrupt inside its C code (a SystemError) is the
    stop's doing: 'terminated', 143, not a traceback."""
    import io

    from rich.console import Console

    from edgeseg.cli import common

    said = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=said, width=300))
    with pytest.raises(typer.Exit) as stopped, common.interrupts_kept(), common.user_errors():
        common._interrupted.set()
        common._terminated.set()
        raise SystemError("Objects/listobject.c:338: bad argument to internal function")
    assert stopped.value.exit_code == 143 and said.getvalue().strip() == "terminated"
    with pytest.raises(SystemError), common.interrupts_kept(), common.user_errors():
        raise SystemError("a bug, not a stop")  # its traceback, as before


def test_a_stopped_runs_frame_counts_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C said '46 frame(s) processed of 47 read (0 dropped)': the frame read but not yet
    through the model when the run stopped was counted nowhere."""
    import io
    import types

    from rich.console import Console

    from edgeseg.cli import run_cmd
    from edgeseg.runtime.stats import StreamStats
    from edgeseg.runtime.stream import StreamResult

    said = io.StringIO()
    monkeypatch.setattr(run_cmd, "console", Console(file=said, width=300))
    runner = types.SimpleNamespace(trial=None, seg=types.SimpleNamespace(threads=2))
    stats = StreamStats(frames_in=47, processed=46)
    run_cmd._print_summary(runner, StreamResult(stats, "SIGINT"), None)  # type: ignore[arg-type]
    assert "46 frame(s) processed of 47 read (0 dropped, 1 in flight when it stopped)" in (
        said.getvalue()
    )
    said.truncate(0)
    stats = StreamStats(frames_in=47, processed=45, dropped=2)
    run_cmd._print_summary(runner, StreamResult(stats, "end"), None)  # type: ignore[arg-type]
    assert "45 frame(s) processed of 47 read (2 dropped) at" in said.getvalue()
