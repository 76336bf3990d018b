"""Quiet by default: native writes to fd 2 are captured while Python's stderr still shows, and
replayed when the block fails (run in subprocesses: pytest owns this process's stderr)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from edgeseg.cli.quiet import worth_showing


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        """
        import os, sys
        from edgeseg.runtime.quiet import quiet_native
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_native_stderr_is_captured_python_stderr_is_not() -> None:
    proc = _run(
        """
        with quiet_native() as log:
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
            print("python warning", file=sys.stderr)
        print("captured:", log.text.strip())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "python warning" in proc.stderr
    assert "XNNPACK" not in proc.stderr
    assert "captured: INFO: Created TensorFlow Lite XNNPACK" in proc.stdout


def test_native_log_is_replayed_when_the_block_fails() -> None:
    proc = _run(
        """
        try:
            with quiet_native():
                os.write(2, b"E0000 converter: op FOO is not supported\\n")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        os.write(2, b"fd 2 restored\\n")
        """
    )
    assert "op FOO is not supported" in proc.stderr
    assert "fd 2 restored" in proc.stderr


def test_only_lines_that_may_explain_a_failure_are_replayed() -> None:
    log = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795581861.421016   10581 port.cc:153] oneDNN custom operations are on.\n"
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        "E0000 00:00:1 convert.cc:1] 'tfl.custom' op is neither a custom op nor a flex op\n"
    )
    assert worth_showing(log) == (
        "E0000 00:00:1 convert.cc:1] 'tfl.custom' op is neither a custom op nor a flex op"
    )


def test_a_failing_command_ends_with_its_error_line_after_the_native_log() -> None:
    """The native lines replayed after a failure explain the error, and `error: ...` stays the
    last line on stderr (what CI logs and `tail -1` show)."""
    proc = _run(
        """
        from edgeseg.cli.common import fail
        from edgeseg.cli.quiet import native_logs
        try:
            with native_logs(verbose=False):
                os.write(2, b"[tcp @ 0x1] Connection refused\\n")
                raise fail("rtsp://cam/1: cannot open the stream")
        except BaseException as exc:
            sys.exit(exc.exit_code)
        """
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "[tcp @ 0x1] Connection refused" in proc.stderr
    assert lines[-1] == "error: rtsp://cam/1: cannot open the stream"


def test_a_log_handler_made_while_quiet_still_writes_afterwards() -> None:
    """The stand-in stderr was closed on the way out, so a handler created meanwhile (as
    TensorFlow's finalisers log after a second Ctrl-C) printed '--- Logging error ---' and a
    traceback for every record: thousands of lines."""
    proc = _run(
        """
        import logging
        with quiet_native():
            handler = logging.StreamHandler(sys.stderr)
        record = logging.LogRecord("tf", logging.WARNING, "x", 1, "late warning", None, None)
        handler.emit(record)
        handler.flush()
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "Logging error" not in proc.stderr and "late warning" in proc.stderr


def test_ctrl_c_while_the_cli_loads_is_one_line_and_exit_130() -> None:
    """A Ctrl-C in the first half second (typer, rich, edgeseg's modules loading) printed a
    traceback from inside an import; the entry point now ends it as any later Ctrl-C."""
    code = textwrap.dedent(
        """
        import sys
        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "edgeseg.cli.main":
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, Interrupt())
        from edgeseg.__main__ import main
        main()
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and proc.stderr == "interrupted\n", proc.stderr


def test_sigterm_while_the_cli_loads_is_one_line_and_exit_143() -> None:
    """SIGTERM in the first half second killed the process outright (returncode -15, no word),
    where a moment later it was 'terminated' and exit 143."""
    code = textwrap.dedent(
        """
        import os, signal, sys
        class Terminate:
            def find_spec(self, name, path=None, target=None):
                if name == "edgeseg.cli.main":
                    os.kill(os.getpid(), signal.SIGTERM)
        sys.meta_path.insert(0, Terminate())
        from edgeseg.__main__ import main
        main()
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143 and proc.stderr == "terminated\n", proc.stderr


def test_absl_python_records_are_native_log_lines(capfd: pytest.CaptureFixture[str]) -> None:
    """TensorFlow's converter warns through absl's Python logger ("WARNING:absl:For model
    inputs containing unsupported operations ..." on every int16x8 conversion), which printed
    through the root handler absl installs itself: now hidden like the native lines, replayed
    after a failure, live with --verbose."""
    from absl import logging as absl_logging

    from edgeseg.cli.quiet import native_logs

    with native_logs(False):
        absl_logging.warning("converter chatter")
    assert "converter chatter" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), native_logs(False):
        absl_logging.warning("converter chatter before a failure")
        raise RuntimeError("failed")
    assert "WARNING:absl:converter chatter before a failure" in capfd.readouterr().err
    with native_logs(True):
        absl_logging.warning("converter chatter, verbose")
    assert "WARNING:absl:converter chatter, verbose" in capfd.readouterr().err
    assert not logging.getLogger("absl").handlers  # put back as it was
