"""Launchers: the grid decides *what* runs, a launcher decides *where*.

A :class:`RunTask` is one run of the grid (its :class:`~finegrain.train.config.TrainConfig`,
torch threads, processes per run and experiment tracking), picklable, executed anywhere by
:func:`execute`. A launcher takes the tasks and calls ``on_done(task)`` as each finishes:

- :class:`LocalLauncher` -- this machine: in this process (one job on CPU), or one child
  process per run, at most ``jobs`` at once; with ``gpus`` each child sees only its own GPU(s)
  through ``CUDA_VISIBLE_DEVICES``. Children die with their parent (SIGTERM handled, and a
  parent-death signal on Linux for SIGKILL).
- :class:`RayLauncher` -- Ray tasks with ``num_gpus``; a local Ray cluster by default, an
  existing one with ``address``. A run whose worker dies is retried by Ray.
- :class:`SlurmLauncher` -- Slurm jobs through submitit (``cluster="local"`` runs them as local
  processes, for tests). A preempted or timed-out job is requeued (the callable is
  checkpointable); a job that died is resubmitted up to ``retries`` times.

Every launcher follows one failure policy, so a long grid is never lost to one bad run:

- a failed run never stops the others: every run that can finish finishes (a run whose worker
  dies is first retried where the launcher can: Ray and Slurm, ``retries`` times; a run that
  raises is never retried, its error is final);
- at the end ``run`` raises one :class:`RunsFailed` that lists every failed run with its error
  (the full tracebacks are logged as each run fails);
- a :class:`StopBenchmark` raised while the tasks are handed out (the grid's ``before_run``
  hook) stops handing out runs, lets the runs already handed out finish, and is not an error:
  ``run`` returns (or raises :class:`RunsFailed` if some of them failed).

Semantics are the same everywhere because they live in :func:`execute` and the run directory:
a run with a ``done`` marker is not trained again, a run with checkpoints resumes from the last
one (so a retried or requeued run continues where it was killed), and a run of ``processes`` > 1
goes through torch's elastic launcher (``python -m torch.distributed.run``), never a
hand-written process group. Ray and submitit are optional extras, imported when used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from finegrain.errors import FinegrainError
from finegrain.extras import require
from finegrain.registry import Registry, import_modules
from finegrain.workers import die_with_parent, set_parent_death_signal

log = logging.getLogger(__name__)

#: Launcher factories by name (filled at import below; ``finegrain benchmark --launcher``):
#: ``factory(*, out, gpus, jobs, gpus_per_run, ...) -> Launcher`` (see :func:`launcher_for`).
LAUNCHERS: Registry[Callable[..., Launcher]] = Registry("launcher")


class StopBenchmark(Exception):
    """Raised by a ``before_run`` hook to stop handing out runs: those handed out finish, and
    the launcher returns without an error."""


class RunsFailed(RuntimeError):
    """Some runs of a grid failed (every other run finished). ``failures`` maps the label of
    each failed run to its error, one line each."""

    def __init__(self, failures: dict[str, str], total: int) -> None:
        self.failures = dict(failures)
        self.total = total
        listed = "; ".join(f"{label}: {error}" for label, error in self.failures.items())
        super().__init__(
            f"{len(self.failures)} of {total} runs failed (the others finished): {listed}. "
            "Rerun the same command to retry them: finished runs are skipped"
        )


@dataclass(frozen=True)
class RunTask:
    """One run of the grid, as shipped to a worker.

    ``config`` is the run's ``TrainConfig``; ``threads`` the torch CPU threads (``None``: torch's
    default); ``processes`` the processes of the run (one per GPU; > 1 goes through
    ``torch.distributed.run``); ``tracking`` an optional
    :class:`~finegrain.train.tracking.TrackingSpec`; ``imports`` the modules the worker imports
    before training (default: those that registered the run's method and model,
    :meth:`~finegrain.train.config.TrainConfig.registered_in`), so that an entry a user
    registers in their own module reaches every worker.
    """

    config: Any  # TrainConfig (kept lazy: importing this module does not import torch)
    label: str
    threads: int | None = None
    processes: int = 1
    tracking: Any = None
    imports: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        imports = self.imports
        if imports is None:
            registered_in = getattr(self.config, "registered_in", None)
            imports = registered_in() if registered_in is not None else ()
        object.__setattr__(self, "imports", tuple(imports))

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)


OnDone = Callable[[RunTask], None]


def _handed_out(tasks: Iterable[RunTask]) -> Iterator[RunTask]:
    """The tasks, up to a :class:`StopBenchmark` (logged: stopping is not an error)."""
    try:
        yield from tasks
    except StopBenchmark as exc:
        log.warning("no more runs handed out (%s); the runs already started finish", exc)


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    return _one_line(f"{type(exc).__name__}: {exc}")


class _Failures:
    """The failed runs of one grid: logged as they fail, raised together at the end."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}
        self.total = 0

    def add(self, task: RunTask, error: str, details: str = "") -> None:
        self.errors[task.label] = error
        log.error("run %s failed: %s%s", task.label, error, f"\n{details}" if details else "")

    def raise_any(self) -> None:
        if self.errors:
            raise RunsFailed(self.errors, self.total)


