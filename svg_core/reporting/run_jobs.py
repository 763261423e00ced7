"""The job graph's nodes and its scheduler for ``python -m svg_core.reporting.runs`` (see that module).

A job knows whether its result is on disk, the shell line it runs and how to run it; :func:`run_jobs`
runs a graph in dependency order with lock files, so two runners can share a plan.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from filelock import FileLock, Timeout  # a dependency of torch

@dataclass(frozen=True, kw_only=True)
class Job:
    """One node of the job graph.

    Attributes:
        key: unique name, e.g. ``train:vgcl_pre_s0``, ``eval:base_s0_normal``, ``archive``.
        after: keys of jobs that must succeed first (those absent from the plan are ignored).
        requires: a file that must exist when the job's turn comes, else it is skipped (finished runs only).
        exclusive: jobs naming the same resource never run at once (the shared transcript cache).
    """

    key: str
    after: tuple[str, ...] = ()
    requires: Path | None = None
    exclusive: str | None = None

    def finished(self) -> bool:
        """Whether the job's result is on disk (a finished job is skipped)."""
        return False

    def describe(self, python: str) -> str:
        """The shell line the job runs now (``--dry-run``)."""
        raise NotImplementedError

    def execute(self, python: str) -> int:
        """Run the job; returns the exit status (0 = success)."""
        raise NotImplementedError

    @property
    def log(self) -> Path | None:
        """Where the job's output goes (named when it fails)."""
        return None


@dataclass(frozen=True, kw_only=True)
class TrainJob(Job):
    """A ``python -m svg_core.train`` run into ``run_dir`` (``args`` start with ``-m``; no ``--resume``)."""

    run_dir: Path
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def log(self) -> Path:
        return self.run_dir.parent / f"{self.name}.log"

    def finished(self) -> bool:
        return (self.run_dir / "summary.json").exists()

    def _command(self, python: str) -> list[str]:
        resume = (self.run_dir / "last" / "training_state.pt").exists()  # killed part-way: same weights go on
        return [python, *self.args, *(["--resume"] if resume else [])]

    def describe(self, python: str) -> str:
        return f"{shlex.join(self._command(python))} >> {shlex.quote(str(self.log))}"

    def execute(self, python: str) -> int:
        command = self._command(python)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        start_sec = time.monotonic()
        with self.log.open("a" if "--resume" in command else "w") as log:  # a fresh run starts a fresh log
            status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
        with self.log.open("a") as log:  # one line per part of a resumed run: results sums them
            log.write(f"{self.name} wall {time.monotonic() - start_sec:.2f} s\n")
        return status


@dataclass(frozen=True, kw_only=True)
class ReportJob(Job):
    """An evaluation whose printed report is moved to ``report`` (a ``.txt``) only once it finished."""

    report: Path
    args: tuple[str, ...]
    done_when: Path | None = None  # a file whose existence means finished (default: the report)

    @property
    def log(self) -> Path:
        return self.report.with_name(self.report.name + ".part")

    def finished(self) -> bool:
        return (self.done_when or self.report).exists()

    def describe(self, python: str) -> str:
        return f"{shlex.join([python, *self.args])} > {shlex.quote(str(self.report))}"

    def execute(self, python: str) -> int:
        self.report.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as part:
            status = subprocess.run([python, *self.args], stdout=part, stderr=subprocess.STDOUT).returncode
        if status == 0:
            self.log.replace(self.report)
        return status


@dataclass(frozen=True, kw_only=True)
class ArchiveJob(Job):
    """Copy the logged results (no weights) of finished runs and finished evaluations of ``out`` to ``dest``."""

    out: Path
    dest: Path
    data: Path

    def _results_command(self, python: str) -> list[str]:
        return [python, "-m", "svg_core.results", str(self.dest), "--data", str(self.data), "--save-data-summary"]

    def describe(self, python: str) -> str:
        return (f"# copy finished runs and evaluations of {self.out} to {self.dest}\n"
                f"{shlex.join(self._results_command(python))} > /dev/null")

    def execute(self, python: str) -> int:
        for source in archived_files(self.out):
            target = self.dest / source.relative_to(self.out)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        self.dest.mkdir(parents=True, exist_ok=True)
        status = subprocess.run(self._results_command(python), stdout=subprocess.DEVNULL).returncode  # prior + needs
        if status == 0:
            print(f"archived {self.out} -> {self.dest}", flush=True)
        return status


def archived_files(out: Path) -> list[Path]:
    """The files the archive keeps: small enough to commit, finished work only.

    Per finished run (``NAME/summary.json``): ``NAME.log``, every ``log.csv`` and ``summary.json``, and
    ``best/config.json``, ``best/metrics.json``; a run killed part-way stays out until it is resumed.
    Under ``eval/``: the ``.txt`` reports, the ``.jsonl`` predictions and ``.metrics.json`` of finished
    evaluations (those whose ``.txt`` report exists), and the cascades' ``transcripts.jsonl`` cache.

    Args:
        out: the runs folder.

    Returns:
        the files, sorted.
    """
    keep: list[Path] = []
    for summary in sorted(out.glob("*/summary.json")):
        run_dir = summary.parent
        keep += [out / f"{run_dir.name}.log"] if (out / f"{run_dir.name}.log").is_file() else []
        keep += [p for p in run_dir.rglob("*") if p.is_file() and (
            p.name in ("log.csv", "summary.json")
            or (p.parent.name == "best" and p.name in ("config.json", "metrics.json")))]
    for path in sorted((out / "eval").rglob("*")) if (out / "eval").is_dir() else ():
        stem = path.name.removesuffix(".metrics.json").removesuffix(".jsonl")
        finished = stem != path.name and path.with_name(f"{stem}.txt").is_file()  # not NAME.txt.part
        if path.is_file() and (path.suffix == ".txt" or path.name == "transcripts.jsonl" or finished):
            keep.append(path)
    return sorted(set(keep))


