"""PG109 outside-data-at-eval."""

from __future__ import annotations

import re

from pgolf_audit.engine import describe as d
from pgolf_audit.engine import ir
from pgolf_audit.engine.patterns import LOCAL_NETWORK_CALLS, NETWORK_COMMAND_RE, NETWORK_MODULES, NETWORK_PREFIXES
from pgolf_audit.engine.program import Site
from pgolf_audit.model import Confidence, Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

_LOAD_CALLS = {"torch.load", "numpy.load", "np.load", "numpy.fromfile", "np.fromfile", "pickle.load", "joblib.load",
               "safetensors.torch.load_file"}
_DATA_PATH_RE = re.compile(r"fineweb|/data/|^data/|datasets|tokenizer|\.model$|\.vocab$|logs?/|\{|\*")
_SHELL_CALLS = {"os.system", "os.popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
                "subprocess.check_output", "subprocess.Popen"}

_PREFILL = '''
import glob
import numpy as np


def build_train_bigrams(pattern, vocab=1024):
    table = np.zeros((vocab, vocab), dtype=np.int64)
    for path in sorted(glob.glob(pattern)):
        tokens = np.fromfile(path, dtype=np.uint16, offset=1024)
        np.add.at(table, (tokens[:-1], tokens[1:]), 1)
    return table


def main():
    blob = serialize_artifact(model)
    load_artifact(blob, model)
    table = build_train_bigrams("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin")
    val_loss, val_bpb = eval_with_bigram_prior(model, val_tokens, table)
    print(f"final val_bpb:{val_bpb:.8f}")


main()
'''