class Launcher(Protocol):
    """Where the runs of a grid execute. ``run`` returns when every run handed out finished,
    calling ``on_done(task)`` for each that succeeded; it raises :class:`RunsFailed` at the end
    if any failed (the module's failure policy)."""

    name: str
    #: processes (GPUs) per run; ``RunTask.processes`` is set from it
    gpus_per_run: int

    def run(self, tasks: Iterable[RunTask], on_done: OnDone) -> None: ...


# ---------------------------------------------------------------------------------------------
# Executing one run (the same function on every launcher)


def _is_finished(run_dir: Path) -> bool:
    from finegrain.train.rundir import RunDirectory

    return RunDirectory(run_dir).is_done()


def _has_checkpoints(run_dir: Path) -> bool:
    from finegrain.train.rundir import RunDirectory

    return bool(RunDirectory(run_dir).checkpoints())


def execute(task: RunTask) -> str:
    """Train ``task``'s run to completion and return its run directory.

    A finished run is left alone; a run with checkpoints resumes from the last one (this is
    what makes a retried, requeued or rerun task continue where it stopped). The task's
    ``imports`` are imported first (they register its method and model in this process).
    """
    import_modules(task.imports or ())
    if task.processes > 1:
        return _execute_torchrun(task)
    return _execute_here(task)


def _execute_here(task: RunTask) -> str:
    import torch

    from finegrain.train.loop import train

    run_dir = task.run_dir
    if not _is_finished(run_dir):
        log.debug("%s run %s", "resuming" if _has_checkpoints(run_dir) else "starting", task.label)
        saved = torch.get_num_threads()
        if task.threads:
            torch.set_num_threads(task.threads)
        try:  # resume=True: the grid owns its run folders, leftovers of a killed run included
            train(task.config, resume=True, progress=False, tracking=task.tracking)
        finally:
            torch.set_num_threads(saved)
    if int(os.environ.get("RANK", "0")) == 0 and not _is_finished(run_dir):
        raise RuntimeError(f"{run_dir}: train() returned but wrote no 'done' marker")
    return str(run_dir)


def _task_to_json(task: RunTask) -> str:
    tracking = task.tracking
    return json.dumps(
        {
            "config": task.config.to_dict(),
            "label": task.label,
            "threads": task.threads,
            "tracking": dataclasses.asdict(tracking) if tracking is not None else None,
            "imports": list(task.imports or ()),
        }
    )


def _task_from_json(text: str) -> RunTask:
    from finegrain.train.config import TrainConfig
    from finegrain.train.tracking import TrackingSpec

    data = json.loads(text)
    tracking = TrackingSpec(**data["tracking"]) if data["tracking"] else None
    config = TrainConfig.from_dict(data["config"])
    return RunTask(config, data["label"], data["threads"], 1, tracking, tuple(data["imports"]))


