"""Usage errors and the checks of command-line input every command shares.

A usage or configuration error exits with code 2, never confused with "findings" (1). The
commands (``check`` in ``cli``, ``pr``, ``rerun``) import these from here, so no library
module depends on the command-line module.
"""

from __future__ import annotations

import click

from . import registry
from .model import EXIT_INCOMPLETE
from .ruleset import RulesetError, available as available_rulesets


class UsageFailure(click.ClickException):
    """A usage or configuration error: exit code 2, never confused with 'findings' (1)."""

    exit_code = EXIT_INCOMPLETE


def split_codes(values: tuple[str, ...]) -> list[str] | None:
    codes = [c.strip().upper() for v in values for c in v.split(",") if c.strip()]
    return codes or None


def validated_selection(ruleset: str | None, select: tuple[str, ...], ignore: tuple[str, ...]):
    """The --select/--ignore code prefixes, after checking them and --ruleset against the
    registry and the ruleset files (a usage error names what is unknown)."""
    if ruleset is not None:
        try:
            known = available_rulesets()
        except RulesetError as exc:
            raise UsageFailure(str(exc)) from None
        if ruleset not in known:
            raise UsageFailure(f"unknown ruleset {ruleset!r} (known: {', '.join(sorted(known))})")
    select_codes, ignore_codes = split_codes(select), split_codes(ignore)
    try:
        registry.validate_prefixes((select_codes or []) + (ignore_codes or []))
    except registry.UnknownRuleCode as exc:
        raise UsageFailure(f"no rule code starts with {exc} (see `pgolf-audit rules`)") from None
    return select_codes, ignore_codes
