"""Launchers: one failure policy checked the same way on the local, submitit and Ray launchers
(good runs finish, one error names every failed run, StopBenchmark is not an error), GPU
assignment of the local launcher (checked through each worker's CUDA_VISIBLE_DEVICES), workers
dying with the benchmark's parent (SIGKILL and SIGTERM) and an immediate rerun matching an
uninterrupted grid, and the same grid through submitit's local executor and a local Ray
cluster: complete, retried + resumed after a killed worker, with results.csv equal to the local
launcher's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from finegrain.experiment.grid import grid_for
from finegrain.experiment.launchers import (
    Launcher,
    LocalLauncher,
    RunsFailed,
    RunTask,
    SlurmLauncher,
    StopBenchmark,
    SubmititRun,
    launcher_for,
    visible_gpus,
)
from finegrain.experiment.plan import plan_runs
from finegrain.experiment.runner import BenchmarkData, DataSource, run_benchmark, run_grid
from finegrain.train.checkpoint import load_checkpoint
from helpers import TINY_GRID as TINY
from helpers import TINY_GRID_METHODS as METHODS
from helpers import alive, descendants, grid_run, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launcher_targets import fail_or_succeed, record_environment  # noqa: E402

LINUX = sys.platform.startswith("linux")
#: a longer run, so that a worker can be killed between two of its checkpoints
LONG = TINY.replace(seeds=1, iterations=60, checkpoint_every=5)


# --- GPU assignment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpus_per_run", "groups"), [(1, ["0", "1", "2", "3"]), (2, ["0,1", "2,3"])]
)
def test_local_launcher_gives_each_worker_its_own_gpus(tmp_path, gpus_per_run, groups):
    launcher = LocalLauncher(
        gpus=["0", "1", "2", "3"], gpus_per_run=gpus_per_run, target=record_environment
    )
    assert launcher.jobs == len(groups)  # default: one worker per GPU group
    tasks = [RunTask(str(tmp_path), f"run{i}") for i in range(5)]
    done = []
    launcher.run(tasks, lambda task: done.append(task.label))
    assert sorted(done) == [f"run{i}" for i in range(5)]
    seen = [(tmp_path / f"run{i}").read_text().split() for i in range(5)]
    assert {gpus for gpus, _ in seen} == set(groups)
    assert len({pid for _, pid in seen}) == 5  # a fresh process per run
    assert str(os.getpid()) not in {pid for _, pid in seen}


def test_local_launcher_caps_jobs_at_the_gpu_groups_and_checks_them(tmp_path):
    assert LocalLauncher(8, gpus=["0", "1", "2"], gpus_per_run=2).jobs == 1
    with pytest.raises(ValueError, match="2 GPUs per run requested but 1 visible"):
        LocalLauncher(gpus=["3"], gpus_per_run=2)
    assert LocalLauncher(2).in_process is False and LocalLauncher(1).in_process is True


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    with pytest.raises(ValueError, match="1 GPUs per run requested but 0 visible"):
        launcher_for("local", out="unused", device="cuda")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    launcher = launcher_for("local", out="unused", device="cuda", gpus_per_run=1)
    assert [slot["CUDA_VISIBLE_DEVICES"] for slot in launcher.slots] == ["4", "6", "7"]
    cpu = launcher_for("local", out="unused", device="cpu", jobs=2)
    assert cpu.slots == [{}, {}]


# --- one failure policy, the same on every launcher ---------------------------------------


def _failing_launcher(kind: str, tmp_path: Path, monkeypatch) -> Launcher:
    """``kind``'s launcher running :func:`fail_or_succeed`, two runs at once, no retries."""
    # the workers of submitit and Ray import launcher_targets from tests/
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    if kind == "local":
        return LocalLauncher(2, target=fail_or_succeed)
    if kind == "slurm":
        pytest.importorskip("submitit")
        return SlurmLauncher(
            tmp_path / "slurm",
            cluster="local",
            use_gpus=False,
            cpus_per_run=1,
            time_min=10,
            poll_s=0.2,
            retries=0,
            target=fail_or_succeed,
        )
    pytest.importorskip("ray")
    from finegrain.experiment.launchers import RayLauncher

    return RayLauncher(
        use_gpus=False,
        retries=0,
        init_kwargs=dict(
            num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}}
        ),
        target=fail_or_succeed,
    )