def _execute_torchrun(task: RunTask) -> str:
    """One run over ``task.processes`` processes through torch's elastic launcher."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={task.processes}", "-m", __name__, _task_to_json(task)]
    env = dict(os.environ)
    # the ranks find what this process finds (the modules in ``task.imports``), as spawned
    # multiprocessing children do
    env["PYTHONPATH"] = os.pathsep.join(
        [p for p in sys.path if p] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    if task.threads:
        env["OMP_NUM_THREADS"] = str(task.threads)
    log.debug("torchrun for %s: %s", task.label, " ".join(command[:6]))
    child = subprocess.Popen(command, env=env, preexec_fn=set_parent_death_signal)
    try:
        rc = child.wait()
    finally:
        if child.poll() is None:  # we are being stopped: take the run's processes with us
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    if rc != 0:
        raise RuntimeError(f"{task.label}: torch.distributed.run exited with code {rc}")
    if not _is_finished(task.run_dir):
        raise RuntimeError(f"{task.run_dir}: the distributed run wrote no 'done' marker")
    return str(task.run_dir)


# ---------------------------------------------------------------------------------------------
# Dying with the parent (finegrain.workers.die_with_parent)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises ``SystemExit(143)`` in the main thread, so ``finally``
    blocks run (and stop the workers) before the process exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ignore_stop_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: a worker that is already stopping finishes its
    exit handlers instead of being cut short by the next signal (the benchmark's own SIGTERM
    follows a Ctrl-C that reached the worker too)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_on_sigterm(signum, frame) -> None:
    """SIGTERM ends a worker as Ctrl-C does: the stack unwinds and the exit handlers run. Killed
    outright, a spawned worker leaves the named semaphores it created (tqdm's lock, ...) to
    multiprocessing's resource tracker, which warns of "leaked semaphore objects" when the
    benchmark exits."""
    _ignore_stop_signals()
    raise SystemExit(128 + signal.SIGTERM)


def _child_main(target, task: RunTask, env: dict[str, str], parent_pid: int, conn) -> None:
    """Entry point of a local worker process: one run, its outcome sent back on ``conn``."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    die_with_parent(parent_pid)
    os.environ.update(env)
    try:
        result = target(task)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # interrupted or stopped: let the exit finish
            _ignore_stop_signals()
        text = traceback.format_exc()
        try:
            conn.send(("error", exc, text))
        except Exception:  # an unpicklable exception: send its text
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), text))
        conn.close()
        sys.exit(1)
    conn.send(("ok", result, ""))
    conn.close()


# ---------------------------------------------------------------------------------------------
# Local


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else ``0..n-1``."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        return [g.strip() for g in value.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


class LocalLauncher:
    """Runs on this machine: at most ``jobs`` runs at once, each in its own process.

    ``gpus`` (GPU ids, e.g. from :func:`visible_gpus`) switches to one GPU group of
    ``gpus_per_run`` per run, given to the worker as ``CUDA_VISIBLE_DEVICES``; ``jobs``
    defaults to the number of such groups. Without GPUs and with ``jobs == 1`` runs train in
    this process (nothing to isolate). ``target`` (default :func:`execute`) runs one task.
    """

    name = "local"

    def __init__(
        self,
        jobs: int | None = None,
        *,
        gpus: Sequence[str] | None = None,
        gpus_per_run: int = 1,
        target: Callable[[RunTask], Any] = execute,
    ) -> None:
        if gpus_per_run < 1:
            raise FinegrainError(f"gpus per run must be >= 1, got {gpus_per_run}")
        self.gpus_per_run = gpus_per_run
        self.target = target
        if gpus is not None:
            gpus = list(gpus)
            groups = len(gpus) // gpus_per_run
            if groups < 1:
                raise FinegrainError(
                    f"{gpus_per_run} GPUs per run requested but {len(gpus)} visible "
                    f"({', '.join(gpus) or 'none'})"
                )
            self.slots: list[dict[str, str]] = [
                {"CUDA_VISIBLE_DEVICES": ",".join(gpus[i * gpus_per_run : (i + 1) * gpus_per_run])}
                for i in range(groups)
            ]
            if jobs is not None and jobs > groups:
                log.warning("--jobs %d > %d GPU groups: running %d at once", jobs, groups, groups)
            self.jobs = min(jobs or groups, groups)
            self.slots = self.slots[: self.jobs]
        else:
            self.jobs = max(1, jobs or 1)
            self.slots = [{} for _ in range(self.jobs)]
        self.in_process = gpus is None and self.jobs == 1

    def run(self, tasks: Iterable[RunTask], on_done: OnDone) -> None:
        failures = _Failures()
        with _sigterm_raises():
            if self.in_process:
                for task in _handed_out(tasks):
                    failures.total += 1
                    try:
                        self.target(task)
                    except Exception as exc:
                        failures.add(task, _describe(exc), traceback.format_exc())
                        continue
                    on_done(task)
            else:
                self._run_children(tasks, on_done, failures)
        failures.raise_any()

    def _run_children(self, tasks: Iterable[RunTask], on_done: OnDone, failures: _Failures) -> None:
        import multiprocessing
        from multiprocessing.connection import wait

        context = multiprocessing.get_context("spawn")
        pending = _handed_out(tasks)
        free = list(self.slots)
        running: dict[int, tuple] = {}  # sentinel -> (process, connection, task, slot)
        try:
            while True:
                while free:
                    task = next(pending, None)
                    if task is None:
                        break
                    failures.total += 1
                    slot = free.pop(0)
                    receive, send = context.Pipe(duplex=False)
                    args = (self.target, task, slot, os.getpid(), send)
                    process = context.Process(target=_child_main, args=args, name=task.label)
                    process.start()
                    send.close()
                    running[process.sentinel] = (process, receive, task, slot)
                if not running:
                    break
                for sentinel in wait(list(running)):
                    process, receive, task, slot = running.pop(sentinel)
                    try:
                        message = receive.recv() if receive.poll() else None
                    except EOFError:  # the worker died before it could say anything
                        message = None
                    receive.close()
                    process.join()
                    free.append(slot)
                    if message is None:
                        failures.add(
                            task, f"the worker process died (exit code {process.exitcode})"
                        )
                    elif message[0] == "ok":
                        on_done(task)
                    else:
                        failures.add(task, _describe(message[1]), message[2])
        finally:
            _stop_processes([entry[0] for entry in running.values()])


