"""PG801 rerun-failed."""

from __future__ import annotations

from pgolf_audit.checkutil import fmt_s
from pgolf_audit.model import Category, Confidence, Location, Severity
from pgolf_audit.rerun.examples import example_rerun, example_run
from pgolf_audit.rulebase import Check, FolderCase, IncompleteCheck, SkipCheck

TAIL_LINES = 15

CRASH_TAIL = ("Traceback (most recent call last):\n  File \"train_gpt.py\", line 88, in <module>\n    main()\n"
              "RuntimeError: CUDA error: an illegal memory access was encountered")
FA3_TAIL = ("Traceback (most recent call last):\n  File \"train_gpt.py\", line 12, in <module>\n"
            "    from flash_attn_interface import flash_attn_func as flash_attn_3_func\n"
            "ModuleNotFoundError: No module named 'flash_attn_interface'")

MISSING_DATA_TAIL = ("Traceback (most recent call last):\n  File \"train_gpt.py\", line 610, in main\n"
                     "FileNotFoundError: No files found for pattern: "
                     "/root/code/parameter-golf/data/datasets/fineweb10B_sp1024/fineweb_train_*.bin")


MISSING_DATA_CONFIG = {"missing_data_paths": {"DATA_PATH": "/root/code/parameter-golf/data/datasets/fineweb10B_sp1024"}}


def _tail(run: dict, lines: int = TAIL_LINES) -> str | None:
    text = run.get("log_tail") or ""
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else None


