#!/usr/bin/env python3
"""kill -9 campaign over one run: crash safety and exact resume, end to end.

usage: kill_campaign.py [--kills N] [--seed S] [--epochs E] [--exe PATH] [--work DIR]
                        [--min-delay SEC] [--max-delay SEC]

Trains a small deterministic CPU run (tests/data/tiny.toml, 2 folds x E epochs) once without
interruption (the reference), then trains it again and kills it with SIGKILL at N random
moments (seeded: the same --seed draws the same delays), restarting it each time with
`chestlab run --resume` (or `run` again while no run file exists yet). At every kill:

  * the run file, if it exists, opens (h5py) and has only whole epochs: each fold's history
    is epochs 0..n-1 with every metric column, a best epoch among them with its weights, and a
    resume state that continues right after the last recorded epoch;
  * tests/python/check_runfile.py accepts the file as documented (docs/results-format.md).

After the last kill the run is resumed to its end, and its file must equal the reference bit
for bit: every fold's status, history (all columns but the wall-clock seconds), best epoch and
value, splits and best weights.

Prints one line per kill and a summary; exit 0 when every check held, 1 when one did not,
2 on bad usage. Needs h5py (Debian: python3-h5py with /usr/bin/python3). Takes a few minutes:
the reference run plus 50 restarts of at most start-up time + 4 epochs each.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = "kill-campaign"


def run_file(out):
    return out / "tiny" / f"{RUN_ID}.h5"


def start(exe, args, log):
    return subprocess.Popen([exe] + args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def whole_epochs(path):
    """Problems with the file at `path` (empty list: it opens and holds whole epochs)."""
    problems = []
    try:
        with h5py.File(path, "r") as f:
            if "folds" not in f:
                return ["no /folds group"]
            for name, fold in f["folds"].items():
                where = f"fold {name}"
                history = fold["history"][()]
                epochs = list(history["epoch"]) if len(history) else []
                if epochs != list(range(len(epochs))):
                    problems.append(f"{where}: history epochs {epochs} are not 0..n-1")
                fixed = {"epoch", "lr", "train_loss", "val_loss", "seconds"}
                metrics = [c for c in history.dtype.names if c not in fixed]
                if metrics != ["mean_iou", "pixel_accuracy"]:
                    problems.append(f"{where}: metric columns {metrics}")
                best = int(fold.attrs["best_epoch"])
                if epochs and not 0 <= best < len(epochs):
                    problems.append(f"{where}: best epoch {best} outside the {len(epochs)} recorded")
                if best >= 0 and ("weights" not in fold or len(fold["weights"]) == 0):
                    problems.append(f"{where}: best epoch {best} without weights")
                if "resume" in fold:
                    next_epoch = int(fold["resume"].attrs["next_epoch"])
                    if next_epoch != len(epochs):
                        problems.append(f"{where}: resume continues at epoch {next_epoch}, "
                                        f"history holds {len(epochs)}")
                elif epochs:
                    problems.append(f"{where}: {len(epochs)} epoch(s) but no resume state")
    except Exception as e:  # noqa: BLE001 - any failure to open or read is the finding
        problems.append(f"cannot read: {type(e).__name__}: {e}")
    return problems


def format_ok(path):
    checker = ROOT / "tests" / "python" / "check_runfile.py"
    p = subprocess.run([sys.executable, str(checker), str(path)], capture_output=True, text=True)
    if p.returncode == 0:
        return []
    return [line for line in p.stdout.splitlines() if line.startswith("FAIL")] or [p.stdout[-500:]]


def differences(a_path, b_path):
    """Where two run files differ in what a rerun must reproduce (all but wall-clock time)."""
    diffs = []
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        if a.attrs["status"] != b.attrs["status"]:
            diffs.append(f"status {a.attrs['status']} != {b.attrs['status']}")
        fa, fb = a["folds"], b["folds"]
        if sorted(fa) != sorted(fb):
            return diffs + [f"folds {sorted(fa)} != {sorted(fb)}"]
        for k in sorted(fa):
            x, y = fa[k], fb[k]
            for attr in ["status", "best_epoch", "best_value", "error"]:
                vx, vy = x.attrs[attr], y.attrs[attr]
                same = (np.isnan(vx) and np.isnan(vy)) if attr == "best_value" and np.isnan(vx) else vx == vy
                if not same:
                    diffs.append(f"fold {k} {attr}: {vx!r} != {vy!r}")
            hx, hy = x["history"][()], y["history"][()]
            if hx.dtype.names != hy.dtype.names or len(hx) != len(hy):
                diffs.append(f"fold {k} history shape: {len(hx)} vs {len(hy)} rows")
            else:
                for column in hx.dtype.names:
                    if column != "seconds" and hx[column].tobytes() != hy[column].tobytes():
                        diffs.append(f"fold {k} history column {column} differs")
            for split in ["train", "val"]:
                if list(x["split"][split][()]) != list(y["split"][split][()]):
                    diffs.append(f"fold {k} split {split} differs")
            wx, wy = x.get("weights"), y.get("weights")
            names_x = list(wx) if wx is not None else []
            names_y = list(wy) if wy is not None else []
            if names_x != names_y:
                diffs.append(f"fold {k} weight names differ")
                continue
            for n in names_x:
                if wx[n][()].tobytes() != wy[n][()].tobytes():
                    diffs.append(f"fold {k} weights {n} differ")
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--exe", default=str(ROOT / "build" / "bin" / "chestlab"))
    ap.add_argument("--work", default=str(ROOT / "build" / "test_scratch" / "kill_campaign"))
    ap.add_argument("--min-delay", type=float, default=0.3, help="earliest kill after a start (seconds)")
    ap.add_argument("--max-delay", type=float, default=0.0,
                    help="latest kill after a start; 0: the program's start-up time plus four epochs (measured)")
    args = ap.parse_args()
    if args.kills < 1 or args.epochs < 1:
        ap.error("--kills and --epochs must be positive")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tiny = str(ROOT / "tests" / "data" / "tiny.toml")
    base = ["run", tiny, "--set", f"train.epochs={args.epochs}", "--set", "train.deterministic=true",
            "--device", "cpu", "--quiet", "--run-id", RUN_ID]

    # The reference, uninterrupted; its duration sets the range of kill moments.
    ref_out = work / "reference"
    t0 = time.monotonic()
    with open(work / "reference.log", "w") as log:
        rc = subprocess.call([args.exe] + base + ["--output", str(ref_out)], stdout=log, stderr=subprocess.STDOUT)
    ref_seconds = time.monotonic() - t0
    if rc != 0:
        print(f"the reference run failed (exit {rc}); see {work / 'reference.log'}")
        return 1
    reference = run_file(ref_out)
    with h5py.File(reference, "r") as f:
        epochs_total = sum(len(fold["history"]) for fold in f["folds"].values())
        seconds = sum(float(np.sum(fold["history"]["seconds"])) for fold in f["folds"].values())
    startup = max(0.5, ref_seconds - seconds)
    max_delay = args.max_delay or startup + 4.0 * seconds / max(1, epochs_total)
    print(f"reference: {ref_seconds:.1f} s, {epochs_total} epochs ({seconds / epochs_total:.2f} s each), "
          f"start-up {startup:.1f} s; kills {args.min_delay:.1f}..{max_delay:.1f} s after each start")

    rng = random.Random(args.seed)
    out = work / "killed"
    target = run_file(out)
    failures = []
    kills = finished_early = 0
    recorded = []
    log = open(work / "killed.log", "w")
    while kills < args.kills:
        resume = target.exists()
        cmd = ["run", "--resume", str(target), "--quiet"] if resume else base + ["--output", str(out)]
        proc = start(args.exe, cmd, log)
        delay = rng.uniform(args.min_delay, max_delay)
        try:
            rc = proc.wait(timeout=delay)
            # It ended on its own before the kill: the run is complete; restart from scratch so
            # that the campaign keeps killing (the finished file is checked first).
            finished_early += 1
            if rc != 0:
                failures.append(f"a start ended by itself with exit {rc} (see {work / 'killed.log'})")
                break
            problems = whole_epochs(target) + format_ok(target) + differences(target, reference)
            failures += [f"finished early: {p}" for p in problems]
            print(f"  start {kills + finished_early}: finished by itself after {delay:.2f} s; "
                  f"{'ok' if not problems else 'PROBLEMS'}; starting again")
            shutil.rmtree(out)
            recorded = []
            continue
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        if not target.exists():
            print(f"  kill {kills:2d} after {delay:.2f} s ({'resume' if resume else 'run'}): no run file yet")
            recorded.append(-1)
            continue
        problems = whole_epochs(target) + format_ok(target)
        with h5py.File(target, "r") as f:
            done = sum(len(fold["history"]) for fold in f["folds"].values()) if "folds" in f else 0
        recorded.append(done)
        print(f"  kill {kills:2d} after {delay:.2f} s ({'resume' if resume else 'run'}): {done} whole epoch(s) on "
              f"disk; {'ok' if not problems else '; '.join(problems)}")
        failures += [f"kill {kills}: {p}" for p in problems]
        if len(recorded) >= 2 and 0 <= done < max(recorded[:-1]):
            failures.append(f"kill {kills}: {done} epochs on disk, fewer than the {max(recorded[:-1])} before")

    # To the end, then bit for bit against the reference.
    rc = 0
    while True:
        cmd = ["run", "--resume", str(target), "--quiet"] if target.exists() else base + ["--output", str(out)]
        rc = subprocess.call([args.exe] + cmd, stdout=log, stderr=subprocess.STDOUT)
        if rc != 130:
            break
    log.close()
    if rc != 0:
        failures.append(f"the final resume exited {rc} (see {work / 'killed.log'})")
    else:
        problems = whole_epochs(target) + format_ok(target)
        diffs = differences(target, reference)
        failures += [f"final file: {p}" for p in problems] + [f"final file differs from the reference: {d}" for d in diffs]
    print(f"\n{kills} kills ({sum(1 for r in recorded if r < 0)} before the run file existed), "
          f"{finished_early} start(s) finished before their kill; final exit {rc}")
    if failures:
        print(f"FAILED: {len(failures)} problem(s):")
        for f in failures:
            print("  " + f)
        return 1
    print(f"ok: every killed file opened with whole epochs, and the resumed run equals the uninterrupted "
          f"reference bit for bit ({epochs_total} epochs: history, best epochs and values, splits, weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
