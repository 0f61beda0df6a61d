"""PG406 folder-name-score."""

from __future__ import annotations

import re

from pgolf_audit.checkutil import decimals_of, fmt_bpb, same_at_precision
from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck

SCORE_IN_NAME = re.compile(r"(?<![\d.])([01]\.\d{3,8})(?![\d.])")


class FolderNameScore(Check):
    """A leaderboard-style score in the folder name differs from the claim and the logs.

    What it checks:
        A number such as `1.1233` in the folder name, compared with submission.json's val_bpb
        and with the mean of the logs' headlines, at the name's precision.

    Why it breaks the rules:
        R-FMT-FOLDER-NAME: names must be accurate. `…_GPTQ-lite_warmdown3500_QAT015_1.1233`
        names the 3-seed mean while the claim is seed 1337's 1.12278.

    Example:
        Folder `…_1.1233` with `"val_bpb": 1.12278022`.

    Legal alternative:
        Leave scores out of folder names, or use the claimed value.

    Known limitations:
        Only numbers between 0 and 2 with 3 to 8 decimals are read as scores.
    """

    CODE = "PG406"
    NAME = "folder-name-score"
    CATEGORY = Category.CONSISTENCY
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-FOLDER-NAME",)

    VALID = [FolderCase("no score in the name"), FolderCase("name carries the claimed mean",
                                                            folder_name="2026-04-20_Example_1.1760")]
    INVALID = [FolderCase("name carries another number", folder_name="2026-04-20_Example_1.1233",
                          message_contains=("1.1233",))]

    def run(self, ctx):
        m = SCORE_IN_NAME.search(ctx.name)
        if not m:
            raise SkipCheck("no score in the folder name")
        named = float(m.group(1))
        decimals = decimals_of(named)
        claim = ctx.submission.val_bpb if ctx.submission else None
        mean = ctx.run_mean_bpb()
        matches_claim = claim is not None and same_at_precision(named, claim, decimals)
        matches_logs = mean is not None and same_at_precision(named, mean, decimals)
        if matches_claim or matches_logs:
            if claim is not None and not matches_claim:
                yield self.finding(f"folder name says {m.group(1)} (the logs' mean {fmt_bpb(mean)}) but submission.json "
                                   f"claims {fmt_bpb(claim)}")
            return
        yield self.finding(f"folder name says {m.group(1)}; submission.json claims {fmt_bpb(claim)} and the logs "
                           f"average {fmt_bpb(mean)}", values={"named": named, "claimed": claim, "mean": mean})
