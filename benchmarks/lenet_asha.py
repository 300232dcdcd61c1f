"""ASHA vs random search on LeNet / Fashion-MNIST with 2 workers (long: not run in CI).

Runs ``examples/asha_lenet.py`` (ASHA stopping type, eta=3, rungs 1, 3, 9, 10 epochs, and
random search at 10 epochs; the same seeded searcher, the same workers, the same wall-clock
budget, one store), then reads the figures from the log alone:

- the error each study's incumbent reaches within the budget;
- the wall-clock time ASHA needs to reach the final incumbent error of random search, and its
  fraction of the budget (target: <= 1/3).

    python benchmarks/lenet_asha.py --data-dir ../shared/data/fashion-mnist --minutes 30
    python benchmarks/lenet_asha.py --store lenet_asha.duckdb --analyse-only

``--analyse-only`` recomputes the figures from an existing store (the run is resumable: run the
same command again after an interruption and each study gets its budget again).
``--asha-type promotion`` runs ASHA's promotion type (paused trials resumed from their
checkpoints) instead of the stopping type. ``--arms asha`` runs the ASHA study only and compares
it with the random-search study of ``--random-store``/``--random-prefix`` (e.g. to re-measure
one arm on a quieter machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script, so that worker processes find its objective (in its __main__)
EXAMPLE = ROOT / "examples" / "asha_lenet.py"


def incumbent_curve(store_path: str, study: str) -> list[tuple[float, float]]:
    """(elapsed s, incumbent error) at each improvement, from the log."""
    from hpostore import open_store

    with open_store(store_path, read_only=True) as store:
        rows = store.events(study, columns=["kind", "elapsed", "error"]).to_pylist()
    out: list[tuple[float, float]] = []
    for row in rows:
        if row["kind"] == "evaluate" and (not out or row["error"] < out[-1][1]):
            out.append((row["elapsed"], row["error"]))
    return out


def at(curve: list[tuple[float, float]], t: float) -> float | None:
    best = None
    for elapsed, error in curve:
        if elapsed <= t:
            best = error
    return best


def analyse(
    store: str,
    prefix: str,
    budget_s: float,
    random_store: str | None = None,
    random_prefix: str | None = None,
) -> int:
    asha = incumbent_curve(store, f"{prefix}-asha")
    rand = incumbent_curve(random_store or store, f"{random_prefix or prefix}-random")
    if not asha or not rand:
        print("error: both studies need finished trials; run without --analyse-only first")
        return 1
    final_random = at(rand, budget_s)
    final_asha = at(asha, budget_s)
    print(f"budget {budget_s / 60:.1f} min per study")
    print(f"  random search incumbent error at the budget: {final_random}")
    print(f"  ASHA incumbent error at the budget:          {final_asha}")
    if final_random is None:
        print("  (random search finished no trial within the budget)")
        return 0
    reached = next((t for t, e in asha if e <= final_random), None)
    if reached is None:
        print("  ASHA did not reach random search's final error within its run")
    else:
        frac = reached / budget_s
        verdict = "meets" if frac <= 1 / 3 else "misses"
        print(
            f"  ASHA reached {final_random:.4f} after {reached / 60:.1f} min = {frac:.2f} of the "
            f"budget ({verdict} the target <= 1/3)"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("FASHION_MNIST_DIR"))
    p.add_argument("--minutes", type=float, default=30.0, help="budget per study (default: 30)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--store", default="lenet_asha.duckdb")
    p.add_argument("--prefix", default="bench")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--analyse-only", action="store_true")
    p.add_argument("--asha-type", choices=("stopping", "promotion"), default="stopping")
    p.add_argument("--arms", default="asha,random", help="asha, random or asha,random")
    p.add_argument(
        "--no-initial-config", action="store_true", help="no textbook initial config first"
    )
    p.add_argument("--random-store", default=None, help="random search's store (default: --store)")
    p.add_argument("--random-prefix", default=None, help="its prefix (default: --prefix)")
    args = p.parse_args(argv)
    if not args.analyse_only:
        example_args = [
            "--budget-minutes", str(args.minutes), "--workers", str(args.workers),
            "--store", args.store, "--study-prefix", args.prefix,
            "--plot", str(Path(args.store).with_suffix(".png")),
            "--asha-type", args.asha_type, "--arms", args.arms,
        ]  # fmt: skip
        if args.no_initial_config:
            example_args.append("--no-initial-config")
        if args.data_dir:
            example_args += ["--data-dir", args.data_dir]
        if args.train_subset:
            example_args += ["--train-subset", str(args.train_subset)]
        subprocess.run([sys.executable, str(EXAMPLE), *example_args], check=True)
    return analyse(
        args.store, args.prefix, args.minutes * 60, args.random_store, args.random_prefix
    )


if __name__ == "__main__":
    sys.exit(main())
