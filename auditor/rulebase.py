"""Base classes for rules.

A rule is one module under ``rules/`` holding one class. The class carries its identity
(``CODE``, ``NAME``), classification, the challenge rules it enforces (``REFERENCES``: rule ids
from the rules catalogue, e.g. ``R-ART-CAP-DECIMAL``), its documentation (the docstring, with
the sections in ``DOC_SECTIONS``) and its examples (``VALID`` / ``INVALID``), which the test
suite turns into tests. The registry, ``pgolf-audit rules``, the docs and the SARIF rule table
all read these attributes.

Two kinds:
- ``Check``: reads the folder through the ``AuditContext`` (logs, submission.json, README,
  code accounting) and yields findings. Examples are ``FolderCase`` edits of the bundled
  example record.
- ``AstRule``: a libcst visitor over the unwrapped code; all AST rules share one parse and
  one traversal (see ``pgolf_audit.engine``). Examples are code snippets.
- ``PrRule``: a rule over a pull request's diff (``pgolf-audit pr``): which paths it adds,
  modifies, deletes or renames. Examples are ``PrCase`` diffs.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator

from .engine.api import Hit, Ruling, Site
from .model import Category, Confidence, Evidence, Finding, Location, Severity
from .tracks import LAUNCH_DATE, NON_RECORD_TRACK, RECORD_TRACK, TRACKS

if TYPE_CHECKING:
    from .context import AuditContext
    from .engine.loader import CodeProgram, CodeTarget
    from .pr import PullRequest

DOC_SECTIONS = (
    "What it checks",
    "Why it breaks the rules",
    "Example",
    "Legal alternative",
    "Known limitations",
)
_SECTION_RE = re.compile(r"^[ \t]*(%s):[ \t]*$" % "|".join(re.escape(s) for s in DOC_SECTIONS), re.M)

STATUSES = ("preview", "stable", "deprecated", "removed")
CODE_RE = re.compile(r"^PG\d{3}$")
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# Track names, the launch date and ``Ruling`` live in dependency-free modules (``tracks``,
# ``engine.api``); rules import them from here with the rest of the rule API.
__all__ = ["AstRule", "Check", "CodeCase", "CopyOf", "FolderCase", "Hit", "IncompleteCheck", "InputCrashed",
           "LAUNCH_DATE", "MetaRule", "Move", "NON_RECORD_TRACK", "PrCase", "PrRule", "RECORD_TRACK", "Rule",
           "Ruling", "Site", "SkipCheck", "TRACKS"]


class SkipCheck(Exception):
    """The check does not apply to this folder (the reason is shown under 'checks')."""


class IncompleteCheck(Exception):
    """The check applies but could not be completed on this input: the verdict becomes
    INCOMPLETE unless something disqualifying was proven elsewhere (fail closed)."""


class InputCrashed(Exception):
    """What every rule of a kind reads could not be built (the code model, say): each of those
    rules is reported as crashed (PG900) with ``cause``, saying at which ``stage``."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@dataclass(frozen=True)
class Move:
    """A ``FolderCase`` edit: move the file to another relative path."""

    to: str


@dataclass(frozen=True)
class CopyOf:
    """A ``FolderCase`` edit: the file becomes a byte-identical copy of another file."""

    source: str


@dataclass
class FolderCase:
    """An example for a ``Check``: the bundled example record with edits applied.

    ``edits`` maps a relative file path to one of:
      - a list of ``(regex, replacement)`` pairs applied to the file's text (each must match),
      - a ``str`` or ``bytes``: the whole new content (also creates files),
      - ``None``: delete the file,
      - ``Move("new/path")``: move it,
      - ``CopyOf("other/file")``: make it a copy of another file,
      - a callable taking the file's text and returning the new content.
    ``json`` is deep-merged into submission.json (a ``None`` value deletes the key).
    ``options`` are ``AuditOptions`` fields (e.g. ``{"track": "track_non_record_16mb"}``).
    An INVALID case expects the rule's code to be reported (at ``severity`` if given, with
    every string of ``message_contains`` in one finding's message); a VALID case expects it
    not to be reported at all.
    """

    description: str
    edits: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    folder_name: str | None = None
    severity: Severity | None = None
    message_contains: tuple[str, ...] = ()
    # A second folder (the example with these edits) given to the audit as --against.
    reference: "FolderCase | None" = None