# ---------------------------------------------------------------------------------------------
# the scheduler


class Outcome(Enum):
    """How one attempt at a job ended."""

    RAN = "done"
    SKIPPED = "skip"  # finished already, or its required run is not finished
    FAILED = "failed"
    BUSY = "busy"  # another runner holds the job's lock


@dataclass
class _Attempt:
    job: Job
    python: str
    lock_dir: Path
    wait_for_lock: bool
    echo: Callable[[str], None] = field(default=print)

    def __call__(self) -> tuple[Outcome, str]:
        lock = FileLock(self.lock_dir / f"{self.job.key.replace(':', '-')}.lock")
        try:
            lock.acquire(blocking=self.wait_for_lock)
        except Timeout:
            return Outcome.BUSY, "another runner has it"
        try:
            if self.job.finished():
                return Outcome.SKIPPED, "finished"
            if self.job.requires is not None and not self.job.requires.exists():
                return Outcome.SKIPPED, f"needs {self.job.requires}"
            shared = FileLock(self.lock_dir / f"{self.job.exclusive}.lock") if self.job.exclusive else None
            if shared is not None:
                shared.acquire()
            try:
                self.echo(f"{_clock()} start {self.job.key}")
                status = self.job.execute(self.python)
            except OSError as err:  # e.g. the python executable vanished
                return Outcome.FAILED, str(err)
            finally:
                if shared is not None:
                    shared.release()
            if status != 0:
                return Outcome.FAILED, f"exit {status}" + (f"; log {self.job.log}" if self.job.log else "")
            return Outcome.RAN, ""
        finally:
            lock.release()


def _clock() -> str:
    return time.strftime("%H:%M:%S", time.gmtime())


def run_jobs(jobs: Sequence[Job], python: str, lock_dir: Path, max_jobs: int = 1,
             echo: Callable[[str], None] = print) -> list[str]:
    """Run a job graph: each job once its ``after`` jobs succeeded, up to ``max_jobs`` at once.

    Dependencies are resolved here, in-process; lock files under ``lock_dir`` keep a second runner off
    a job this one runs. A job whose lock another runner holds is put off while other jobs are ready.

    Args:
        jobs: the graph in run order (see :func:`plan_jobs`).
        python: executable that runs the ``-m svg_core...`` commands.
        lock_dir: folder of the lock files (created).
        max_jobs: most jobs running at once.
        echo: where progress lines go.

    Returns:
        one line per job that failed or was stopped by a failure (empty: all succeeded or were skipped).
    """
    keys = {job.key for job in jobs}
    order = {job.key: n for n, job in enumerate(jobs)}
    needs = {job.key: [k for k in job.after if k in keys] for job in jobs}
    state: dict[str, Outcome] = {}
    problems: list[str] = []
    pending, held_elsewhere = list(jobs), set()
    running: dict[Future, Job] = {}
    lock_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max_jobs) as pool:
        while pending or running:
            for job in list(pending):  # in run order, so a stop reaches the whole chain in one pass
                cause = next((k for k in needs[job.key] if state.get(k) == Outcome.FAILED), None)
                if cause is not None:
                    pending.remove(job)
                    state[job.key] = Outcome.FAILED
                    problems.append(f"not run: {job.key} (after {cause})")
                    echo(f"stop {job.key} (after {cause})")
            in_use = {job.exclusive for job in running.values() if job.exclusive}
            ready = [job for job in pending if all(state.get(k) in (Outcome.RAN, Outcome.SKIPPED) for k in needs[job.key])]
            for job in sorted(ready, key=lambda j: j.key in held_elsewhere):  # fresh jobs before waiting on a lock
                if len(running) >= max_jobs:
                    break
                if job.exclusive is not None and job.exclusive in in_use:
                    continue
                in_use |= {job.exclusive} if job.exclusive else set()
                pending.remove(job)
                running[pool.submit(_Attempt(job, python, lock_dir, job.key in held_elsewhere, echo))] = job
            if not running:  # all left were stopped; a graph in run order never waits on itself
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                outcome, note = future.result()
                if outcome == Outcome.BUSY:
                    echo(f"put off {job.key} ({note})")
                    held_elsewhere.add(job.key)
                    pending.append(job)
                    pending.sort(key=lambda j: order[j.key])
                    continue
                state[job.key] = outcome
                if outcome == Outcome.FAILED:
                    problems.append(f"failed: {job.key} ({note})")
                echo(f"{_clock()} {outcome.value} {job.key}" + (f" ({note})" if note else ""))
    return problems
