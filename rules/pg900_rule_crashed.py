"""PG900 rule-crashed."""

from __future__ import annotations

from pgolf_audit.model import Severity
from pgolf_audit.rulebase import MetaRule


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
