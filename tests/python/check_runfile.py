#!/usr/bin/env python3
"""Checks that a chestlab run file follows docs/results-format.md, reading it with h5py.

usage: check_runfile.py RUN.h5

Prints each check and exits 1 when any fails (all failures are listed), 2 on bad usage.
"""
import math
import re
import sys

import h5py
import numpy as np

RUN_STATUS = {"running", "complete", "interrupted", "failed"}
FOLD_STATUS = {"pending", "running", "complete", "failed", "interrupted", "stopped_early"}
FINISHED = {"complete", "stopped_early"}
HISTORY_FIXED = [("epoch", np.int64), ("lr", np.float64), ("train_loss", np.float64),
                 ("val_loss", np.float64), ("seconds", np.float64)]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Checker:
    def __init__(self):
        self.failures = []

    def ok(self, condition, what):
        print(("ok:   " if condition else "FAIL: ") + what)
        if not condition:
            self.failures.append(what)
        return condition

    def attr(self, obj, name, kind):
        """The attribute if present with the documented type: 'str', 'int' or 'float'."""
        where = f"{obj.name} attribute '{name}'"
        if not self.ok(name in obj.attrs, f"{where} exists"):
            return None
        value = obj.attrs[name]
        if kind == "str":
            good = isinstance(value, str)
        elif kind == "int":
            good = isinstance(value, (np.integer, int)) and np.asarray(value).dtype == np.int64
        else:
            good = isinstance(value, (np.floating, float)) and np.asarray(value).dtype == np.float64
        return value if self.ok(good, f"{where} is {kind} (got {type(value).__name__})") else None

    def is_vlen_utf8(self, dtype):
        info = h5py.check_string_dtype(dtype)
        return info is not None and info.length is None and info.encoding == "utf-8"

    def table(self, group, name, fields):
        """A 1-D compound dataset whose columns start with `fields` [(name, 'str'|numpy type)]."""
        where = f"{group.name.rstrip('/')}/{name}"
        if not self.ok(name in group and isinstance(group[name], h5py.Dataset), f"{where} is a dataset"):
            return None
        ds = group[name]
        if not self.ok(ds.ndim == 1 and ds.dtype.names is not None, f"{where} is a 1-D compound table"):
            return None
        names = list(ds.dtype.names)
        self.ok(names[:len(fields)] == [f for f, _ in fields],
                f"{where} columns start with {[f for f, _ in fields]} (got {names})")
        for field, kind in fields:
            if field not in names:
                continue
            dt = ds.dtype[field]
            good = self.is_vlen_utf8(dt) if kind == "str" else dt == np.dtype(kind)
            self.ok(good, f"{where} column '{field}' is {'UTF-8 string' if kind == 'str' else np.dtype(kind)}")
        return ds[()]


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def check_root(c, f):
    for name in ["chestlab_version", "experiment", "run_id", "config_hash", "created", "finished", "monitor"]:
        c.attr(f, name, "str")
    c.attr(f, "seed", "int")
    status = c.attr(f, "status", "str")
    if status is not None:
        c.ok(status in RUN_STATUS, f"status '{status}' is one of {sorted(RUN_STATUS)}")
    mode = c.attr(f, "monitor_mode", "str")
    if mode is not None:
        c.ok(mode in ("max", "min"), f"monitor_mode '{mode}' is max or min")
    created = f.attrs.get("created")
    if isinstance(created, str):
        c.ok(bool(ISO_UTC.match(created)), f"created '{created}' is ISO 8601 UTC")
    finished = f.attrs.get("finished")
    if isinstance(finished, str):
        c.ok(finished == "" or bool(ISO_UTC.match(finished)), f"finished '{finished}' is empty or ISO 8601 UTC")


def check_config(c, f):
    if not c.ok("config" in f and isinstance(f["config"], h5py.Dataset), "/config is a dataset"):
        return
    ds = f["config"]
    if c.ok(ds.shape == () and c.is_vlen_utf8(ds.dtype), "/config is a scalar UTF-8 string"):
        c.ok(isinstance(ds.asstr()[()], str), "/config reads as str")


def check_environment(c, f):
    if not c.ok("environment" in f and isinstance(f["environment"], h5py.Group), "/environment is a group"):
        return
    env = f["environment"]
    for name in ["libtorch_version", "device", "hostname", "git_commit", "chestlab_version", "experiment_file",
                 "base_dir"]:
        c.attr(env, name, "str")
    c.attr(env, "threads", "int")
    c.attr(env, "world_size", "int")
    c.table(env, "plugins", [(n, "str") for n in ["name", "kind", "version", "file", "hash"]])


def check_split(c, fold):
    for part in ["train", "val"]:
        where = f"{fold.name}/split/{part}"
        if not c.ok(f"split/{part}" in fold, f"{where} exists"):
            continue
        ds = fold[f"split/{part}"]
        c.ok(ds.ndim == 1 and c.is_vlen_utf8(ds.dtype), f"{where} is a 1-D list of UTF-8 strings ({ds.shape[0]})")


