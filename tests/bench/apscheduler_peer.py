"""The APScheduler peer of `make bench` (tests/src/bin/bench.rs runs it with the venv's python).

APScheduler 3.x configured as RuQi 1.x configures it: a BackgroundScheduler with a
ThreadPoolExecutor(20), misfire_grace_time=30, coalesce=False, on one job store (SQLAlchemy on a
SQLite file, SQLAlchemy on MariaDB through PyMySQL, or memory). Every job is added before it is
due: the script first times 100 adds, then picks the due second (or interval start) after the
time the remaining adds should take, adds them with the scheduler paused, and resumes it.

Workloads (figures are printed as ONE JSON line on stdout; progress lines go to stderr as
`PROGRESS <text>`):
  burst   N date jobs due at one second, no-op function: seconds from the due second to the
          last run started and ended
  script  the same with subprocess.run(['bash', 'scripts/x.sh']) in --workdir
  interval  N one-second interval jobs for --seconds: runs/s, lateness (run end - fire time)
          p50/p99, CPU seconds of this process per run, missed runs
  add     add_job of future date jobs in one thread for --seconds: adds/s, p50/p99 latency
"""

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
import time

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

UTC = dt.timezone.utc
FAR = dt.datetime(2100, 1, 1, tzinfo=UTC)
CALIBRATION = 100


def progress(text):
    print("PROGRESS " + text, file=sys.stderr, flush=True)


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    rank = int(round(p / 100.0 * (len(sorted_values) - 1)))
    return sorted_values[min(rank, len(sorted_values) - 1)]


def make_scheduler(args):
    if args.store == "memory":
        store = MemoryJobStore()
    elif args.store == "sqlite":
        store = SQLAlchemyJobStore(url="sqlite:///" + os.path.abspath(args.sqlite_path))
    elif args.store == "mysql":
        store = SQLAlchemyJobStore(url=args.mysql_url)
    else:
        raise SystemExit("unknown store " + args.store)
    return BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(20)},
        job_defaults={"coalesce": False, "misfire_grace_time": 30},
        timezone=UTC,
    )


class Runs:
    """What the job functions and the scheduler's events recorded (list.append is atomic)."""

    def __init__(self):
        self.starts = []
        self.ends = []
        self.executed = []  # (fire time, end) from EVENT_JOB_EXECUTED
        self.missed = []  # fire times from EVENT_JOB_MISSED
        self.errors = 0

    def listener(self, event):
        now = time.time()
        if event.code == EVENT_JOB_EXECUTED:
            self.executed.append((event.scheduled_run_time.timestamp(), now))
        elif event.code == EVENT_JOB_MISSED:
            self.missed.append(event.scheduled_run_time.timestamp())
        elif event.code == EVENT_JOB_ERROR:
            self.errors += 1


RUNS = Runs()


def noop():
    RUNS.starts.append(time.time())
    RUNS.ends.append(time.time())


def script(workdir):
    RUNS.starts.append(time.time())
    subprocess.run(["bash", "scripts/x.sh"], cwd=workdir, check=False)
    RUNS.ends.append(time.time())


def calibrate(sched, add_one):
    """Seconds one add takes on this store (100 future jobs added, timed, removed)."""
    t = time.time()
    for i in range(CALIBRATION):
        add_one("cal%d" % i, FAR)
    per_add = (time.time() - t) / CALIBRATION
    sched.remove_all_jobs()
    return per_add


def add_all(sched, n, label, add_one, when):
    """Adds n jobs (`when(i)` gives each one's date or start) before they are due."""
    t = time.time()
    for i in range(n):
        add_one("b%d" % i, when(i))
        if i % 500 == 499:
            progress("%s: added %d/%d jobs, %.1f s" % (label, i + 1, n, time.time() - t))
    return time.time() - t


