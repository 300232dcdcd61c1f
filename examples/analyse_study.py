"""Look at a finished study from its log alone: the top trials with SQL, then the plots.

    python examples/analyse_study.py demo.duckdb demo-random --out-dir .
    python examples/analyse_study.py runs/            # a Parquet directory; every study

Prints the five best trials (SQL over the ``trials`` view, the study name passed as a
parameter), the any-time summary of each study, and writes ``anytime.png`` (all the chosen
studies), ``scatter.png`` and, when its trials reported per-epoch results,
``learning_curves.png`` (the first study) to ``--out-dir``.
The same SQL runs in the plain ``duckdb`` CLI: see analysis/sql/*.sql.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import analysis
from analysis import plots
from hpostore import open_store
from hpostore.cli import format_table

TOP5 = """
SELECT trial, error, round(runtime, 2) AS runtime_s, attempts,
       round(finished_at, 1) AS finished_at_s, config
FROM trials
WHERE study = ? AND status = 'finished'
ORDER BY error
LIMIT 5
"""

SUMMARY = """
SELECT s.study, regexp_extract(s.searcher, '[^.]+$') AS searcher,
       regexp_extract(s.scheduler, '[^.]+$') AS scheduler, s.trials, s.finished, s.failed,
       s.best_error,
       round(s.elapsed_s, 1) AS elapsed_s, count(a.seq) AS improvements
FROM studies AS s LEFT JOIN anytime AS a USING (study)
WHERE list_contains(?, s.study)
GROUP BY ALL
ORDER BY s.study
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", help="a DuckDB file (runs.duckdb) or a Parquet directory (runs/)")
    parser.add_argument("study", nargs="*", help="studies to look at (default: all)")
    parser.add_argument("--out-dir", default=".", help="where to write the PNG files")
    args = parser.parse_args(argv)

    # Read through the store: it also sees events a running writer has not folded yet.
    with open_store(args.store, read_only=True) as store:
        studies = args.study or store.studies()
        if not studies:
            print(f"{args.store} holds no studies yet", file=sys.stderr)
            return 1
        con = analysis.views(store)
        first = studies[0]
        print(f"Top 5 trials of {first!r}:")
        print(format_table(con.sql(TOP5, params=[first]).to_arrow_table(), max_width=70))
        print("\nStudies (study time in s, summed over sessions):")
        print(format_table(con.sql(SUMMARY, params=[studies]).to_arrow_table()))

        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plots.anytime_plot(con, studies, path=out / "anytime.png")
        written = [out / "anytime.png"]
        plots.scatter_plot(con, first, path=out / "scatter.png")
        written.append(out / "scatter.png")
        reports = con.execute(
            "SELECT count(*) FROM learning_curves WHERE study = ? AND kind = 'report'", [first]
        ).fetchall()[0][0]
        if reports:
            plots.learning_curves_plot(con, first, path=out / "learning_curves.png")
            written.append(out / "learning_curves.png")
        else:
            print(f"(no learning curves: {first!r} has no per-epoch `report` events)")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
