"""The install story: a wheel built from this checkout (as on the laptop, before copying it to a
Pi) carries the MIT license metadata, and its `convert` needs --calib outside a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# Run in the wheel's venv from a folder without calib_data/: where edgeseg comes from, and the
# default calibration folder; then with a calib_data/ in the working folder.
PROBE = """
import os, sys
from pathlib import Path
import edgeseg
from edgeseg.cli.convert_cmd import default_calib
print(edgeseg.__file__)
print((default_calib() or [None])[0])
Path("calib_data").mkdir()
print((default_calib() or [None])[0])
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps .`, the README's laptop step; built with the setuptools the [dev]
    extra installed (build isolation fetched it from the index again, each run)."""
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(
        [*pip, "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("edgeseg-*.whl")
    return built


def test_wheel_has_spdx_license_and_the_license_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
        licenses = [n for n in names if n.endswith("/LICENSE")]
        assert licenses and "MIT License" in zf.read(licenses[0]).decode()
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert not any(n.startswith("calib_data/") for n in names)  # not installed, on purpose
    assert "edgeseg/py.typed" in names  # the API's type hints reach users' mypy (PEP 561)


def test_installed_convert_requires_calib_outside_a_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, "--target", str(site), str(wheel)], check=True, timeout=300)
    # The dependencies (numpy, OpenCV, typer, LiteRT) come from this interpreter's site-packages,
    # added as plain paths: their .pth files (this checkout's editable finder) are not run.
    shared = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "shared_deps.pth").write_text("\n".join(shared) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [python, "-c", PROBE],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    module, before, after = done.stdout.split()
    assert Path(module).is_relative_to(site)  # the wheel's code, not this checkout's
    assert before == "None"  # no calib_data/ shipped, none here: --calib is required
    assert Path(after) == work / "calib_data"

    # The CLI says so in one line, exit 2, before loading any model (a .keras archive it would
    # load: a missing model is said first, as the first thing to fix).
    (work / "calib_data").rmdir()
    import zipfile

    with zipfile.ZipFile(work / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    cli = "from edgeseg.cli.main import app; app()"
    done = subprocess.run(
        [python, "-c", cli, "convert", "model.keras"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "no calibration images: pass --calib DIR" in done.stderr
    assert "Traceback" not in done.stderr
