"""PG900 rule-crashed."""

from __future__ import annotations

import traceback
from pathlib import Path

from pgolf_audit.model import Evidence, Finding, Severity
from pgolf_audit.rulebase import MetaRule, Rule


class RuleCrashed(MetaRule):
    """A rule or check raised an exception, so its question went unanswered.

    What it checks:
        Reported by the audit runner whenever a rule crashes on a folder. The finding names the
        rule, the exception and where it was raised.

    Why it breaks the rules:
        It is not the submission's fault, but an unanswered check can hide a violation: the
        folder's verdict becomes INCOMPLETE (exit code 2), never PASS (fail closed).

    Example:
        A log shape no parser anticipated makes a check index an empty list.

    Legal alternative:
        Report the crash with the folder; rerun once fixed.

    Known limitations:
        None: every crash is caught and reported.
    """

    CODE = "PG900"
    NAME = "rule-crashed"
    SEVERITY = Severity.ERROR

    @classmethod
    def crash(cls, rule: type[Rule], exc: BaseException, subject: str = "folder") -> Finding:
        """The finding for ``rule`` having raised ``exc`` on a folder or a pull request."""
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        return cls().finding(
            f"{rule.CODE} {rule.NAME} crashed ({type(exc).__name__}: {exc}){where}; its check did not run, "
            f"so this {subject} cannot pass",
            values={"rule": rule.CODE, "exception": type(exc).__name__},
        )

    @classmethod
    def unfinished(cls, reason: str) -> Finding:
        """The finding for a folder whose audit stopped (its process crashed, hung or raised)."""
        return cls().finding(
            f"the audit of this folder did not finish ({reason}); nothing was checked, so it cannot pass",
            values={"reason": reason},
        )
