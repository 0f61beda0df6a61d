"""PG805 rerun-config-differs."""

from __future__ import annotations

from pgolf_audit.model import Category, Location, Severity
from pgolf_audit.rerun.examples import example_config_diff, example_rerun, example_run
from pgolf_audit.rulebase import Check, FolderCase, SkipCheck

SHOWN = 8


def _pairs(items: list[dict]) -> str:
    def value(v):
        return "(not printed)" if v is None else str(v)

    shown = [f"{d['name']} {value(d.get('claimed'))} -> {value(d.get('rerun'))}" for d in items[:SHOWN]]
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(shown) + more


class RerunConfigDiffers(Check):
    """The rerun did not run the configuration the claimed logs printed.

    What it checks:
        After each rerun seed, the hyperparameters the run printed (a `Hyperparameters:` block or
        baseline-style `name:value` lines before training) against those of the claimed log of
        the same seed. The rerun's configuration is the README's launch command for that seed
        plus what the person asked for (`--env`, `--data-root`, `--data-path`,
        `--tokenizer-path`). A difference nobody asked for (other than the run's identity, the
        process count's consequences, software versions and the same file in another folder)
        means the README does not reproduce the logged runs, or the script printed a different
        configuration: a warning, and the comparison with the claims is marked as not
        like-for-like. Differences caused by `--env` overrides are listed as info.

    Why it breaks the rules:
        R-FMT-SELF-CONTAINED: the folder must reproduce its logs; the seeds must come from the
        same submitted configuration (R-NO-EXTRA-COMPUTE / seed selection). A rerun of another
        configuration says nothing about the claimed score.

    Example:
        The README runs `SEED=42 QK_GAIN_INIT=5.25 TTT_ENABLED=1 torchrun ...`, the claimed log
        prints `ttt_enabled: True`, but the rerun printed `ttt_enabled: False` because the
        variable was lost.

    Legal alternative:
        Give the complete launch command in the README (every variable that differs from the
        code's defaults), or make the defaults the submitted configuration.

    Known limitations:
        Only printed hyperparameters are compared; a script that prints none cannot be checked
        (the review says so). A value printed differently for the same setting (`1` and
        `True`, `600` and `600.0`) counts as the same.
    """

    CODE = "PG805"
    NAME = "rerun-config-differs"
    CATEGORY = Category.RERUN
    SEVERITY = Severity.WARNING
    REFERENCES = ("R-FMT-SELF-CONTAINED", "R-NO-EXTRA-COMPUTE")

    VALID = [
        FolderCase("the rerun printed the claimed hyperparameters", options={"rerun_result": example_rerun()}),
        FolderCase("only the run id and the process count differ", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, config_diff=example_config_diff(explained=[
                {"name": "run_id", "claimed": "a1", "rerun": "b2", "because": "identifies the run, not its configuration"},
                {"name": "world_size", "claimed": "8", "rerun": "1", "because": "follows from the process count"}]))])}),
        FolderCase("no rerun requested"),
    ]
    INVALID = [
        FolderCase("the rerun ran without test-time training", options={"rerun_result": example_rerun([
            example_run(42, 1.0941, config_diff=example_config_diff(unrequested=[
                {"name": "ttt_enabled", "claimed": "True", "rerun": "False"},
                {"name": "qk_gain_init", "claimed": "5.25", "rerun": "5.0"}]))])},
            severity=Severity.WARNING, message_contains=("ttt_enabled True -> False", "not asked for")),
        FolderCase("a shorter wallclock asked for with --env", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, config_diff=example_config_diff(requested=[
                {"name": "max_wallclock_seconds", "claimed": "600.0", "rerun": "60.0",
                 "because": "--env MAX_WALLCLOCK_SECONDS"}]))])},
            severity=Severity.INFO, message_contains=("max_wallclock_seconds 600.0 -> 60.0", "--env MAX_WALLCLOCK_SECONDS")),
        FolderCase("nothing to compare with", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, config_diff={"status": "unavailable",
                                                     "note": "no claimed log of this folder prints its hyperparameters"})])},
            severity=Severity.INFO, message_contains=("could not be compared",)),
    ]

    def run(self, ctx):
        rerun = ctx.rerun
        if rerun is None:
            raise SkipCheck("rerun not requested")
        runs = [r for r in rerun.runs or [] if r.get("config_diff")]
        if not runs:
            raise SkipCheck("no rerun seed compared its configuration")
        for run in runs:
            seed, diff = run.get("seed"), run["config_diff"]
            values = {"seed": seed, "claimed_log": diff.get("claimed_log"), "log_path": run.get("log_path")}
            where = Location(diff["claimed_log"]) if diff.get("claimed_log") else None
            if diff.get("status") == "unavailable":
                yield self.finding(f"seed {seed}: the configuration could not be compared with the claims: "
                                   f"{diff.get('note')}", location=where, values=values, severity=Severity.INFO)
                continue
            if diff.get("unrequested"):
                yield self.finding(
                    f"seed {seed}: the rerun did not run the claimed configuration: {len(diff['unrequested'])} "
                    f"hyperparameter{'s' if len(diff['unrequested']) != 1 else ''} differ from {diff.get('claimed_log')} "
                    f"and were not asked for ({_pairs(diff['unrequested'])}); its comparison with the claims is not "
                    f"like-for-like", location=where, values={**values, "unrequested": diff["unrequested"]})
            if diff.get("requested"):
                because = sorted({d.get("because", "") for d in diff["requested"]})
                yield self.finding(
                    f"seed {seed}: ran with overrides asked for ({', '.join(because)}): {_pairs(diff['requested'])}",
                    location=where, values={**values, "requested": diff["requested"]}, severity=Severity.INFO)