def burst(args, sched):
    label = "%s %s" % (args.workload, args.store)
    func, fargs = (noop, []) if args.workload == "burst" else (script, [args.workdir])

    def add_one(job_id, when):
        sched.add_job(func, "date", args=fargs, run_date=when, id=job_id, name="bench")

    per_add = calibrate(sched, add_one)
    due = math.ceil(time.time() + args.n * per_add * 1.25 + 2)
    add_s = add_all(sched, args.n, label, add_one, lambda i: dt.datetime.fromtimestamp(due, UTC))
    added_at = time.time()
    sched.resume()
    last_count, last_change = -1, time.time()
    while True:
        done = len(RUNS.ends) + len(RUNS.missed) + RUNS.errors
        if done >= args.n:
            break
        if done != last_count:
            last_count, last_change = done, time.time()
        if time.time() > due and time.time() - last_change > 60:
            break  # stalled
        if time.time() > due:
            progress("%s: %d/%d runs, %.1f s after the due second" % (label, done, args.n, time.time() - due))
        time.sleep(0.2)
    starts, ends = sorted(RUNS.starts), sorted(RUNS.ends)
    return {
        "due": due,
        "add_seconds": add_s,
        "adds_per_s": args.n / add_s if add_s > 0 else None,
        "added_late": added_at > due,
        "runs": len(ends),
        "missed": len(RUNS.missed),
        "errors": RUNS.errors,
        "first_start_s": starts[0] - due if starts else None,
        "last_start_s": starts[-1] - due if starts else None,
        "last_end_s": ends[-1] - due if ends else None,
        "cpu_s": time.process_time(),
    }


def interval(args, sched):
    label = "interval %s" % args.store

    def add_one(job_id, when):
        sched.add_job(noop, "interval", seconds=1, start_date=when, id=job_id, name="bench")

    per_add = calibrate(sched, add_one)
    t0 = math.ceil(time.time() + args.n * per_add * 1.25 + 1)
    # fire offsets spread over the second, as RuQi's grids are (creation time + k s)
    add_s = add_all(sched, args.n, label, add_one, lambda i: dt.datetime.fromtimestamp(t0 + i / args.n, UTC))
    sched.resume()
    start, end = t0 + 1, t0 + 1 + args.seconds
    while time.time() < start:
        time.sleep(0.01)
    cpu0 = time.process_time()
    while time.time() < end:
        progress("%s: %.0f/%d s measured, %d runs" % (label, time.time() - start, args.seconds, len(RUNS.executed)))
        time.sleep(min(1.0, max(0.0, end - time.time())))
    cpu1 = time.process_time()
    time.sleep(2)  # let runs of fire times inside the window end (as the harness does for RuQi)
    sched.pause()
    runs = [(f, e) for (f, e) in list(RUNS.executed) if start <= f < end]
    late = sorted(e - f for (f, e) in runs)
    expected = args.n * args.seconds
    return {
        "add_seconds": add_s,
        "window_s": args.seconds,
        "due_runs": expected,
        "runs": len(runs),
        "runs_per_s": len(runs) / args.seconds,
        "due_per_s": args.n,
        "lateness_p50_s": percentile(late, 50),
        "lateness_p99_s": percentile(late, 99),
        "missed_events": len([f for f in RUNS.missed if start <= f < end]),
        "missed": max(0, expected - len(runs)),
        "cpu_s": cpu1 - cpu0,
        "cpu_per_run_s": (cpu1 - cpu0) / len(runs) if runs else None,
    }


def add_rate(args, sched):
    sched.resume()
    lat = []
    end = time.time() + args.seconds
    i = 0
    while time.time() < end:
        t = time.perf_counter()
        sched.add_job(noop, "date", run_date=FAR, id="a%d" % i, name="bench")
        lat.append(time.perf_counter() - t)
        i += 1
        if i % 500 == 0:
            progress("add %s: %d adds" % (args.store, i))
    lat.sort()
    return {
        "adds": len(lat),
        "adds_per_s": len(lat) / args.seconds,
        "p50_s": percentile(lat, 50),
        "p99_s": percentile(lat, 99),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", choices=["burst", "script", "interval", "add"])
    p.add_argument("--store", choices=["memory", "sqlite", "mysql"], required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--sqlite-path", default="target/bench/peer.sqlite")
    p.add_argument("--mysql-url", default="")
    p.add_argument("--workdir", default=".")
    args = p.parse_args()
    sched = make_scheduler(args)
    sched.add_listener(RUNS.listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    sched.start(paused=True)
    threading.current_thread().name = "bench"
    run = {"burst": burst, "script": burst, "interval": interval, "add": add_rate}[args.workload]
    out = run(args, sched)
    out.update({"workload": args.workload, "store": args.store, "n": args.n})
    print(json.dumps(out), flush=True)
    sys.stderr.flush()
    # the executor's threads may still be busy with late runs: leave without waiting for them
    os._exit(0)


if __name__ == "__main__":
    main()
