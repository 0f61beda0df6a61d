"""The one rule runner: ``run(rule, target) -> (findings, outcome)``.

Every kind of rule goes through it: a ``Check`` on a folder's ``AuditContext``, an ``AstRule``
on the ``CodeTarget`` the engine built once for all of them, a ``PrRule`` on a
``PullRequest``. The rule's ``findings(target)`` gives its findings; ``SkipCheck`` and
``IncompleteCheck`` say why there are none; ``gaps(target)`` turns a pass into INCOMPLETE
when something the rule needed was not analysed. A rule that raises is reported as PG900
(built by its rule module) and never crashes the audit (fail closed).
"""

from __future__ import annotations

import time
from typing import Any

from .model import CheckOutcome, CheckStatus, Finding, Severity
from .rulebase import IncompleteCheck, InputCrashed, Rule, SkipCheck
from .rules.pg900_rule_crashed import RuleCrashed


def run(rule: Rule | type[Rule], target: Any, *, subject: str = "folder",
        shared_ms: float = 0.0) -> tuple[list[Finding], CheckOutcome]:
    """Run one rule (a class, or an instance the engine already walked with) on ``target``.

    ``subject`` names what a crash leaves unchecked ("folder", "pull request");
    ``shared_ms`` is this rule's share of work done once for several rules (the code model)."""
    cls = rule if isinstance(rule, type) else type(rule)
    start = time.perf_counter()
    findings: list[Finding] = []
    try:
        instance = cls() if isinstance(rule, type) else rule
        findings = list(instance.findings(target))
        status = CheckStatus.FAIL if any(f.severity is not Severity.INFO for f in findings) else CheckStatus.PASS
        reason = ""
        if status is CheckStatus.PASS:
            gaps = instance.gaps(target)
            if gaps:  # code that runs but was not analysed: never a pass (fail closed)
                status, reason = CheckStatus.INCOMPLETE, "; ".join(gaps)
        elapsed = shared_ms
    except SkipCheck as exc:
        status, reason, elapsed = CheckStatus.SKIP, str(exc), shared_ms
    except IncompleteCheck as exc:
        status, reason, elapsed = CheckStatus.INCOMPLETE, str(exc), shared_ms
    except InputCrashed as exc:
        findings = [RuleCrashed.crash(cls, exc.cause, subject)]
        status, reason, elapsed = CheckStatus.ERROR, f"crashed {exc.stage}: {type(exc.cause).__name__}: {exc.cause}", 0.0
    except Exception as exc:  # a crashing rule must never crash the audit (fail closed)
        findings = [RuleCrashed.crash(cls, exc, subject)]
        status, reason, elapsed = CheckStatus.ERROR, f"crashed: {type(exc).__name__}: {exc}", 0.0
    elapsed += (time.perf_counter() - start) * 1000
    return findings, CheckOutcome(cls.CODE, cls.NAME, status, reason, elapsed, len(findings))


def skipped(rule: type[Rule], reason: str) -> CheckOutcome:
    """The outcome of a rule that does not run (not selected, not for this track)."""
    return CheckOutcome(rule.CODE, rule.NAME, CheckStatus.SKIP, reason)


def unfinished(reason: str) -> tuple[Finding, CheckOutcome]:
    """PG900 for a folder whose audit stopped before its rules finished."""
    return RuleCrashed.unfinished(reason), CheckOutcome(RuleCrashed.CODE, RuleCrashed.NAME, CheckStatus.ERROR, reason)
