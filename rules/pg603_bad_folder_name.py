"""PG603 bad-folder-name."""

from __future__ import annotations

import re

from pgolf_audit.model import Category, Severity
from pgolf_audit.rulebase import Check, FolderCase

NAME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})_[A-Za-z0-9][A-Za-z0-9._+\-]*$")


class BadFolderName(Check):
    """The record folder is not named `YYYY-MM-DD_DescriptiveName`.

    What it checks:
        The folder name starts with a valid date and an underscore, then a name of letters,
        digits, `.`, `_`, `+` and `-` (no spaces). The date should be a real calendar date in
        the challenge's year and agree with submission.json's `date` within a few days (info).

    Why it breaks the rules:
        Maintainers ask for renames of folders with spaces, typos or wrong dates
        (R-FMT-FOLDER-NAME: #1529, #1667; the year typo `2020-04-29_AWQ…`; the orphan folder
        `2026-03-19_int6_STE QAT_ MLP_bigram _U_Net`).

    Example:
        `2026-03-19_int6_STE QAT_ MLP_bigram _U_Net` (spaces), `2020-04-29_AWQ_lite` (year).

    Legal alternative:
        `2026-04-09_SP8192_3LayerRecur_LegalTTT`.

    Known limitations:
        Personal names in folder names (`hardik_sota_run`) are not detected.
    """

    CODE = "PG603"
    NAME = "bad-folder-name"
    CATEGORY = Category.PACKAGING
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-FOLDER-NAME",)

    VALID = [FolderCase("dated, descriptive name")]
    INVALID = [
        FolderCase("spaces in the name", folder_name="2026-04-20_Int6 STE QAT", message_contains=("space",)),
        FolderCase("no date prefix", folder_name="my_best_run", message_contains=("YYYY-MM-DD",)),
        FolderCase("year typo", folder_name="2020-04-20_Example", message_contains=("2020",)),
        FolderCase("date far from submission.json", folder_name="2026-03-01_Example", severity=Severity.INFO,
                   message_contains=("2026-04-20",)),
    ]

    def run(self, ctx):
        name = ctx.name
        if " " in name:
            yield self.finding(f"folder name {name!r} contains spaces")
        m = NAME_RE.match(name.replace(" ", "_"))
        if not m:
            yield self.finding(f"folder name {name!r} does not follow YYYY-MM-DD_DescriptiveName")
            return
        year, month, day = (int(g) for g in m.groups())
        if not (1 <= month <= 12 and 1 <= day <= 31):
            yield self.finding(f"folder name {name!r} starts with an impossible date")
        elif year != 2026:
            yield self.finding(f"folder date year {year} is outside the challenge (2026): a typo?")
        claimed = ctx.submission.date if ctx.submission else None
        if claimed and re.match(r"^\d{4}-\d{2}-\d{2}", claimed):
            from datetime import date

            try:
                gap = abs((date.fromisoformat(claimed[:10]) - date(year, month, day)).days)
            except ValueError:
                return
            if gap > 3:
                yield self.finding(f"folder date {name[:10]} is {gap} days from submission.json date {claimed[:10]}",
                                   severity=Severity.INFO)