def _stop_processes(processes: Sequence, timeout: float = 10.0) -> None:
    """SIGTERM each live process, then SIGKILL what is still alive after ``timeout`` s."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)


# ---------------------------------------------------------------------------------------------
# Ray


def _require(module: str, extra: str):
    return require(module, extra, needed_by=f"the {extra} launcher")


def _ray_entry(target, task: RunTask) -> str:
    return target(task)


class RayLauncher:
    """Every run as a Ray task with ``num_gpus=gpus_per_run`` (0 when ``use_gpus`` is false:
    then ``gpus_per_run`` is the run's CPU processes) and ``cpus_per_run`` CPUs. ``address`` joins an existing cluster (``"auto"``, ``"ray://host:10001"``); without
    it a local cluster is started (with ``init_kwargs``, e.g. ``num_cpus``) and shut down
    afterwards. A task whose worker dies is retried up to ``retries`` times and resumes from
    its last checkpoint (a run that raises is not retried). The workers need finegrain
    installed (or a ``runtime_env``)."""

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        gpus_per_run: int = 1,
        use_gpus: bool = True,
        cpus_per_run: float = 1,
        retries: int = 3,
        init_kwargs: dict | None = None,
        target: Callable[[RunTask], Any] = execute,
    ) -> None:
        self.address = address
        self.gpus_per_run = gpus_per_run
        self.use_gpus = use_gpus
        self.cpus_per_run = cpus_per_run
        self.retries = retries
        self.init_kwargs = dict(init_kwargs or {})
        self.target = target

    def run(self, tasks: Iterable[RunTask], on_done: OnDone) -> None:
        ray = _require("ray", "ray")
        started = False
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False)
            kwargs.update(self.init_kwargs)
            ray.init(address=self.address, **kwargs)
            started = True
        remote = ray.remote(
            num_cpus=self.cpus_per_run,
            num_gpus=self.gpus_per_run if self.use_gpus else 0,
            max_retries=self.retries,
            retry_exceptions=False,
        )(_ray_entry)
        refs: dict = {}
        failures = _Failures()
        try:
            for task in _handed_out(tasks):
                refs[remote.remote(self.target, task)] = task
            failures.total = len(refs)
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    task = refs.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the run raised: its own error
                        failures.add(task, _describe(getattr(exc, "cause", None) or exc), str(exc))
                        continue
                    except ray.exceptions.RayError as exc:  # its worker died (after retries)
                        failures.add(task, _describe(exc))
                        continue
                    on_done(task)
        finally:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
        failures.raise_any()


# ---------------------------------------------------------------------------------------------
# Slurm (submitit)


class SubmititRun:
    """The callable submitit pickles for one run. Checkpointable: on preemption or timeout
    submitit calls :meth:`checkpoint`, which requeues the same run; it then resumes from its
    last checkpoint (the training loop's own), so nothing else needs saving."""

    def __init__(self, target: Callable[[RunTask], Any], task: RunTask) -> None:
        self.target = target
        self.task = task

    def __call__(self) -> str:
        return self.target(self.task)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SubmititRun(self.target, self.task))


class SlurmLauncher:
    """Every run as one Slurm job through submitit's ``AutoExecutor`` (logs in ``folder``).

    A job asks for ``gpus_per_run`` GPUs on one node (none when ``use_gpus`` is false; a run
    of several processes uses ``torch.distributed.run`` inside the job), ``cpus_per_run`` CPUs, ``time_min`` minutes on
    ``partition``; ``slurm_options`` go to sbatch as ``slurm_additional_parameters``. A job
    that is preempted or reaches its time limit is requeued (up to ``max_requeues`` times)
    and resumes; a job that dies is resubmitted up to ``retries`` times and resumes (a run that
    raises is not resubmitted: its error is final).
    ``cluster="local"`` runs the jobs as local processes (submitit's local executor).
    """

    name = "slurm"

    def __init__(
        self,
        folder: str | Path,
        *,
        partition: str | None = None,
        gpus_per_run: int = 1,
        use_gpus: bool = True,
        cpus_per_run: int = 4,
        time_min: int = 24 * 60,
        mem_gb: float | None = None,
        slurm_options: dict[str, str] | None = None,
        retries: int = 3,
        max_requeues: int = 10,
        cluster: str | None = None,
        poll_s: float = 5.0,
        target: Callable[[RunTask], Any] = execute,
    ) -> None:
        self.folder = Path(folder)
        self.partition = partition
        self.gpus_per_run = gpus_per_run
        self.use_gpus = use_gpus
        self.cpus_per_run = cpus_per_run
        self.time_min = time_min
        self.mem_gb = mem_gb
        self.slurm_options = dict(slurm_options or {})
        self.retries = retries
        self.max_requeues = max_requeues
        self.cluster = cluster
        self.poll_s = poll_s
        self.target = target
        #: attempts per run label (1 = first submission); filled by :meth:`run`
        self.attempts: dict[str, int] = {}

    def executor(self):
        """The configured ``submitit.AutoExecutor``."""
        submitit = _require("submitit", "slurm")
        executor = submitit.AutoExecutor(
            folder=self.folder / "%j", cluster=self.cluster, slurm_max_num_timeout=self.max_requeues
        )
        params: dict[str, Any] = dict(
            name="finegrain",
            timeout_min=self.time_min,
            nodes=1,
            tasks_per_node=1,
            cpus_per_task=self.cpus_per_run,
            gpus_per_node=self.gpus_per_run if self.use_gpus else 0,
        )
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if executor.cluster == "slurm":
            if self.partition:
                params["slurm_partition"] = self.partition
            if self.slurm_options:
                params["slurm_additional_parameters"] = self.slurm_options
        executor.update_parameters(**params)
        return executor

    def run(self, tasks: Iterable[RunTask], on_done: OnDone) -> None:
        submitit = _require("submitit", "slurm")
        executor = self.executor()
        jobs: dict = {}
        for task in _handed_out(tasks):
            jobs[executor.submit(SubmititRun(self.target, task))] = task
            self.attempts[task.label] = 1
        log.info("submitted %d jobs (logs in %s)", len(jobs), self.folder)
        failures = _Failures()
        failures.total = len(jobs)
        while jobs:
            finished = [job for job in jobs if job.done()]
            if not finished:
                time.sleep(self.poll_s)
                continue
            for job in finished:
                task = jobs.pop(job)
                try:
                    job.result()
                except submitit.core.utils.FailedJobError as exc:  # the run raised: no retry
                    failures.add(task, _job_error(str(exc)), f"job {job.job_id}: {exc}")
                    continue
                except submitit.core.utils.UncompletedJobError as exc:  # the job died
                    attempts = self.attempts[task.label]
                    if attempts > self.retries:
                        error = f"its job died {attempts} time(s); last: job {job.job_id}"
                        failures.add(task, f"{error} (log: {job.paths.stderr})", str(exc))
                        continue
                    self.attempts[task.label] += 1
                    log.warning("job %s of %s died; resubmitting", job.job_id, task.label)
                    jobs[executor.submit(SubmititRun(self.target, task))] = task
                    continue
                on_done(task)
        failures.raise_any()


def _job_error(text: str) -> str:
    """The last line of the traceback in a submitit ``FailedJobError`` (``Type: message``)."""
    parts = text.split("----------------------\n")
    trace = parts[1] if len(parts) > 2 else text
    lines = [line for line in trace.splitlines() if line.strip()]
    return _one_line(lines[-1] if lines else text)


# ---------------------------------------------------------------------------------------------


def uses_gpus(device: str | None) -> bool:
    """Whether runs on ``device`` (``cuda``, ``auto``/None with CUDA present) get whole GPUs."""
    if device in (None, "auto"):
        import torch

        return torch.cuda.is_available()
    return device == "cuda"


def launcher_for(
    name: str,
    *,
    out: str | Path,
    device: str | None = None,
    jobs: int | None = None,
    gpus_per_run: int = 1,
    address: str | None = None,
    partition: str | None = None,
    time_min: int | None = None,
    cpus_per_run: int | None = None,
    mem_gb: float | None = None,
    slurm_options: dict[str, str] | None = None,
    retries: int = 3,
    cluster: str | None = None,
) -> Launcher:
    """The launcher ``name`` (``local``, ``ray``, ``slurm``) for a benchmark writing to ``out``.

    On ``device`` ``cuda`` (or ``auto`` with CUDA present) each run gets ``gpus_per_run`` whole
    GPUs; on CPU ``gpus_per_run`` > 1 means that many CPU processes per run (gloo), which is how
    the multi-GPU path is tested without GPUs. ``jobs`` only applies to ``local`` (default: one
    per GPU group on CUDA, else 1). Slurm logs go to ``out/slurm``.
    """
    if gpus_per_run < 1:
        raise FinegrainError(f"--gpus-per-run must be >= 1, got {gpus_per_run}")
    factory = LAUNCHERS.get(name)
    return factory(
        out=Path(out), gpus=uses_gpus(device), jobs=jobs, gpus_per_run=gpus_per_run,
        address=address, partition=partition, time_min=time_min, cpus_per_run=cpus_per_run,
        mem_gb=mem_gb, slurm_options=slurm_options, retries=retries, cluster=cluster,
    )  # fmt: skip


@LAUNCHERS.register("local")
def _local(*, gpus: bool, jobs: int | None, gpus_per_run: int, **_: Any) -> Launcher:
    """Worker processes on this machine (--jobs at once; a GPU group each on CUDA)."""
    if gpus:
        return LocalLauncher(jobs, gpus=visible_gpus(), gpus_per_run=gpus_per_run)
    return LocalLauncher(jobs, gpus_per_run=gpus_per_run)


@LAUNCHERS.register("ray")
def _ray(
    *, gpus: bool, gpus_per_run: int, address, cpus_per_run, retries: int, **_: Any
) -> Launcher:
    """Every run a Ray task (a local Ray cluster, or --address); dead workers retried."""
    return RayLauncher(
        address=address,
        gpus_per_run=gpus_per_run,
        use_gpus=gpus,
        cpus_per_run=cpus_per_run or 1,
        retries=retries,
    )


@LAUNCHERS.register("slurm")
def _slurm(*, out: Path, gpus: bool, gpus_per_run: int, **options: Any) -> Launcher:
    """One Slurm job per run through submitit (requeued at its time limit, resumes)."""
    return SlurmLauncher(
        out / "slurm",
        partition=options["partition"],
        gpus_per_run=gpus_per_run,
        use_gpus=gpus,
        cpus_per_run=options["cpus_per_run"] or 4,
        time_min=options["time_min"] or 24 * 60,
        mem_gb=options["mem_gb"],
        slurm_options=options["slurm_options"],
        retries=options["retries"],
        cluster=options["cluster"],
    )


def _main(argv: Sequence[str]) -> int:
    """``python -m finegrain.experiment.launchers TASK_JSON``: one rank of a torchrun run."""
    if len(argv) != 1:
        print("usage: python -m finegrain.experiment.launchers TASK_JSON", file=sys.stderr)
        return 2
    task = _task_from_json(argv[0])
    import_modules(task.imports or ())
    _execute_here(task)
    return 0


if __name__ == "__main__":  # pragma: no cover - run by torch.distributed.run
    sys.exit(_main(sys.argv[1:]))