class OutsideDataAtEval(AstRule):
    """The script reaches the network, a model hub, or data outside the artifact.

    What it checks:
        Calls into network and hub libraries (`urllib`, `requests`, `http.client`, `socket`,
        `huggingface_hub`, `datasets.load_dataset`, `torch.hub`, `transformers` pretrained
        loaders, `wget`, `gdown`), shell commands that download (`curl`, `wget`, `git clone`,
        `pip install`); reads of training shards after the artifact has been written or
        inside a function that scores validation tokens (an eval-time table "pre-filled
        from training data"); and loads of fixed file names that are neither in the record
        folder nor written by the script (a warning).

    Why it breaks the rules:
        R-DATA-NO-EXTERNAL-AT-EVAL: "No external downloads, training dataset access, or
        network calls are allowed during evaluation" (README FAQ). A training n-gram table
        filled from the training shards at eval startup (#883/#924/#945) reads training
        data at evaluation time.

    Example:
        `hf_hub_download("user/ngram-tables", "bigram.npy")` in the evaluation code, or
        `np.fromfile("fineweb_train_000001.bin")` after `serialize_artifact(...)`.

    Legal alternative:
        Put everything the evaluation needs into the artifact (counted in the 16,000,000
        bytes) and build any training statistic inside the training budget.

    Known limitations:
        A path assembled at run time is not resolved; only literal names are checked
        against the folder. The "evaluation" phase starts after the last quantization or
        serialization outside a loop in the entry code: a training read that more training
        or another serialization follows (a start-up size check, a debug snapshot, GPTQ
        calibration) is still part of making the artifact.
    """

    CODE = "PG109"
    NAME = "outside-data-at-eval"
    SEVERITY = Severity.ERROR
    CONFIDENCE = Confidence.HIGH
    REFERENCES = ("R-DATA-NO-EXTERNAL-AT-EVAL",)
    RULING = Ruling("R-DATA-NO-EXTERNAL-AT-EVAL", source="README FAQ")

    VALID = [
        CodeCase("tokenizer and validation shards at eval, training data for calibration before serialization", '''
            import numpy as np
            import sentencepiece as spm


            def main():
                sp = spm.SentencePieceProcessor(model_file="./data/tokenizers/fineweb_1024_bpe.model")
                train_loader = DistributedTokenLoader("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin", 0, 8)
                hessians = collect_hessians(model, train_loader)
                blob = serialize_artifact(model, hessians)
                val_tokens = load_validation_tokens("./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin")
                val_loss, val_bpb = eval_val_sliding(model, val_tokens)
                print(f"final val_bpb:{val_bpb:.8f}")


            main()
            '''),
        CodeCase("reloading the checkpoint the script itself wrote", '''
            import torch


            def main():
                torch.save(model.state_dict(), "final_model.pt")
                model.load_state_dict(torch.load("final_model.pt", map_location="cpu"))


            main()
            '''),
        CodeCase("the host name in a run manifest (no data from outside)", '''
            import json
            import socket


            def write_manifest(val_bpb):
                with open("run_manifest.json", "w") as f:
                    json.dump({"host": socket.gethostname(), "val_bpb": val_bpb}, f)


            write_manifest(1.12)
            '''),
        CodeCase("a start-up size check quantizes the initial model; training and the artifact follow", '''
            import torch


            def main():
                blob = serialize_artifact(model)
                assert len(blob) < 16_000_000, "would not fit"
                train_loader = DistributedTokenLoader("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin", 0, 8)
                for step in range(1000):
                    x, y = train_loader.next_batch()
                    model(x, y).backward()
                    opt.step()
                final_blob = serialize_artifact(model)
                val_tokens = load_validation_tokens("./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin")
                print(f"final val_bpb:{eval_val(model, val_tokens):.8f}")


            main()
            '''),
    ]
    INVALID = [
        CodeCase("an n-gram table downloaded from the hub at eval", '''
            import numpy as np
            from huggingface_hub import hf_hub_download


            def load_ngram_prior():
                path = hf_hub_download(repo_id="someone/fineweb-ngram", filename="bigram.npy")
                return np.load(path)


            if __name__ == "__main__":
                prior = load_ngram_prior()
            ''', line=6, message_contains=("hf_hub_download",)),
        CodeCase("a shell download", '''
            import subprocess


            def fetch_tables():
                subprocess.run(["wget", "-q", "https://example.org/tables.npz"], check=True)


            fetch_tables()
            ''', line=5, message_contains=("wget",)),
        CodeCase("a bigram table filled from the training shards after the artifact is written", _PREFILL, line=16,
                 message_contains=("training", "line 14")),
        CodeCase("a checkpoint that is neither in the folder nor produced by the script", '''
            import torch


            def main():
                teacher = torch.load("/root/checkpoints/teacher_sp1024.pt")
                return teacher


            main()
            ''', line=5,
                 severity=Severity.WARNING, message_contains=("teacher_sp1024.pt",)),
        CodeCase("a network library imported but never called", '''
            import requests


            def main():
                print("no network here")


            main()
            ''', line=1, severity=Severity.INFO,
                 message_contains=("requests",)),
    ]

    def check(self, program):
        called_modules: set[str] = set()
        written = _written_literals(program)
        for func in program.functions:
            for call, stmt in func.calls:
                qual = program.qualify(call.func, func) or ""
                site = Site(func, stmt, call)
                if qual in LOCAL_NETWORK_CALLS:
                    called_modules.add(qual.split(".")[0])  # the import is accounted for
                    continue
                if _network(qual):
                    called_modules.add(qual.split(".")[0])
                    yield self.hit(site, (
                        f"{d.snippet(site)} at {d.where(site)} calls `{qual}`: network or hub access is not "
                        f"allowed; everything evaluation uses must be in the artifact (R-DATA-NO-EXTERNAL-AT-EVAL)"))
                    continue
                if qual in _SHELL_CALLS:
                    text = " ".join(_strings(call))
                    m = NETWORK_COMMAND_RE.search(text)
                    if m:
                        yield self.hit(site, (
                            f"{d.snippet(site)} at {d.where(site)} runs `{m.group(0)}` in a shell: downloads and "
                            f"network access are not allowed (R-DATA-NO-EXTERNAL-AT-EVAL)"))
                    continue
                if qual in _LOAD_CALLS or (qual == "open" and _read_mode(call)):
                    path = call.args[0] if call.args else None
                    if isinstance(path, ir.Const) and isinstance(path.value, str) and path.value \
                            and not _DATA_PATH_RE.search(path.value):
                        base = path.value.rsplit("/", 1)[-1]
                        in_folder = any(f == base or f.endswith("/" + base) for f in program.folder_files)
                        if not in_folder and path.value not in written and base not in written:
                            yield self.hit(site, (
                                f"{d.snippet(site)} at {d.where(site)} loads `{path.value}`, which is neither in the "
                                f"record folder nor written by the script: data from outside the artifact "
                                f"(R-DATA-NO-EXTERNAL-AT-EVAL)"), severity=Severity.WARNING)
        for f in program.files:
            for module, stmt in f.imports:
                head = module.lstrip(".").split(".")[0]
                if head in NETWORK_MODULES and head not in called_modules and not module.startswith("."):
                    site = Site(f.module_func, stmt)
                    yield self.hit(site, (
                        f"`import {module}` at {d.where(site)}: no call into it was found, "
                        f"but network access at evaluation would break R-DATA-NO-EXTERNAL-AT-EVAL"),
                        severity=Severity.INFO)
                    called_modules.add(head)
        yield from self._training_reads(program)

    def _training_reads(self, program):
        analysis = program.analysis
        seen = set()
        # evaluation functions: they score validation tokens and do not train on training data
        eval_funcs = set()
        for f in program.functions:
            events = analysis.events.get(f, ())
            # scoring done here, not in a function it calls (a driver only orchestrates)
            scores = any(e.kind == "score" and not e.inner and any(analysis.is_val(o, f) for o in e.origins)
                         for e in events)
            trains = any(e.kind == "update" and "TRAIN" in analysis.roots(e.origins, f) for e in events)
            # a driver that writes the artifact is judged by what it does after writing it
            writes = any(e.kind == "quant" for e in events)
            if scores and not trains and not writes and not f.is_module:
                eval_funcs.add(f)
        candidates = []
        for func in program.functions:
            events = analysis.events.get(func, ())
            for ev in events:
                if ev.kind != "read" or "TRAIN" not in analysis.roots(ev.origins, func):
                    continue
                if ev.after_artifact and _still_training(analysis, func, events, ev):
                    continue
                if ev.after_artifact or func in eval_funcs:
                    candidates.append((len(ev.inner), func, ev))
        # report each read once, at the level closest to it that shows the problem
        candidates.sort(key=lambda c: c[0])
        for _depth, func, ev in candidates:
            key = id((ev.inner[-1] if ev.inner else ev.site).stmt)
            if key in seen:
                continue
            seen.add(key)
            if ev.after_artifact:
                why = f"after the artifact is written (first quantization/serialization at {_first_quant(analysis, func)})"
            else:
                why = f"inside `{func.qualname}`, which scores validation tokens"
            yield self.hit(ev.site, (
                f"{d.snippet(ev.site)} at {d.where(ev.site)}{d.via(ev)} reads training data {why}: evaluation may "
                f"not access the training set (R-DATA-NO-EXTERNAL-AT-EVAL)"),
                related=list(ev.inner))


