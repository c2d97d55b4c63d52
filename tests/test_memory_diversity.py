"""The memories' diversity on the walk-through pages (ddgd/pages/memory_diversity.py): late means, the sentences."""
import re

import pandas as pd

from ddgd.pages.memory_diversity import by_class, describe_rules, late_means


def _logs():
    """Two runs, six classes, steps 10-40. Early steps (10, 20) hold 0.9 and 9.0 everywhere; late ones
    (30, 40): adaptive similarity 0.2 and Vendi 3.0 in every class, FIFO 0.5 + 0.01 c and 2.0."""
    def log(cos, vendi):
        return pd.DataFrame([dict(step=s, **{"class": c}, memory=m, items=4,
                                  mean_cos=cos(c) if s >= 30 else 0.9, vendi=vendi if s >= 30 else 9.0)
                             for s in (10, 20, 30, 40) for c in range(6) for m in ("real", "gen")])
    return {"ddgd": log(lambda c: 0.2, 3.0), "minimax": log(lambda c: 0.5 + 0.01 * c, 2.0)}


def test_late_means_read_the_last_half_of_the_steps_only():
    late = late_means(_logs())
    assert abs(late.loc["ddgd", ("gen", "mean_cos")] - 0.2) < 1e-12  # the early 0.9 is left out
    assert abs(late.loc["minimax", ("gen", "mean_cos")] - 0.525) < 1e-12  # mean of 0.50 ... 0.55
    assert late.loc["minimax", ("real", "vendi")] == 2.0
    empty = late_means({"ddgd": _logs()["ddgd"].iloc[0:0]})
    assert empty.empty  # a run shorter than its log interval has no row


def test_describe_rules_pairs_the_classes():
    logs = _logs()
    text = describe_rules(late_means(logs), "ddgd", "minimax", "gen")
    assert text == ("Under ddgd, M_gen has a lower mean pairwise similarity (0.200 against 0.525 under minimax) "
                    "and a higher Vendi score (3.00 against 2.00): more diverse by both measures.")
    paired = describe_rules(late_means(logs), "ddgd", "minimax", "gen", logs)
    assert paired.startswith(text + " Paired by class (ddgd - minimax): similarity -0.325 (95 % CI ")
    # the similarity differences -0.30 ... -0.35 lie below 0 (lower similarity: more diverse); the
    # Vendi differences are +1 in every class, an interval of width 0 above 0
    assert re.search(r"similarity -0\.325 \(95 % CI -0\.3\d\d to -0\.3\d\d, 6 classes\): more diverse;", paired)
    assert paired.endswith("Vendi score +1.00 (95 % CI +1.00 to +1.00, 6 classes): more diverse.")
    # the other way round the same differences read as less diverse
    assert by_class(logs, "minimax", "ddgd", "gen", "vendi").endswith("6 classes): less diverse")