class RerunFailed(Check):
    """A rerun seed crashed, hung, printed nothing, wrote no artifact or tried the network.

    What it checks:
        Each seed of `pgolf-audit rerun`: the exit code of `torchrun --standalone
        --nproc_per_node=N train_gpt.py` in a scratch copy of the folder, whether the per-seed
        timeout ended it (the whole process tree is killed), whether it printed anything, a
        final val_bpb line and an artifact file (the new file whose size the script printed for
        its compressed model, else the file it writes and reads back as its artifact, else a new
        compressed file such as `*.ptz`; a raw checkpoint like `final_model.pt` is not the
        artifact, so a seed that stops before writing it reports "no artifact written"), and the
        network calls the harness refused. Processes left
        running after the script exited are reported as a warning. Runs only when a rerun
        happened; a rerun that could not start at all (no torch, no GPU) makes the audit
        INCOMPLETE.

    Why it breaks the rules:
        R-FMT-SELF-CONTAINED: the script must run from its folder and reproduce its logs; a
        submission whose code does not run is not accepted (#1864, #545). Fetching anything
        at train or eval time is outside data (R-EVAL-C1-CAUSAL): the artifact and the script
        are all a run may use.

    Example:
        `ModuleNotFoundError: No module named 'flash_attn_interface'` (rerun with
        `--shim-flash-attn`); a run still training after the timeout; `urlopen` of a remote URL.

    Legal alternative:
        Ship everything the script needs in the folder (code counts toward the 16 MB), state
        extra packages in requirements.txt, and write the artifact next to the script.

    Known limitations:
        The harness reports what happened on this machine: an out-of-memory crash on a smaller
        GPU, or a timeout chosen too short for slower hardware, is not the submission's fault;
        the message gives the hardware and the timeout so a reviewer can tell.
    """

    CODE = "PG801"
    NAME = "rerun-failed"
    CATEGORY = Category.RERUN
    SEVERITY = Severity.ERROR
    CONFIDENCE = Confidence.HIGH
    REFERENCES = ("R-FMT-SELF-CONTAINED", "R-EVAL-C1-CAUSAL")

    VALID = [
        FolderCase("no rerun requested"),
        FolderCase("three seeds reproduced", options={"rerun_result": example_rerun()}),
    ]
    INVALID = [
        FolderCase("seed crashes", options={"rerun_result": example_rerun([
            example_run(42, None, status="crashed", problems=["crashed", "no_metric", "no_artifact"], exit_code=1,
                        artifact_path=None, artifact_bytes=None, log_tail=CRASH_TAIL)])},
            message_contains=("exit code 1", "illegal memory access")),
        FolderCase("flash_attn_interface missing", options={"rerun_result": example_rerun([
            example_run(42, None, status="crashed", problems=["crashed", "no_metric", "no_artifact"], exit_code=1,
                        artifact_path=None, log_tail=FA3_TAIL)])},
            message_contains=("--shim-flash-attn",)),
        FolderCase("the README's absolute data path does not exist here", options={"rerun_result": example_rerun(
            [example_run(42, None, status="crashed", problems=["crashed", "no_metric", "no_artifact"],
                         exit_code=1, artifact_path=None, log_tail=MISSING_DATA_TAIL)], config=MISSING_DATA_CONFIG)},
            message_contains=("DATA_PATH=/root/code/parameter-golf/data/datasets/fineweb10B_sp1024", "--data-root")),
        FolderCase("data not found without --data-path", options={"rerun_result": example_rerun([
            example_run(42, None, status="crashed", problems=["crashed", "no_metric", "no_artifact"], exit_code=1,
                        artifact_path=None,
                        log_tail="SystemExit: error: ./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin: no files match")])},
            message_contains=("--data-path",)),
        FolderCase("hang until the timeout", options={"rerun_result": example_rerun([
            example_run(42, None, status="timeout", problems=["timeout", "no_metric", "no_artifact"], exit_code=-15,
                        timed_out=True, processes_ended_on_timeout=10, artifact_path=None,
                        log_tail="step:100/20000 train_loss:3.1")])},
            message_contains=("timeout", "10 processes")),
        FolderCase("prints nothing", options={"rerun_result": example_rerun([
            example_run(42, None, status="no_output", problems=["no_output", "no_metric", "no_artifact"], lines=0,
                        artifact_path=None, log_tail="")])},
            message_contains=("printed nothing",)),
        FolderCase("no artifact written", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, status="no_artifact", problems=["no_artifact"], artifact_path=None,
                        artifact_file_bytes=None, artifact_bytes=None)])},
            message_contains=("no artifact",)),
        FolderCase("tries the network", options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, status="network_attempt", problems=["network_attempt"],
                        network_attempts=[{"call": "connect", "target": "192.0.2.1:80", "where": "train_gpt.py:40"}])])},
            message_contains=("192.0.2.1:80", "train_gpt.py:40", "refused")),
        FolderCase("leaves a process behind", severity=Severity.WARNING, options={"rerun_result": example_rerun([
            example_run(42, 1.1759301, leftover_processes=2)])},
            message_contains=("2 processes",)),
    ]

    def run(self, ctx):
        rerun = ctx.rerun
        if rerun is None:
            raise SkipCheck("rerun not requested")
        if rerun.infrastructure_error:
            raise IncompleteCheck(f"the rerun could not run: {rerun.infrastructure_error}")
        hardware = (rerun.hardware or {}).get("description") or "unknown hardware"
        shim = rerun.shim or {}
        missing = (rerun.config or {}).get("missing_data_paths") or {}
        for run in rerun.runs or []:
            seed = run.get("seed")
            # The script is where the problem is; the rerun's log (outside the folder) is evidence.
            where = Location(ctx.entry_script or "train_gpt.py")
            values = {k: run.get(k) for k in ("seed", "status", "exit_code", "timed_out", "wall_seconds", "lines", "log_path")}
            problems = run.get("problems") or []
            tail = run.get("error_excerpt") or _tail(run)
            last = [run.get("error_line") or run.get("last_script_line") or
                    ((tail or "").strip().splitlines()[-1:] or [""])[0]]
            not_artifacts = [c for c in run.get("artifact_candidates") or [] if not c.get("is_artifact")]
            no_artifact = ("; no artifact written" + (
                " (" + ", ".join(f"{c['path']} ({c['bytes']:,} bytes)" for c in not_artifacts[:3])
                + " is not the compressed model the script reads back)" if not_artifacts else "")
                if "no_artifact" in problems else "")
            if "launch_failed" == run.get("status"):
                raise IncompleteCheck(f"seed {seed}: the harness could not launch torchrun: {'; '.join(problems)}")
            if "timeout" in problems:
                yield self.finding(
                    f"seed {seed}: still running when the {fmt_s(rerun.timeout_seconds, 0)} timeout expired on "
                    f"{hardware}; the whole process tree ({run.get('processes_ended_on_timeout') or 0} processes) was "
                    f"ended" + ("; it printed nothing" if "no_output" in problems else f"; last line: {last[0][:160]!r}")
                    + no_artifact,
                    location=where, excerpt=tail, values=values)
            elif "crashed" in problems:
                hint = ""
                text = (tail or "") + "\n" + (run.get("log_tail") or "")
                if "flash_attn_interface" in text and not shim.get("flash_attn"):
                    hint = "; the script imports flash_attn_interface (FlashAttention 3), not installed here: rerun with --shim-flash-attn"
                elif missing and any(w in text for w in ("No such file", "not found", "No files", "no files match")):
                    hint = ("; " + ", ".join(f"{k}={v}" for k, v in missing.items()) + " (from the README) "
                            f"{'does' if len(missing) == 1 else 'do'} not exist on this machine: rerun with --data-root DIR "
                            "(a data folder with datasets/ and tokenizers/)")
                elif "DATA_PATH" not in (rerun.env or {}) and any(
                        w in text for w in ("No such file", "not found", "No files", "no files match", "fineweb_")):
                    hint = ("; DATA_PATH was not set, so the script looked for data relative to its scratch folder: "
                            "rerun with --data-root DIR (or --data-path and --tokenizer-path)")
                yield self.finding(
                    f"seed {seed}: train_gpt.py exited with exit code {run.get('exit_code')} after "
                    f"{fmt_s(run.get('wall_seconds'), 1)} on {hardware}: {last[0][:200]}{hint}{no_artifact}",
                    location=where, excerpt=tail, values=values)
            elif "no_output" in problems:
                yield self.finding(f"seed {seed}: train_gpt.py printed nothing and exited with code "
                                   f"{run.get('exit_code')} after {fmt_s(run.get('wall_seconds'), 1)}",
                                   location=where, excerpt=tail, values=values)
            elif "no_metric" in problems:
                yield self.finding(f"seed {seed}: train_gpt.py exited with code {run.get('exit_code')} without a final "
                                   f"val_bpb line", location=where, excerpt=tail, values=values)
            if "no_artifact" in problems and not ({"timeout", "crashed", "no_output"} & set(problems)):
                yield self.finding(
                    f"seed {seed}: no artifact written (no new file matched the script's compressed-model size line, "
                    f"its configured artifact name or a compressed suffix such as *.ptz)"
                    + (no_artifact[len("; no artifact written"):] if not_artifacts else ""),
                    location=where, excerpt=tail, values=values)
            for attempt in run.get("network_attempts") or []:
                yield self.finding(
                    f"seed {seed}: tried to reach the network: {attempt.get('call')} to {attempt.get('target')} from "
                    f"{attempt.get('where')}; refused by the rerun's isolation "
                    f"({(rerun.isolation or {}).get('method', 'unknown')})",
                    location=where, excerpt=tail, values={"seed": seed, "log_path": run.get("log_path"), **attempt})
            if run.get("output_lines_dropped"):
                yield self.finding(f"seed {seed}: printed more than the harness keeps; {run['output_lines_dropped']:,} "
                                   f"later lines were dropped from the log", location=where, severity=Severity.WARNING,
                                   values={"seed": seed, "dropped": run["output_lines_dropped"]})
            if run.get("leftover_processes"):
                yield self.finding(f"seed {seed}: {run['leftover_processes']} processes were still running after "
                                   f"train_gpt.py exited; the harness ended them", location=where,
                                   severity=Severity.WARNING,
                                   values={"seed": seed, "leftover": run["leftover_processes"], "log_path": run.get("log_path")})