@pytest.mark.parametrize("kind", ["local", "slurm", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_failed_run_never_stops_the_others(kind, tmp_path, monkeypatch):
    """Every launcher: each run that can finish finishes, then one error names every failed run
    with its error; a StopBenchmark from the hook lets the runs handed out finish, no error."""
    launcher = _failing_launcher(kind, tmp_path, monkeypatch)
    labels = ["bad", "good1", "dies", "good2", "good3"]
    done: list[str] = []
    with pytest.raises(RunsFailed) as caught:
        launcher.run([RunTask(str(tmp_path), x) for x in labels], lambda t: done.append(t.label))
    assert sorted(done) == ["good1", "good2", "good3"]
    assert all((tmp_path / label).is_file() for label in done)
    assert sorted(caught.value.failures) == ["bad", "dies"]
    message = str(caught.value)
    assert message.startswith("2 of 5 runs failed (the others finished):")
    assert "bad: ValueError: no such observation: 'Bad'" in message and "dies: " in message

    def stopped_after_two():
        yield RunTask(str(tmp_path), "first")
        yield RunTask(str(tmp_path), "second")
        raise StopBenchmark("stop")

    done.clear()
    launcher.run(stopped_after_two(), lambda t: done.append(t.label))  # no error
    assert sorted(done) == ["first", "second"]


def test_a_worker_that_dies_is_named(tmp_path):
    with pytest.raises(RunsFailed, match=r"dies: the worker process died \(exit code 3\)"):
        LocalLauncher(2, target=fail_or_succeed).run([RunTask(str(tmp_path), "dies")], print)


@pytest.mark.skipif(not LINUX, reason="the resource tracker's named semaphores (POSIX)")
@pytest.mark.parametrize(
    ("group", "signum"),
    [(True, signal.SIGINT), (False, signal.SIGTERM)],
    ids=["Ctrl-C", "SIGTERM of the benchmark"],
)
def test_stopped_workers_leave_no_leaked_semaphores(tmp_path, group, signum):
    """Ctrl-C of a benchmark (SIGINT to its whole process group) ended with multiprocessing's
    "There appear to be 2 leaked semaphore objects" warning: the benchmark SIGTERMed its workers,
    which died without their exit handlers, leaving their named semaphores (tqdm's lock) behind."""
    tests = Path(__file__).resolve().parent
    script = (
        "import sys\n"
        "from finegrain.experiment.launchers import LocalLauncher, RunTask\n"
        "from launcher_targets import hold_a_named_semaphore\n"
        "tasks = [RunTask(sys.argv[1], 'a'), RunTask(sys.argv[1], 'b')]\n"
        "LocalLauncher(2, target=hold_a_named_semaphore).run(tasks, print)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), *sys.path]))
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal gives a command
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(
            lambda: parent.poll() is not None or len(list(tmp_path.glob("*.ready"))) == 2,
            60,
            "both workers to hold their semaphore",
        )
        assert parent.poll() is None
        if group:
            os.killpg(parent.pid, signum)
        else:
            parent.send_signal(signum)
        _, err = parent.communicate(timeout=60)  # EOF: the resource tracker has exited too
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    assert parent.returncode != 0
    assert "leaked semaphore" not in err.decode(), err.decode()[-2000:]


# --- a real tiny grid -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> BenchmarkData:
    from finegrain.data.phantom import make_phantom
    from finegrain.experiment.runner import prepare_data

    out = tmp_path_factory.mktemp("launcher-data")
    make_phantom(out / "phantom", studies=150, size=32, seed=0, progress=False)
    return prepare_data(DataSource(mimic=out / "phantom"), out, TINY, progress=False)


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> Path:
    """The 4-run grid trained in this process by the local launcher."""
    out = tmp_path_factory.mktemp("reference")
    source = DataSource(index=tiny_data.index, cache=tiny_data.cache)
    run_benchmark(out, TINY, source, methods=METHODS, progress=False)
    return out


def assert_same_grid(out: Path, reference: Path) -> None:
    """Same results.csv and bit-identical final weights of every run."""
    ours, theirs = pd.read_csv(out / "results.csv"), pd.read_csv(reference / "results.csv")
    pd.testing.assert_frame_equal(ours, theirs)
    runs = sorted(p.relative_to(reference) for p in reference.glob("runs/*/*/*/*"))
    assert runs and runs == sorted(p.relative_to(out) for p in out.glob("runs/*/*/*/*"))
    for run in runs:
        last = sorted((reference / run / "checkpoints").glob("*.pt"))[-1].name
        a = load_checkpoint(reference / run / "checkpoints" / last)["model"]
        b = load_checkpoint(out / run / "checkpoints" / last)["model"]
        for key in a:
            assert torch.equal(a[key], b[key]), (run, key)


def benchmark_args(data: BenchmarkData, out: Path, preset=LONG, jobs: int = 2) -> list[str]:
    args = ["benchmark", "--index", str(data.index), "--cache", str(data.cache)]
    args += ["--observations", "Edema", "--methods", *METHODS, "--seeds", str(preset.seeds)]
    args += ["--iterations", str(preset.setting("iterations"))]
    args += ["--checkpoint-every", str(preset.setting("checkpoint_every"))]
    args += [
        "--batch-size",
        str(preset.setting("batch_size")),
        "--jobs",
        str(jobs),
        "--no-progress",
    ]
    return [*args, "--out", str(out)]


@pytest.fixture(scope="module")
def long_reference(tiny_data, tmp_path_factory) -> Path:
    from finegrain.cli import main

    out = tmp_path_factory.mktemp("long-reference")
    assert main(benchmark_args(tiny_data, out, jobs=1)) == 0
    return out


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="finds the benchmark's processes through /proc (Linux)")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_die_with_the_benchmark(tiny_data, long_reference, tmp_path, signum):
    from finegrain.cli import main

    out = tmp_path / "b"
    command = [sys.executable, "-m", "finegrain", *benchmark_args(tiny_data, out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        wait_for(
            lambda: parent.poll() is not None or any(out.glob("runs/*/*/*/*/checkpoints/*.pt")),
            180,
            "the first checkpoint",
        )
        assert parent.poll() is None, parent.stderr.read().decode()[-2000:]
        workers = descendants(parent.pid)
        assert len(alive(workers)) >= 2  # the two training workers (and their helpers)
        parent.send_signal(signum)
        parent.wait(timeout=60)
        wait_for(lambda: not alive(workers), 15, f"the workers {sorted(alive(workers))} to end")
    finally:
        for pid in alive(workers | {parent.pid}):
            os.kill(pid, signal.SIGKILL)
        parent.stderr.close()
    # an immediate rerun completes the grid, identical to an uninterrupted one
    assert main(benchmark_args(tiny_data, out)) == 0
    assert_same_grid(out, long_reference)


# --- submitit (the slurm launcher, on its local executor) ---------------------------------


def _slurm(folder: Path) -> SlurmLauncher:
    pytest.importorskip("submitit")
    return SlurmLauncher(
        folder, cluster="local", use_gpus=False, cpus_per_run=1, time_min=10, poll_s=0.2
    )


@pytest.mark.slow
def test_submitit_grid_equals_the_local_launcher(tiny_data, reference, tmp_path):
    launcher = _slurm(tmp_path / "slurm")
    source = DataSource(index=tiny_data.index, cache=tiny_data.cache)
    result = run_benchmark(
        tmp_path, TINY, source, methods=METHODS, progress=False, launcher=launcher
    )
    assert len(result.grid.trained) == 4
    assert set(launcher.attempts.values()) == {1}
    assert_same_grid(tmp_path, reference)
    # finished runs are skipped: nothing is submitted again
    specs = grid_for(TINY.selections, observations=TINY.observations, seeds=2, methods=METHODS)
    runs = plan_runs(specs, tmp_path / "runs", TINY, tiny_data)
    again = run_grid(runs, threads=TINY.threads, progress=False, launcher=launcher)
    assert len(again.trained) == 0 and len(again.skipped) == 4
    assert set(launcher.attempts.values()) == {1}


def kill_a_training_process(out: Path, runs: int, marker: str, killed: list) -> None:
    """Once each of the ``runs`` runs has a checkpoint, SIGKILL one process training (found
    through /proc by ``marker`` in its command line); append (pid, {checkpoint: mtime}) of the
    checkpoints that exist then to ``killed``."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not killed:
        with_checkpoints = {p.parent.parent for p in out.glob("runs/*/*/*/*/checkpoints/*.pt")}
        if len(with_checkpoints) >= runs:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == os.getpid():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if marker in cmdline:
                    os.kill(int(entry.name), signal.SIGKILL)
                    stamps = {
                        p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/*/checkpoints/*.pt")
                    }
                    killed.append((int(entry.name), stamps))
                    return
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="finds the job's process through /proc (Linux)")
def test_submitit_killed_job_is_retried_and_resumes(tiny_data, long_reference, tmp_path):
    launcher = _slurm(tmp_path / "slurm")
    source = DataSource(index=tiny_data.index, cache=tiny_data.cache)
    killed: list = []
    killer = threading.Thread(
        target=kill_a_training_process,
        args=(tmp_path, 2, f"submitit.core._submit {tmp_path / 'slurm'}", killed),
    )
    killer.start()
    try:
        run_benchmark(tmp_path, LONG, source, methods=METHODS, progress=False, launcher=launcher)
    finally:
        killer.join()
    assert killed, "no job was killed"
    assert sorted(launcher.attempts.values()) == [1, 2]  # the killed run was submitted again
    _, stamps = killed[0]
    # resumed, not retrained: the checkpoints written before the kill were not written again
    assert stamps and all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())
    assert_same_grid(tmp_path, long_reference)


def test_submitit_run_requeues_itself_on_preemption():
    submitit = pytest.importorskip("submitit")
    run = SubmititRun(record_environment, RunTask("folder", "Edema/u-ones/seed0"))
    delayed = run.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert isinstance(delayed.function, SubmititRun)
    assert delayed.function.task == run.task  # the same run: it resumes from its checkpoint


# --- Ray (a local 2-CPU cluster) ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="finds the Ray worker through /proc (Linux)")
def test_ray_grid_retries_a_killed_worker_and_equals_the_local_launcher(
    tiny_data, long_reference, tmp_path
):
    pytest.importorskip("ray")
    from finegrain.experiment.launchers import RayLauncher

    launcher = RayLauncher(
        use_gpus=False,
        init_kwargs=dict(
            num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}}
        ),
    )
    source = DataSource(index=tiny_data.index, cache=tiny_data.cache)
    killed: list = []
    killer = threading.Thread(
        target=kill_a_training_process, args=(tmp_path, 2, "ray::_ray_entry", killed)
    )
    killer.start()
    try:
        result = run_benchmark(
            tmp_path, LONG, source, methods=METHODS, progress=False, launcher=launcher
        )
    finally:
        killer.join()
    assert killed, "no Ray worker was killed"
    assert len(result.grid.trained) == 2  # the killed run was retried by Ray and finished
    _, stamps = killed[0]
    assert stamps and all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())
    assert_same_grid(tmp_path, long_reference)


@pytest.mark.slow
def test_gpus_per_run_trains_each_run_through_torchrun(tiny_data, tmp_path):
    """On CPU, --gpus-per-run 2 means two gloo processes per run, launched by
    torch.distributed.run (the path a two-GPU run takes)."""
    import json

    from finegrain.train.tracking import TrackingSpec

    launcher = launcher_for("local", out=tmp_path, device="cpu", gpus_per_run=2)
    assert launcher.in_process and launcher.gpus_per_run == 2
    source = DataSource(index=tiny_data.index, cache=tiny_data.cache)
    result = run_benchmark(
        tmp_path,
        TINY.replace(seeds=1),
        source,
        methods=["u-ones"],
        progress=False,
        launcher=launcher,
        tracking=TrackingSpec(tensorboard=True),
    )
    assert [s.label for s in result.grid.trained] == ["Edema/u-ones/seed0"]
    run = grid_run(tmp_path / "runs", "Edema/u-ones/seed0")
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert (run / "done").exists() and list((run / "tensorboard").glob("events.*"))
