"""The diversity section of the comparison pages (Tables 2 and 3): how diverse each configuration's sets are.

The same measures as the page "Is DDGD more diverse, and does it matter?" (`ddgd.pages.diversity_accuracy`),
for the sets of every configuration of a table, each run in its own folder by
`ddgd.experiments.variants.run_variants`:

* `variant_diversity`: the whole-set rows of every variant, labelled;
* `measure_table`: "mean ± std" over seeds of each measure, per variant or method;
* `diversity_section`: the glue values of the section, the table and the paired differences as Markdown.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ddgd.experiments.comparisons import compare, describe_comparison, slug
from ddgd.experiments.diversity import DiversitySpec, diversity_path
from ddgd.experiments.report import table
from ddgd.pages.diversity_accuracy import MEASURES, diversity_of

SHOWN = ("coverage", "recall", "vendi")  # the table's measures
COMPARED = ("coverage", "vendi")  # the measures of the paired differences
DECIMALS = 3  # the measures lie in [0, 1] (coverage, recall) or count images (Vendi)


def variant_diversity(variants: Sequence, csv: str | Path, root: str | Path, compute: bool = False,
                      spec: DiversitySpec = DiversitySpec()) -> pd.DataFrame:
    """`diversity_of` each `ddgd.experiments.variants.Variant`, from its own folder under `root` (where
    `run_variants` runs it), with the variant's label in a `variant` column."""
    parts = [diversity_of(v.config, v.methods, csv, Path(root) / slug(v.label), compute, spec).assign(variant=v.label)
             for v in variants]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["variant", *MEASURES])


def measure_table(frame: pd.DataFrame, rows: str, row_order: Sequence[str], measures: Sequence[str] = SHOWN,
                  decimals: int = DECIMALS) -> pd.DataFrame:
    """Per `rows` value: "mean ± std" over seeds of each whole-set measure, one column per measure and IPC
    (and dataset, where there are several)."""
    return pd.concat({MEASURES[m]: table(frame, metric=m, rows=rows, columns=("ipc",), decimals=decimals,
                                         row_order=row_order) for m in measures}, axis=1)


def diversity_section(variants: Sequence, focus: str, others: Sequence[str], csv: str | Path, root: str | Path,
                      features: str | None = "judge", compute: bool = False, column: str = "variant",
                      order: Sequence[str] | None = None) -> dict:
    """The glue values of a comparison page's diversity section: `table` (`measure_table` by `column`, the
    variants of an ablation or the methods, rows in `order`, default `focus` then `others`), `space` (the
    feature space's name) and, per measure of COMPARED, `focus`'s paired differences with each of
    `others` as Markdown. Where nothing is measured (`features=None`, no rows and `compute` off, or
    `compute` on without the sets' pools on disk) every value says so and why."""
    from IPython.display import Markdown  # deferred: a notebook dependency, absent where only the package is

    def not_measured(why: str) -> dict:
        note = Markdown(f"Not measured: {why}.")
        return {"table": note, "space": "none", **{m: note for m in COMPARED}}

    if features is None:
        return not_measured("no feature space was chosen (`features`)")
    try:
        frame = variant_diversity(variants, csv, root, compute, DiversitySpec(features=features))
    except FileNotFoundError as err:  # compute on, rows missing and the pools not on disk: say which
        return not_measured(str(err).rstrip("."))
    if frame.empty:
        return not_measured(f"{diversity_path(csv).name} holds no rows of these sets (rerun with `compute`)")
    return {"table": measure_table(frame, column, order or [focus, *others]),
            "space": str(frame["feature_space"].iloc[0]),
            **{m: Markdown(describe_comparison(compare(frame, focus, others, metric=m, by=("dataset", "ipc"),
                                                       column=column), DECIMALS, "", ""))
               for m in COMPARED}}
