"""Fault injection: `kill -9` a server (or its training process) at random moments while a run trains and saves,
many times over one runs folder; after each restart nothing is lost, broken or hidden.

The "server" is a small process that owns a JobManager, as the studio's does: its start-up tidies the folder, it
starts one short run, and prints the run's progress so that kills can land while the model is being saved. A
training process whose server is killed ends itself at once (mnist_core.jobs), possibly in the middle of a save.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mnist_core.jobs import JobManager
from mnist_core.runs import RunStore
from mnist_core.store import load_model, temp_files

REPO = Path(__file__).resolve().parents[1]
# (what is killed, while the run is doing what): the server, as a host's Ctrl-C never does (its training process
# ends itself within a quarter of a second); both at once, as a power cut; or the training process alone, as the
# out-of-memory killer would (the server logs a failed run).
# The suite kills the server while the model is saved: each round costs two TensorFlow loads (~13 CPU-seconds), and a
# killed server's training process ends itself like one killed with it. A training process killed alone is a failed
# run (tests/test_jobs.py, and in the browser tests/e2e/test_e2e_classroom.py). The long form, MNIST_FAULT_REPEATS=4
# (docs/testing.md), kills each of the three victims at each moment 4 times.
REPEATS = int(os.environ.get("MNIST_FAULT_REPEATS", "0"))
KILLS = ([("server", "saving")] if not REPEATS else
         [(victim, moment) for victim in ("server", "both", "training process") for moment in ("saving", "training")]
         * REPEATS)
SERVER = """
import sys, time
from mnist_core.jobs import JobManager
from mnist_core.runs import RunStore
from mnist_core.training import TrainConfig

manager = JobManager(RunStore(sys.argv[1]))  # start-up: the tidy under test
job = manager.start(TrainConfig(train_subset=4000, test_subset=200, epochs=1))  # ~2 s of training
print("training-pid", job.process.pid, flush=True)
said = None
while job.running:
    message = job.snapshot().message
    if message != said:
        print("message", message, flush=True)
        said = message
    time.sleep(0.005)
print("done", job.snapshot().status, flush=True)
"""


def _start_server(root: Path) -> tuple[subprocess.Popen, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(root)], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=REPO)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    return proc, lines


def _wait_for(lines: list[str], prefix: str, proc: subprocess.Popen, timeout: float = 120) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((line for line in lines if line.startswith(prefix)), None)
        if found or proc.poll() is not None:
            return found
        time.sleep(0.002)
    raise AssertionError(f"no {prefix!r} in {timeout} s: {lines}")


def _gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive {timeout} s after its server was killed")


def _check_after_restart(root: Path) -> list[str]:
    """Start-up as a new server does it, then every promise: returns what start-up said it did."""
    store = RunStore(root)
    done = JobManager(store).tidied
    load_model(store.active_path())  # the active model loads (the shipped one when none was kept)
    assert store.active_problem() is None, store.active_problem()
    assert temp_files(store.models_dir) == [] and temp_files(store.root) == []
    records, problem = store.read_log()
    assert problem is None, problem  # runs.jsonl parses, every line of it
    listed = {Path(r.model).name for r in records if r.model}
    assert {p.name for p in store.models_dir.glob("*.keras")} <= listed  # every complete model is listed
    assert not store.running_file.exists()
    return done


def test_kill_9_at_random_moments_never_loses_or_hides_anything(tmp_path):
    root = tmp_path / "runs"
    rng = random.Random(20261129)
    # Each kill lands a random moment after the progress message (a save takes a few tenths of a second); last,
    # a run left to complete.
    plan = rng.sample(KILLS, len(KILLS)) + [(None, None)]
    said = []
    for victim, moment in plan:
        proc, lines = _start_server(root)
        child = int(_wait_for(lines, "training-pid", proc).split()[1])
        if victim is None:
            assert _wait_for(lines, "done", proc) == "done completed\n"
            proc.wait(30)
            said += _check_after_restart(root)
            continue
        _wait_for(lines, f"message {moment}", proc)
        time.sleep(rng.uniform(0, 0.3 if moment == "saving" else 1.0))
        if victim in ("training process", "both"):
            os.kill(child, signal.SIGKILL)
        if victim in ("server", "both"):
            proc.kill()
        else:
            assert _wait_for(lines, "done", proc).startswith("done ")  # failed, or completed if the save won
        proc.wait(30)
        _gone(child)
        said += _check_after_restart(root)

    statuses = [r.status for r in RunStore(root).history()]
    print(f"statuses, newest first: {statuses}; start-up said: {said}")
    assert statuses[0] == "completed"
    assert set(statuses) <= {"completed", "failed", "interrupted", "recovered"}, statuses
    # A killed server leaves an interrupted run, or, when the kill came after its model was written, a model
    # recovered at the next start; a training process killed while it trains leaves a failed run.
    assert {"interrupted", "recovered"} & set(statuses), statuses
    if ("training process", "training") in KILLS:
        assert "failed" in statuses, statuses
    # Every run has its record (a training process killed after its model was written has two: the failed run,
    # and its model, recovered at the next start).
    assert len(statuses) >= len(plan)