def _still_training(analysis, func, events, read) -> bool:
    """The artifact is the last serialization: a training read followed by a weight update on
    training data or by another quantization outside a loop (a start-up size check, a debug
    snapshot, GPTQ calibration before the final write) comes before the artifact."""
    for e in events:
        if e.seq <= read.seq:
            continue
        if e.kind == "quant" and not e.loops:
            return True
        if e.kind == "update" and "TRAIN" in analysis.roots(e.origins, func):
            return True
    return False


def _first_quant(analysis, func) -> str:
    for ev in analysis.events.get(func, ()):
        if ev.kind == "quant" and not ev.loops:
            return d.where(ev.site)
    return "?"


def _network(qual: str) -> bool:
    for prefix in NETWORK_PREFIXES:
        if qual == prefix or qual.startswith(prefix + "."):
            return True
    return qual.split(".")[-1] in ("hf_hub_download", "snapshot_download", "urlretrieve", "urlopen", "load_dataset",
                                   "load_state_dict_from_url", "download_url_to_file", "from_pretrained") \
        and not qual.startswith(("torch.nn", "self."))


def _strings(call: ir.Call) -> list[str]:
    out = []
    for x in [*call.args, *call.kwargs.values()]:
        for y in ir.walk(x):
            if isinstance(y, ir.Const) and isinstance(y.value, str):
                out.append(y.value)
    return out


def _read_mode(call: ir.Call) -> bool:
    mode = call.arg(1, "mode")
    if mode is None:
        return True
    return isinstance(mode, ir.Const) and isinstance(mode.value, str) and "r" in mode.value


def _written_literals(program) -> set[str]:
    out: set[str] = set()
    for func in program.functions:
        for call, _stmt in func.calls:
            qual = program.qualify(call.func, func) or ""
            name = qual.split(".")[-1]
            candidates: list[ir.X | None] = []
            if name in ("save", "savez", "savez_compressed", "tofile", "write_bytes", "write_text", "dump"):
                candidates = [*call.args, *call.kwargs.values()]
            elif qual == "open" and not _read_mode(call):
                candidates = [call.arg(0)]
            for x in candidates:
                if isinstance(x, ir.Const) and isinstance(x.value, str):
                    out.add(x.value)
                    out.add(x.value.rsplit("/", 1)[-1])
    return out