def check_weights(c, fold, best_epoch):
    if best_epoch is None or best_epoch < 0:
        return
    if not c.ok("weights" in fold, f"{fold.name}/weights exists (best_epoch {best_epoch})"):
        return
    weights = fold["weights"]
    arrays = {name: weights[name] for name in weights}
    all_float32 = all(isinstance(d, h5py.Dataset) and d.dtype == np.float32 for d in arrays.values())
    c.ok(all_float32, f"{fold.name}/weights holds {len(arrays)} float32 datasets")
    total = sum(d.size for d in arrays.values() if isinstance(d, h5py.Dataset))
    print(f"      {total} values, e.g. {list(arrays)[:3]}")


def check_resume(c, fold):
    if "resume" not in fold:
        return
    resume = fold["resume"]
    c.attr(resume, "next_epoch", "int")
    parts = {name: resume[name] for name in resume}
    c.ok(all(isinstance(d, h5py.Dataset) and d.ndim == 1 and d.dtype == np.uint8 for d in parts.values()),
         f"{resume.name} holds 1-D uint8 parts {sorted(parts)}")


def check_per_image(c, group, name, best_epoch=None):
    """Optional per-image table: an `id` column, float64 columns, an int64 `epoch` attribute."""
    if name not in group:
        return
    rows = c.table(group, name, [("id", "str")])
    ds = group[name]
    if rows is not None:
        metrics = list(rows.dtype.names[1:])
        c.ok(all(rows.dtype[m] == np.float64 for m in metrics), f"{ds.name} columns {metrics} are float64")
    epoch = c.attr(ds, "epoch", "int")
    if best_epoch is not None and epoch is not None:
        c.ok(epoch == best_epoch, f"{ds.name} epoch {epoch} is the best epoch {best_epoch}")


def check_fold(c, fold):
    """Returns (status, {metric: value at best epoch}) for the summary check."""
    c.ok(fold.name.split("/")[-1].isdigit(), f"{fold.name} is named by its index")
    status = c.attr(fold, "status", "str")
    if status is not None:
        c.ok(status in FOLD_STATUS, f"{fold.name} status '{status}' is one of {sorted(FOLD_STATUS)}")
    best_epoch = c.attr(fold, "best_epoch", "int")
    best_value = c.attr(fold, "best_value", "float")
    c.attr(fold, "error", "str")
    if best_epoch is not None and best_value is not None and best_epoch < 0:
        c.ok(math.isnan(best_value), f"{fold.name} best_value is NaN without a best epoch")
    history = c.table(fold, "history", HISTORY_FIXED)
    best_metrics = {}
    if history is not None:
        epochs = list(history["epoch"])
        c.ok(all(a < b for a, b in zip(epochs, epochs[1:])), f"{fold.name}/history epochs increase ({len(epochs)} rows)")
        metrics = list(history.dtype.names[len(HISTORY_FIXED):])
        c.ok(all(history.dtype[m] == np.float64 for m in metrics), f"{fold.name}/history metrics {metrics} are float64")
        if best_epoch is not None and best_epoch >= 0:
            rows = history[history["epoch"] == best_epoch]
            if c.ok(len(rows) == 1, f"{fold.name} best_epoch {best_epoch} has a history row"):
                best_metrics = {m: float(rows[0][m]) for m in metrics}
    check_split(c, fold)
    check_weights(c, fold, best_epoch)
    check_resume(c, fold)
    check_per_image(c, fold, "per_image", best_epoch)
    return status, best_metrics


def expected_summary(folds):
    values = {}
    for status, metrics in folds:
        if status in FINISHED:
            for m, v in metrics.items():
                values.setdefault(m, []).append(v)
    return {m: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for m, v in values.items()}


def check_summary(c, f, folds):
    if "summary" not in f:
        print("      no /summary (written when the run finishes)")
        return
    rows = c.table(f, "summary", [("metric", "str"), ("mean", np.float64), ("std", np.float64), ("n_folds", np.int64)])
    if rows is None:
        return
    got = {text(r["metric"]): (float(r["mean"]), float(r["std"]), int(r["n_folds"])) for r in rows}
    want = expected_summary(folds)
    c.ok(set(got) == set(want), f"/summary lists the metrics {sorted(want)}")
    for m in set(got) & set(want):
        close = all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(got[m][:2], want[m][:2]))
        c.ok(close and got[m][2] == want[m][2],
             f"/summary {m}: mean {got[m][0]:.4f} std {got[m][1]:.4f} n {got[m][2]} match the folds' best epochs")


def check_run(path):
    c = Checker()
    with h5py.File(path, "r") as f:
        check_root(c, f)
        check_config(c, f)
        check_environment(c, f)
        folds = []
        if c.ok("folds" in f and isinstance(f["folds"], h5py.Group), "/folds is a group"):
            for name in sorted(f["folds"], key=lambda n: int(n) if n.isdigit() else -1):
                folds.append(check_fold(c, f["folds"][name]))
        check_summary(c, f, folds)
        if "skipped" in f:
            c.table(f, "skipped", [("id", "str"), ("file", "str"), ("reason", "str")])
        if "test" in f:
            c.table(f, "test", [("metric", "str"), ("value", np.float64)])
        check_per_image(c, f, "test_per_image")
    if c.failures:
        print(f"{path}: {len(c.failures)} check(s) failed")
        return 1
    print(f"{path}: OK, matches docs/results-format.md")
    return 0


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        return check_run(argv[1])
    except OSError as e:
        print(f"{argv[1]}: cannot open as HDF5: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
