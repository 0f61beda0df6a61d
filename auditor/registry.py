"""The rule registry: every rule module under ``rules/`` (package ``pgolf_audit.rules``).

One module holds one rule class. The registry is the single source for selection
(``--select/--ignore`` by code prefix), ``pgolf-audit rules``, the docs and SARIF's rule table.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from functools import lru_cache

from . import rulebase
from .rulebase import CODE_RE, NAME_RE, STATUSES, AstRule, Check, Rule


class RegistryError(Exception):
    pass


class UnknownRuleCode(ValueError):
    """A --select/--ignore entry that matches no rule."""


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    package = importlib.import_module("pgolf_audit.rules")
    found: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        classes = [
            obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, Rule) and obj.__module__ == module.__name__
            and obj not in (Rule, Check, AstRule) and "CODE" in vars(obj)
        ]
        if len(classes) != 1:
            raise RegistryError(f"rule module {info.name} must define exactly one rule class, found {len(classes)}")
        cls = classes[0]
        _validate(cls, info.name)
        if cls.CODE in found:
            raise RegistryError(f"duplicate rule code {cls.CODE} in {info.name} and {found[cls.CODE].__module__}")
        found[cls.CODE] = cls
    return tuple(found[c] for c in sorted(found))


def _validate(cls: type[Rule], module_name: str) -> None:
    problems = []
    if not CODE_RE.match(getattr(cls, "CODE", "")):
        problems.append("CODE must look like PG123")
    if not NAME_RE.match(getattr(cls, "NAME", "")):
        problems.append("NAME must be kebab-case")
    if cls.STATUS not in STATUSES:
        problems.append(f"STATUS must be one of {STATUSES}")
    for attr in ("CATEGORY", "SEVERITY"):
        if not hasattr(cls, attr):
            problems.append(f"{attr} missing")
    if problems:
        raise RegistryError(f"rule module {module_name}: " + "; ".join(problems))


def get(code: str) -> type[Rule]:
    for cls in all_rules():
        if cls.CODE == code:
            return cls
    raise KeyError(code)


def rules_digest() -> str:
    """A digest of the rule table (codes, names, severities, statuses): reports carry it so
    two reviews can be compared knowing whether the rules were the same."""
    h = hashlib.sha256()
    for cls in all_rules():
        h.update(f"{cls.CODE}|{cls.NAME}|{cls.SEVERITY.value}|{cls.STATUS}\n".encode())
    return "sha256:" + h.hexdigest()[:16]


def _matches(code: str, prefixes: list[str]) -> bool:
    return any(code.startswith(p) for p in prefixes)


def validate_prefixes(prefixes: list[str]) -> None:
    codes = [cls.CODE for cls in all_rules()]
    for prefix in prefixes:
        if prefix.upper() == "ALL":
            continue
        if not prefix.startswith("PG") or not any(c.startswith(prefix) for c in codes):
            raise UnknownRuleCode(prefix)


def is_selected(cls: type[Rule], select: list[str] | None, ignore: list[str] | None, preview: bool = False) -> tuple[bool, str]:
    """Whether a rule runs, and the reason when it does not."""
    if cls.STATUS == "removed":
        return False, "rule removed"
    if cls.STATUS == "preview" and not preview and not (select and _matches(cls.CODE, select)):
        return False, "preview rule (enable with --select)"
    if select and "ALL" not in [s.upper() for s in select] and not _matches(cls.CODE, select):
        return False, "not selected (--select)"
    if ignore and _matches(cls.CODE, ignore):
        return False, "ignored (--ignore)"
    return True, ""


__all__ = ["all_rules", "get", "rules_digest", "is_selected", "validate_prefixes", "RegistryError",
           "UnknownRuleCode", "rulebase"]
