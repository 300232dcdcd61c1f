"""ASHA vs random search on LeNet / Fashion-MNIST: same workers, same wall-clock budget, one store.

Both studies run ``--workers`` trials at a time on a local process pool for ``--budget-minutes``
each. Random search trains every configuration for ``--epochs`` epochs; ASHA (eta=3, rung
levels 1, 3, 9 epochs) runs the same searcher, in one of two forms (``--asha-type``):

- ``stopping`` (default): every trial aims at ``--epochs`` and is stopped at a rung unless its
  validation error is in the top third of that rung so far; the Keras callback reports the
  validation error after every epoch and ends the fit when told to stop.
- ``promotion``: trials train 1 epoch and pause; one in the top third of its rung is resumed
  with the next rung's epochs, continuing from its checkpoint (the objective takes the trial's
  ``checkpoint_dir``; the Keras integration saves weights and optimizer state every epoch).

Both studies go to one store; the script ends with the any-time comparison plot (incumbent
error against study time). ``--arms asha`` or ``--arms random`` runs one of them only.

    python examples/asha_lenet.py --data-dir ../shared/data/fashion-mnist \\
        --budget-minutes 10 --workers 2 --store asha.duckdb --plot asha_vs_random.png

Run it again with the same arguments to resume both studies (each gets the budget again).
The data loading and LeNet are those of ``examples/lenet_fashion_mnist.py`` (imported).
"""

from __future__ import annotations

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
ETA, R_MIN = 3, 1


def _lenet_example() -> ModuleType:
    """examples/lenet_fashion_mnist.py as a module (examples/ is not a package)."""
    name = "lenet_fashion_mnist_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "lenet_fashion_mnist.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


lenet = _lenet_example()


def _data() -> Any:
    """The data of this worker process (loaded once; the directory comes by environment)."""
    data = lenet.get_data(os.environ.get("FASHION_MNIST_DIR") or None)
    subset = int(os.environ.get("ASHA_LENET_TRAIN_SUBSET", "0"))
    return (data[0][:subset], data[1][:subset], data[2], data[3]) if subset else data


def lenet_objective(
    learning_rate: float,
    batch_size: int,
    max_epochs: int,
    report: Callable[[float, float], bool],
    checkpoint_dir: str,
) -> float:
    """Train LeNet, reporting the validation error after every epoch; stop when told to.

    Continues from the trial's checkpoint when it has one (a promoted or re-run trial)."""
    import keras

    from hpostore.integrations.keras import ReportCallback, restore_checkpoint

    data = _data()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = lenet.build_lenet()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=float(learning_rate)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,  # XLA: 14.3 vs 19.5 s an epoch here (benchmarks/lenet_epoch.py)
    )
    initial_epoch, last_error = restore_checkpoint(model, checkpoint_dir)
    if initial_epoch >= int(max_epochs) and last_error is not None:
        return last_error  # trained that far already (a re-run after a crash)
    callback = ReportCallback(report, monitor="val_accuracy", checkpoint_dir=checkpoint_dir)
    # The example's tf.data input (cached, shuffled per epoch, prefetched, large eval batches).
    train, test = lenet._datasets(data, int(batch_size), seed=0, eval_batch_size=2048)
    model.fit(
        train,
        epochs=int(max_epochs),
        initial_epoch=initial_epoch,
        validation_data=test,
        shuffle=False,
        callbacks=[callback],
        verbose=0,
    )
    assert callback.last_error is not None
    return callback.last_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX files (default: download)")
    p.add_argument("--budget-minutes", type=float, default=10.0, help="per study (default: 10)")
    p.add_argument("--workers", type=int, default=2, help="trials at a time (default: 2)")
    p.add_argument("--epochs", type=int, default=10, help="r_max: epochs of a full trial")
    p.add_argument("--train-subset", type=int, default=None, help="first N training images")
    p.add_argument("--store", default="asha_lenet.duckdb", help="the event log (DuckDB file)")
    p.add_argument("--study-prefix", default="lenet", help="studies: PREFIX-asha, PREFIX-random")
    p.add_argument("--seed", type=int, default=0, help="searcher seed (both studies)")
    p.add_argument("--plot", default="asha_vs_random.png", help="any-time plot (PNG)")
    p.add_argument(
        "--asha-type",
        choices=("stopping", "promotion"),
        default="stopping",
        help="stop trials at rungs, or pause and resume them (default: %(default)s)",
    )
    p.add_argument(
        "--no-initial-config",
        action="store_true",
        help="start both studies from a random config, not the textbook's initial one",
    )
    p.add_argument(
        "--arms",
        default="asha,random",
        help="which studies to run: asha, random or both (default: %(default)s)",
    )
    args = p.parse_args(argv)
    arms = set(args.arms.split(","))
    if not arms or not arms <= {"asha", "random"}:
        p.error(f"--arms takes asha, random or asha,random; got {args.arms!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    from hpostore import ASHAScheduler, BasicScheduler, HPOTuner, RandomSearcher, open_store

    args = parse_args(argv)
    if args.data_dir:
        os.environ["FASHION_MNIST_DIR"] = os.fspath(Path(args.data_dir).resolve())
    if args.train_subset:
        os.environ["ASHA_LENET_TRAIN_SUBSET"] = str(args.train_subset)
    try:  # fail fast on bad data, before any worker starts
        lenet.load_fashion_mnist(os.environ.get("FASHION_MNIST_DIR") or None)
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.workers > 1:
        # One TensorFlow thread per worker process: measured 1.4x the epochs per minute of one
        # process with both cores (benchmarks/lenet_epoch.py); workers inherit the environment.
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    budget_s = args.budget_minutes * 60
    initial = None if args.no_initial_config else lenet.INITIAL_CONFIG
    studies = {
        f"{args.study_prefix}-asha": ASHAScheduler(
            RandomSearcher(lenet.CONFIG_SPACE, initial_config=initial, seed=args.seed),
            eta=ETA,
            r_min=R_MIN,
            r_max=args.epochs,
            type=args.asha_type,
        ),
        f"{args.study_prefix}-random": BasicScheduler(
            RandomSearcher(
                {**lenet.CONFIG_SPACE, "max_epochs": args.epochs},
                initial_config=initial and {**initial, "max_epochs": args.epochs},
                seed=args.seed,
            )
        ),
    }
    arms = args.arms.split(",")
    studies = {s: sched for s, sched in studies.items() if s.rsplit("-", 1)[1] in arms}
    with open_store(args.store) as store:
        for study, scheduler in studies.items():
            t0 = time.monotonic()
            tuner = HPOTuner(
                scheduler,
                lenet_objective,
                store=store,
                study=study,
                verbose=False,
                n_workers=args.workers,
            )
            tuner.run(10**9, time_budget_s=budget_s)
            print(
                f"{study}: {tuner.state.n_finished} trials in {time.monotonic() - t0:.0f} s, "
                f"incumbent error {tuner.incumbent_error} ({tuner.incumbent})"
            )
        store.commit(force=True)
        from analysis.plots import anytime_plot

        anytime_plot(store, list(studies), title="ASHA vs random search", path=args.plot)
    print(f"any-time plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