@dataclass
class CodeCase:
    """An example for an ``AstRule``: what it shows (first, as for ``FolderCase``), a code
    snippet (plain source; wrapped with ``wrap=`` to exercise the unwrapper), optional log
    hyperparameters, and for INVALID cases the expected 1-based line of the reported finding
    in the unwrapped code.

    ``files`` adds further files to the record folder (helper modules the snippet imports);
    ``file`` names the file the expected finding is in when it is not train_gpt.py.
    ``log_hyperparameters`` may also be a list of dicts: one log per run; ``log_lines`` are
    further lines every log prints (what the script's own prints wrote).
    """

    description: str = ""
    code: str = ""
    line: int | None = None
    severity: Severity | None = None
    message_contains: tuple[str, ...] = ()
    wrap: str | None = None
    log_hyperparameters: "dict[str, str] | list[dict[str, str]] | None" = None
    files: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    log_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # snippets are written indented inside rule modules; lines count from the first code line
        self.code = textwrap.dedent(self.code).lstrip("\n")


class Rule:
    CODE: ClassVar[str]
    NAME: ClassVar[str]
    CATEGORY: ClassVar[Category]
    SEVERITY: ClassVar[Severity]
    CONFIDENCE: ClassVar[Confidence] = Confidence.HIGH
    REFERENCES: ClassVar[tuple[str, ...]] = ()
    STATUS: ClassVar[str] = "stable"
    SINCE: ClassVar[str] = "2026-03-18"
    # Tracks the rule applies to; None means every track.
    TRACKS: ClassVar[tuple[str, ...] | None] = None
    VALID: ClassVar[list[Any]] = []
    INVALID: ClassVar[list[Any]] = []
    KIND: ClassVar[str] = "check"

    # ---- metadata helpers -------------------------------------------------
    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    @classmethod
    def doc_sections(cls) -> dict[str, str]:
        """The docstring's sections, dedented, keyed by section title."""
        doc = cls.__doc__ or ""
        parts = _SECTION_RE.split(doc)
        sections: dict[str, str] = {}
        for title, body in zip(parts[1::2], parts[2::2]):
            lines = body.strip("\n").splitlines()
            indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
            cut = min(indents) if indents else 0
            sections[title] = "\n".join(l[cut:] for l in lines).strip()
        return sections

    @classmethod
    def applies_to(cls, track: str | None) -> bool:
        return cls.TRACKS is None or track in cls.TRACKS

    @classmethod
    def metadata(cls) -> dict[str, Any]:
        return {
            "code": cls.CODE,
            "name": cls.NAME,
            "kind": cls.KIND,
            "category": cls.CATEGORY.value,
            "severity": cls.SEVERITY.value,
            "confidence": cls.CONFIDENCE.value,
            "status": cls.STATUS,
            "since": cls.SINCE,
            "tracks": list(cls.TRACKS) if cls.TRACKS else None,
            "references": list(cls.REFERENCES),
            "summary": cls.summary(),
        }

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The metadata and the docs' sections: an entry of a report's rule table (``tool.rules``)
        and of ``pgolf-audit rules --format json``."""
        return {**cls.metadata(), "docs": cls.doc_sections()}

    # ---- running (``pgolf_audit.runner.run``) ------------------------------
    def findings(self, target: Any) -> Iterable[Finding]:
        """The findings on ``target`` (a folder's context, a pull request, the code model);
        raise ``SkipCheck`` or ``IncompleteCheck`` to say why there are none."""
        raise NotImplementedError

    def gaps(self, target: Any) -> list[str]:
        """What the rule could not look at on ``target``: a rule that found nothing is then
        INCOMPLETE, not passed (fail closed)."""
        return []

    # ---- reporting --------------------------------------------------------
    def finding(
        self,
        message: str,
        *,
        location: Location | None = None,
        excerpt: str | None = None,
        values: dict[str, Any] | None = None,
        related: Iterable[Location] = (),
        severity: Severity | None = None,
        confidence: Confidence | None = None,
    ) -> Finding:
        return Finding(
            code=self.CODE,
            name=self.NAME,
            severity=severity or self.SEVERITY,
            confidence=confidence or self.CONFIDENCE,
            category=self.CATEGORY,
            message=message,
            location=location,
            evidence=Evidence(excerpt=excerpt, values=dict(values or {}), related=list(related)),
            references=list(self.REFERENCES),
        )


class Check(Rule):
    """A rule over the folder's files, logs and claims."""

    KIND: ClassVar[str] = "check"

    def run(self, ctx: "AuditContext") -> Iterator[Finding]:
        raise NotImplementedError

    def findings(self, target: "AuditContext") -> Iterable[Finding]:
        return self.run(target)


class MetaRule(Rule):
    """A code the audit machinery itself reports (a crashed rule, say). Registered for its
    documentation and SARIF rule table; never run as a check."""

    KIND: ClassVar[str] = "meta"
    CATEGORY: ClassVar[Category] = Category.META


class AstRule(Rule):
    """A rule over the unwrapped code, run by the AST engine in one shared traversal.

    ``check(program)`` gets the program model (``pgolf_audit.engine.loader.CodeProgram``: files,
    functions, call graph, and ``program.analysis``, the effect simulation) and yields
    ``Hit`` objects made with ``self.hit(site, message, ...)``. The engine turns each hit into
    a finding with the submitted file's location and decides its severity from the feature
    flags of the logged runs. A rule may also define libcst-style ``visit_<NodeType>(node,
    builder)`` methods; the engine calls them during its single walk of each file.
    """

    KIND: ClassVar[str] = "ast"
    CATEGORY: ClassVar[Category] = Category.LEGALITY
    CONFIDENCE: ClassVar[Confidence] = Confidence.MEDIUM
    # the ruling the rule enforces (a hit may name another with ``Hit.ruling``)
    RULING: ClassVar[Ruling] = Ruling("R-EVAL-C1-CAUSAL")
    # the rule judges the order of scoring and adaptation: with no scoring pass recognised in
    # the code it has checked nothing, and says so
    NEEDS_SCORING_PASS: ClassVar[bool] = False

    def check(self, program: "CodeProgram") -> Iterator[Hit]:
        raise NotImplementedError

    def hit(self, site: Site, message: str, **kwargs: Any) -> Hit:
        return Hit(site, message, **kwargs)

    def findings(self, target: "CodeTarget") -> Iterable[Finding]:
        return target.findings(self)

    def gaps(self, target: "CodeTarget") -> list[str]:
        return target.gaps(self)


# ---- pull-request shape rules (``pgolf-audit pr``) -----------------------------------------

@dataclass
class PrCase:
    """An example for a ``PrRule``: a pull request described by its diff, no repository needed.

    ``changes`` are rows as ``git diff --name-status`` gives them: ``("A", path)``,
    ``("M", path)``, ``("D", path)``, ``("R", old_path, new_path)``. ``existing`` lists files
    present at the merge base (only their record folders matter: a change inside one of them
    edits an existing record). ``special`` marks head entries of added folders that are not
    regular files: ``{"path": "symlink" | "submodule" | "oversized"}``. INVALID / VALID as for
    ``FolderCase``.
    """

    description: str
    changes: tuple[tuple[str, ...], ...] = ()
    existing: tuple[str, ...] = ()
    special: dict[str, str] = field(default_factory=dict)
    severity: Severity | None = None
    message_contains: tuple[str, ...] = ()

    def __str__(self) -> str:  # the rule docs show examples through str()
        rows = "\n".join("  ".join(row) for row in self.changes) or "(no changes)"
        return f"{self.description}:\n\n```text\n{rows}\n```"


class PrRule(Rule):
    """A rule over what a pull request changes. It needs a diff, so a folder audit leaves it out."""

    KIND: ClassVar[str] = "pr"
    CATEGORY: ClassVar[Category] = Category.PACKAGING

    def check_pr(self, pr: "PullRequest") -> Iterator[Finding]:
        raise NotImplementedError

    def findings(self, target: "PullRequest") -> Iterable[Finding]:
        return self.check_pr(target)
