"""The ``pgolf-audit`` command line.

``pgolf-audit PATH...`` audits record folders (it is the ``check`` command; naming it is
optional). With no PATH it audits the bundled example record. Exit codes: 0 pass (or only
findings below --fail-on), 1 findings at/above --fail-on, 2 incomplete audit or usage error.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import click

from . import __version__, registry
from .audit import FOLDER_TIME_LIMIT_S, AuditOptions, audit_paths
from .bundled import ExampleMissing, bundled_example
from .output import write_report
from .render import RENDERERS
from .ruledocs import rule_markdown
from .tracks import TRACK_ALIASES
from .unwrap import UnwrapError, unwrap_file
from .usage import UsageFailure, validated_selection

# Subcommands that live in heavier modules are imported only when used, so that
# `pgolf-audit PATH` never imports torch or the rerun machinery.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "bpb": ("pgolf_audit.reference_impl.commands", "bpb_command", "Byte accounting of a tokenizer over validation shards (LUT vs exact)."),
    "demo": ("pgolf_audit.reference_impl.commands", "demo_command", "Build, train and audit a tiny reference record folder."),
    # Pull requests and GitHub (auditor/pr.py, auditor/github_comment.py).
    "pr": ("pgolf_audit.pr", "pr_command", "Audit a pull request: its shape and the record folder it adds."),
    "comment": ("pgolf_audit.github_comment", "comment_command", "Create or update the sticky review comment on a PR."),
    "summary-outputs": ("pgolf_audit.github_comment", "summary_outputs_command",
                        "Print a report's verdict and counts as key=value lines (GitHub Actions outputs)."),
    # --- rerun
    "rerun": ("pgolf_audit.rerun.commands", "rerun_command", "Rerun a record's seeds under torchrun, measure them from outside, audit."),
}


class AuditGroup(click.Group):
    """A group whose default command is ``check``: ``pgolf-audit PATH`` == ``pgolf-audit check PATH``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.list_commands(ctx) and args[0] not in ("--help", "-h", "--version")):
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None or name not in LAZY_COMMANDS:
            return command
        module_name, attr, _ = LAZY_COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or str(exc)
            raise UsageFailure(
                f"'{name}' needs the reference extra ({missing} is not installed): pip install 'pgolf-audit[reference]'"
            ) from None
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, LAZY_COMMANDS[name][2]))
            else:
                rows.append((name, self.commands[name].get_short_help_str(70)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pgolf-audit")
def main() -> None:
    """Audit Parameter Golf record folders without executing their code.

    \b
    pgolf-audit                          audit the bundled example record
    pgolf-audit records/track_10min_16mb/2026-04-09_X
    pgolf-audit records/ --format json --output report.json
    pgolf-audit rules                    list every rule and check
    """


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="markdown", show_default=True,
              help="Output format (JSON is canonical; the others are rendered from it).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE instead of stdout.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Folders audited in parallel [default: CPU count].")
@click.option("--track", type=click.Choice(sorted(TRACK_ALIASES)), default=None,
              help="Track whose limits apply [default: inferred from the path, else submission.json].")
@click.option("--ruleset", default=None, help="Ruleset id (rules/tracks/ID.toml) [default: the one in force on the submission date].")
@click.option("--select", multiple=True, help="Run only rules whose code starts with these prefixes (comma-separated, repeatable).")
@click.option("--ignore", multiple=True, help="Skip rules whose code starts with these prefixes (comma-separated, repeatable).")
@click.option("--preview", is_flag=True, help="Also run rules in preview status.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error", show_default=True,
              help="Lowest severity that makes the exit code 1.")
@click.option("--against", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Reference record folder for the significance test.")
@click.option("--records-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Records tree: test against the best earlier record-track folder found there.")
@click.option("--folder-time-limit", type=click.FloatRange(min=1), default=FOLDER_TIME_LIMIT_S, show_default=True,
              help="Seconds one folder's audit may take; past it the folder is INCOMPLETE.")
def check_command(paths, fmt, output, jobs, track, ruleset, select, ignore, preview, fail_on, against, records_root,
                  folder_time_limit):
    """Audit record folders (or folders containing record folders)."""
    select_codes, ignore_codes = validated_selection(ruleset, select, ignore)
    for label, folder in (("--against", against), ("--records-root", records_root)):
        if folder is not None and not folder.is_dir():
            raise UsageFailure(f"{label} {folder}: not a directory")
    options = AuditOptions(
        track=TRACK_ALIASES[track] if track else None, ruleset=ruleset, select=select_codes, ignore=ignore_codes,
        preview=preview, fail_on=fail_on, against=against, records_root=records_root, jobs=jobs or os.cpu_count() or 1,
    )
    try:
        targets = list(paths) or [bundled_example()]
    except ExampleMissing as exc:
        raise UsageFailure(str(exc)) from None
    # each folder in its own process: a parser crash or hang costs that folder only
    report = audit_paths(targets, options, isolated=True, time_limit_s=folder_time_limit)
    write_report(report, [(fmt, output)] if output else [], fmt)
    sys.exit(report.exit_code(fail_on))


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--code", "codes", multiple=True, help="Show the full documentation of these rules.")
def rules_command(fmt, codes):
    """List every rule and check with its code, name, category, severity and summary."""
    rules = registry.all_rules()
    if codes:
        wanted = {c.upper() for c in codes}
        rules = tuple(r for r in rules if r.CODE in wanted)
        missing = wanted - {r.CODE for r in rules}
        if missing:
            raise UsageFailure(f"unknown rule code(s): {', '.join(sorted(missing))}")
    if fmt == "json":
        click.echo(json.dumps([r.describe() for r in rules], indent=2))
        return
    if fmt == "markdown" or codes:
        click.echo("\n\n".join(rule_markdown(r) for r in rules))
        return
    width = max((len(r.NAME) for r in rules), default=10)
    for r in rules:
        click.echo(f"{r.CODE}  {r.NAME:<{width}}  {r.CATEGORY.value:<11}  {r.SEVERITY.value:<7}  {r.summary()}")


@main.command("unwrap")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layers", is_flag=True, help="Describe the wrapper layers on stderr.")
def unwrap_command(file, layers):
    """Print the readable source of a (possibly lzma/base85-wrapped) script, without running it."""
    try:
        code = unwrap_file(file)
    except UnwrapError as exc:
        raise UsageFailure(f"cannot unwrap {file}: {exc}") from None
    except OSError as exc:
        raise UsageFailure(f"cannot read {file}: {exc.strerror or exc}") from None
    if layers:
        if not code.layers:
            click.echo(f"{file}: plain source, no wrapper", err=True)
        for i, layer in enumerate(code.layers, 1):
            click.echo(f"layer {i}: {layer.file}:{layer.line}: {layer.description} -> {layer.output_bytes:,} bytes", err=True)
    click.echo(code.source, nl=not code.source.endswith("\n"))


if __name__ == "__main__":  # pragma: no cover
    main()
