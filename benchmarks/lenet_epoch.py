"""Seconds per LeNet epoch on Fashion-MNIST for each training setup and workers x threads.

What the flagship workload can get out of this machine, measured, so the examples and README
choose by epochs per minute instead of by core count. Each setup runs in fresh processes
(TensorFlow's thread pools are fixed at start-up):

- ``textbook``: the chapter's ``model.fit`` on NumPy arrays (the example before this benchmark);
- ``pipeline``: the example's ``tf.data`` input (cached, shuffled, prefetched) and a large
  evaluation batch (``examples/lenet_fashion_mnist.py`` ``train_lenet``);
- ``pipeline-xla``: the same with the train step compiled by XLA (``jit_compile=True``);

for 1 worker x 2 threads and 2 workers x 1 thread (two processes at once). The first epoch of
a process includes graph tracing and XLA compilation; it is printed apart ("first") from the
steady-state epochs ("epoch"), and the per-trial cost of a new batch size is the difference.

    python benchmarks/lenet_epoch.py --data-dir ../shared/data/fashion-mnist --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUPS = ("textbook", "pipeline", "pipeline-xla")
LAYOUTS = ((1, 2), (2, 1))  # (workers, threads per worker)


def child(args: argparse.Namespace) -> None:
    """One training process: print a JSON line with the seconds of each epoch."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    sys.path.insert(0, str(HERE.parent / "examples"))
    import keras
    import lenet_fashion_mnist as lenet

    data = lenet.get_data(args.data_dir)
    if args.train_subset:
        data = (data[0][: args.train_subset], data[1][: args.train_subset], data[2], data[3])
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            times.append(time.perf_counter() - self.t0)

    error = lenet.train_lenet(
        data,
        learning_rate=0.1,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        pipeline=args.setup != "textbook",
        jit_compile=args.setup == "pipeline-xla",
        callbacks=[Timer()],
    )
    print(json.dumps({"epochs_s": times, "error": error}), flush=True)


def measure(args: argparse.Namespace, setup: str, workers: int, threads: int) -> list[list[float]]:
    """Per-worker epoch seconds of ``workers`` processes training at once."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--setup",
        setup,
        "--threads",
        str(threads),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
    ]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.train_subset:
        cmd += ["--train-subset", str(args.train_subset)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a {setup} worker failed (exit {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1])["epochs_s"])
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("FASHION_MNIST_DIR"))
    p.add_argument("--epochs", type=int, default=3, help="epochs per process (first = compile)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-subset", type=int, default=None, metavar="N")
    p.add_argument(
        "--setups", default=",".join(SETUPS), help="comma-separated, of: " + ",".join(SETUPS)
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--setup", choices=SETUPS, default="pipeline", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.epochs < 2:
        p.error("--epochs must be >= 2 (the first epoch includes compilation)")
    n = args.train_subset or 60000
    print(f"LeNet, batch {args.batch_size}, {n} training images, {args.epochs} epochs per process")
    print(
        f"{'setup':<10} {'workers x threads':>18} {'first s':>8} {'epoch s':>8} {'epochs/min':>11}"
    )
    for setup in args.setups.split(","):
        for workers, threads in LAYOUTS:
            runs = measure(args, setup, workers, threads)
            first = statistics.mean(r[0] for r in runs)
            steady = statistics.mean(t for r in runs for t in r[1:])
            per_min = workers * 60.0 / steady
            print(
                f"{setup:<10} {f'{workers} x {threads}':>18} {first:8.1f} {steady:8.1f} "
                f"{per_min:11.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
