"""``pgolf-audit rerun``: reproduce a record folder's runs, then audit it with the result attached.

Exit codes follow the audit: 0 pass (or only findings below --fail-on), 1 findings at or
above --fail-on (a seed that crashed, a score that did not reproduce, a limit exceeded), 2 an
incomplete audit (the rerun could not run at all: no torch, no GPU, no namespace when one was
demanded) or a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pgolf_audit.audit import AuditOptions, audit_paths
from pgolf_audit.output import rendered, write_report
from pgolf_audit.usage import UsageFailure

from .runner import RerunRequest, RerunSetupError, run_rerun


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            seeds.append(int(part))
        except ValueError:
            raise UsageFailure(f"--seeds {text!r}: {part!r} is not an integer seed") from None
    if not seeds:
        raise UsageFailure("--seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise UsageFailure(f"--seeds {text!r} repeats a seed")
    return seeds


def _parse_env(items: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise UsageFailure(f"--env {item!r}: expected NAME=VALUE")
        env[key] = value
    return env


@click.command("rerun")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--nproc", type=click.IntRange(min=1), required=True, help="Processes per node for torchrun (8 on the target).")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--seeds", default=None, help="Comma-separated seeds, e.g. 42,314,999 [default: the claimed seeds].")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Challenge-style data folder (datasets/, tokenizers/): the script's data variables point into it.")
@click.option("--data-path", default=None, help="DATA_PATH for the script (made absolute).")
@click.option("--tokenizer-path", default=None, help="TOKENIZER_PATH for the script (made absolute).")
@click.option("--env", "env_items", multiple=True, metavar="NAME=VALUE",
              help="Override of the claimed configuration, e.g. MAX_WALLCLOCK_SECONDS=60 (repeatable; listed in the review).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None,
              help="Seconds per seed before the whole process tree is killed [default: derived from the claimed "
                   "train and eval times, the speed factor and a compile allowance; printed].")
@click.option("--shim-flash-attn", is_flag=True, help="Provide flash_attn_interface (FA3) on top of torch SDPA.")
@click.option("--calibrate", is_flag=True, help="Measure this machine's speed against 8xH100 SXM first.")
@click.option("--calibrate-steps", type=click.IntRange(min=1), default=None, help="Timed steps of the calibration.")
@click.option("--isolation", type=click.Choice(["auto", "namespace", "guard"]), default="auto", show_default=True,
              help="auto: network namespace when it works here, else the socket guard; namespace: require it.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for logs and measurements [default: a new temporary folder, named in the review].")
@click.option("--keep-scratch", is_flag=True, help="Keep each seed's scratch copy (with its artifact).")
@click.option("--python", "python", default=sys.executable, show_default=False,
              help="Interpreter whose torch runs torchrun [default: this one].")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines (JSON output is always quiet).")
def rerun_command(folder, nproc, device, seeds, data_root, data_path, tokenizer_path, env_items, timeout_s, shim_flash_attn,
                  calibrate, calibrate_steps, isolation, out_dir, keep_scratch, python, fmt, output, fail_on, quiet):
    """Rerun a record folder's seeds under torchrun, measure them from outside, and audit the folder.

    \b
    The configuration is the claimed one: the README's launch command for each seed (its
    variables, loops and exports) with --data-root/--data-path/--tokenizer-path and --env on top;
    after each seed the hyperparameters the rerun printed are compared with the claimed log's.

    \b
    pgolf-audit rerun records/track_10min_16mb/2026-04-09_X --nproc 8 --data-root data
    pgolf-audit rerun FOLDER --nproc 1 --seeds 42 --shim-flash-attn --calibrate --format json
    """
    progress = None if (quiet or fmt == "json") else (lambda line: click.echo(line, err=True))
    request = RerunRequest(folder=folder, nproc=nproc, device=device, seeds=_parse_seeds(seeds), data_path=data_path,
                           tokenizer_path=tokenizer_path, data_root=data_root, env=_parse_env(env_items), timeout_s=timeout_s,
                           shim_flash_attn=shim_flash_attn, calibrate=calibrate, calibrate_steps=calibrate_steps,
                           out_dir=out_dir, isolation=isolation, python=python, keep_scratch=keep_scratch,
                           display_path=str(folder), progress=progress)
    try:
        rerun = run_rerun(request)
    except RerunSetupError as exc:
        raise UsageFailure(str(exc)) from None
    report = audit_paths([folder], AuditOptions(fail_on=fail_on, rerun_result=rerun, jobs=1))
    text = rendered(report, fmt)
    out = Path(rerun.out_dir)
    (out / ("review.md" if fmt == "markdown" else "report.json")).write_text(text, encoding="utf-8")
    if fmt == "markdown":
        (out / "report.json").write_text(rendered(report, "json"), encoding="utf-8")
    write_report(report, [(fmt, output)] if output else [], fmt, text=text)
    if progress:
        progress(f"[rerun] {report.verdict.value}; logs and reports under {out}")
    sys.exit(report.exit_code(fail_on))
