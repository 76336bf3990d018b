"""`--strategy multiworker` for real: two worker processes on 127.0.0.1 with TF_CONFIG, and a
canary that fails once Keras no longer needs edgeseg's patch for keras-team/keras#20585."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("multiworker_worker.py")
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeseg.data.synthetic import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("mw") / "scenes"
    return generate_synthetic_dataset(out, count_train=8, count_val=2, size=(32, 32), seed=2)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_two_workers(
    data: Path, tmp_path: Path, *extra: str
) -> tuple[list[subprocess.CompletedProcess[str] | None], list[Path]]:
    """Start both workers, wait for both; a worker past TIMEOUT_S is killed and reported as None."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs, weights = [], []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(tf_config),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
        }
        weights.append(tmp_path / f"weights{index}.npz")
        cmd = [sys.executable, str(WORKER), str(data), str(tmp_path / "run"), str(weights[-1])]
        procs.append(
            subprocess.Popen(
                [*cmd, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    done: list[subprocess.CompletedProcess[str] | None] = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, output))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            done.append(None)
    return done, weights


@pytest.mark.slow
def test_two_workers_train_to_identical_weights(tiny_data: Path, tmp_path: Path) -> None:
    done, weights = _run_two_workers(tiny_data, tmp_path)
    for index, proc in enumerate(done):
        assert proc is not None, f"worker {index} hung for {TIMEOUT_S} s"
        assert proc.returncode == 0, f"worker {index}:\n{proc.stdout[-3000:]}"
    assert (tmp_path / "run" / "model.keras").is_file()  # only the chief writes the run folder
    assert (tmp_path / "run" / "config.json").is_file()
    first, second = np.load(weights[0]), np.load(weights[1])
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.slow
def test_keras_still_needs_the_multiworker_patch(tiny_data: Path, tmp_path: Path) -> None:
    """Canary: the same run without edgeseg's patch must still fail (or hang). When it passes,
    Keras has fixed keras-team/keras#20585 and the patch should go."""
    done, _ = _run_two_workers(tiny_data, tmp_path, "--unpatched")
    if all(proc is not None and proc.returncode == 0 for proc in done):
        pytest.fail(
            "Keras now trains under MultiWorkerMirroredStrategy without edgeseg's patch "
            "(keras-team/keras#20585 is fixed): remove edgeseg.train.strategy."
            "keras_multiworker_patch and its use in edgeseg/train/loop.py"
        )
    # and it fails for the known reason (a PerReplica value where Keras wants a tensor), not another
    outputs = [proc.stdout for proc in done if proc is not None and proc.returncode != 0]
    if outputs:
        assert any("PerReplica" in out for out in outputs), outputs[0][-3000:]
