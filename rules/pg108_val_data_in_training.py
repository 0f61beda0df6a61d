"""PG108 val-data-in-training."""

from __future__ import annotations

import re

from pgolf_audit.engine import describe as d
from pgolf_audit.engine import ir
from pgolf_audit.engine.patterns import CALIBRATION_RE, VAL_FILE_RE, VAL_NAME_RE, WARMUP_RE
from pgolf_audit.engine.program import Site, target_names
from pgolf_audit.model import Severity
from pgolf_audit.rulebase import AstRule, CodeCase, Ruling

_TRAIN_NAME = re.compile(r"train", re.I)

_VAL_LOADER = '''
import os
import torch


class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_train_*.bin")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")


def train(model, args, opt, steps):
    loader = DistributedTokenLoader(args.val_files, rank=0, world_size=8)
    for step in range(steps):
        x, y = loader.next_batch(524288, 2048)
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()


if __name__ == "__main__":
    train(model, Hyperparameters(), opt, 20000)
'''

_GPTQ = '''
import torch


def collect_hessians(model, tokens, n_batches, seq_len=2048):
    hessians = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            def hook(mod, inputs, output, name=name):
                x = inputs[0].reshape(-1, inputs[0].size(-1)).float()
                hessians[name] = hessians.get(name, 0) + x.T @ x
            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        for i in range(n_batches):
            model(tokens[i * seq_len : (i + 1) * seq_len][None])
    for h in hooks:
        h.remove()
    return hessians


def main():
    val_tokens = load_validation_tokens("./data/fineweb10B_sp1024/fineweb_val_*.bin")
    calib = SOURCE
    hessians = collect_hessians(model, calib, 64)
    save_quantized(model, hessians)


main()
'''


_VAL_ONLY = '''
import glob
import os


class Hyperparameters:
    val_only = bool(int(os.environ.get("VAL_ONLY", "0")))
    train_files = os.path.join("./data", "fineweb_val_*.bin" if val_only else "fineweb_train_*.bin")


def main():
    args = Hyperparameters()
    print("peak memory allocated: 1 MiB")
    actual_train_files = len(glob.glob("./data/fineweb_val_*.bin" if args.val_only else "./data/fineweb_train_*.bin"))
    print(f"training shards: {actual_train_files}")


main()
'''


class ValDataInTraining(AstRule):
    """Validation data feeds training, calibration or the artifact.

    What it checks:
        Training steps whose batches come from a loader built over `fineweb_val_*` files;
        training batches that mix training and validation tokens; a training-data path
        variable pointing at validation shards; quantization calibration (GPTQ Hessians,
        AWQ scales, activation statistics: functions that register forward hooks or are
        named for calibration) fed with validation tokens; validation tokens saved into the
        artifact; and warmup/compile passes that run backward on validation tokens (a
        warning: precedent is mixed).

    Why it breaks the rules:
        R-DATA-NO-VAL-IN-TRAINING: no validation data during training in any form (#44
        trained on val, #168's "paid prefix" stored val in the artifact; README 03-20).
        R-DATA-NO-VAL-CALIB: calibration must come from training data or the model's own
        generations (#728 closed, #1019 with self-generated calibration merged; dexhunter on
        #1919). R-TTT-WARMUP-NO-VAL: warmups must use synthetic or training tokens (#1530
        was flagged but still merged, hence a warning).

    Example:
        `collect_hessians(model, val_tokens[: 64 * 2048], 64)` before GPTQ.

    Legal alternative:
        Calibrate on training batches inside the training budget or on autoregressively
        generated tokens (`generate_calibration_tokens`); warm up on `torch.randint` tokens.

    Known limitations:
        A calibration routine is recognised by forward hooks or its name; calibration that
        runs through an unrecognised helper, or a loader that reads a path assembled at run
        time, is not traced.
    """

    CODE = "PG108"
    NAME = "val-data-in-training"
    SEVERITY = Severity.ERROR
    REFERENCES = ("R-DATA-NO-VAL-IN-TRAINING", "R-DATA-NO-VAL-CALIB", "R-TTT-WARMUP-NO-VAL")
    RULING = Ruling("R-DATA-NO-VAL-IN-TRAINING", source="README FAQ (2cff08e1a, 03-20, after #44 and #168)")

    VALID = [
        CodeCase("GPTQ calibration on self-generated tokens (#1019)",
                 _GPTQ.replace("SOURCE", "generate_calibration_tokens(model, 64 * 2048, temperature=0.8)")),
        CodeCase("GPTQ calibration on a training shard",
                 _GPTQ.replace("SOURCE", "load_data_shard('./data/fineweb10B_sp1024/fineweb_train_000000.bin')")),
        CodeCase("the training loader over training shards", _VAL_LOADER.replace("args.val_files", "args.train_files")),
    ]
    INVALID = [
        CodeCase("the training loader reads fineweb_val_* shards", _VAL_LOADER, line=12,
                 message_contains=("loader",)),
        # the validation shards are one side of a conditional: the logged flag picks the other
        CodeCase("training files chosen by a VAL_ONLY flag the log shows off", _VAL_ONLY, line=7,
                 severity=Severity.INFO, log_hyperparameters={"val_only": "False"},
                 message_contains=("disabled in every logged run", "val_only=False")),
        # a line printed on the way shows that the statement ran, not which side it took
        CodeCase("the shard count of a VAL_ONLY choice the log shows off, after a printed line", _VAL_ONLY,
                 line=13, severity=Severity.INFO, log_hyperparameters={"val_only": "False"},
                 log_lines=("peak memory allocated: 1 MiB",), message_contains=("disabled in every logged run",)),
        CodeCase("training files chosen by a VAL_ONLY flag the log shows on", _VAL_ONLY, line=7,
                 log_hyperparameters={"val_only": "True"}, message_contains=("enabled in", "val_only=True")),
        CodeCase("GPTQ Hessians collected on validation tokens", _GPTQ.replace("SOURCE", "val_tokens[: 64 * 2048 + 1]"),
                 line=24, message_contains=("calibration", "collect_hessians")),
        CodeCase("a compile warmup that steps on real validation tokens", '''
            import torch


            def ttt_compile_warmup(model, val_tokens, opt, steps=4):
                snapshot = {k: v.clone() for k, v in model.state_dict().items()}
                for i in range(steps):
                    chunk = val_tokens[i * 4096 : (i + 1) * 4096 + 1]
                    model(chunk[:-1], chunk[1:]).backward()
                    opt.step()
                model.load_state_dict(snapshot)
            ''', line=8, severity=Severity.WARNING,
                 message_contains=("warmup",)),
        CodeCase("the training file pattern names validation shards", '''
            import os

            DATA = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
            TRAIN_PATTERN = os.path.join(DATA, "fineweb_val_*.bin")
            ''', line=4, message_contains=("fineweb_val",)),
        CodeCase("validation tokens stored in the artifact (paid prefix)", '''
            import torch


            def save_artifact(model, val_tokens, path):
                torch.save({"model": model.state_dict(), "prefix": val_tokens[:1_000_000]}, path)
            ''', line=5, message_contains=("artifact",)),
    ]

    def check(self, program):
        analysis = program.analysis
        reported_loaders: set[str] = set()
        seen_sites: set = set()
        for func in program.functions:
            for ev in analysis.events.get(func, ()):
                if ev.kind != "update" or ev.detail != "weights" or ev.inner:
                    continue
                key = (id(ev.site.stmt), id(ev.site.x))
                if key in seen_sites:
                    continue
                roots = analysis.roots(ev.origins, func)
                loaders = analysis.val_loaders(ev.origins, func)
                if loaders:
                    seen_sites.add(key)
                    for marker in loaders:
                        if marker in reported_loaders:
                            continue
                        reported_loaders.add(marker)
                        made = analysis.marker_sites.get(marker)
                        anchor = made or ev.site
                        yield self.hit(anchor, (
                            f"{d.snippet(anchor)} at {d.where(anchor)} builds a data loader over validation shards "
                            f"whose batches {d.snippet(ev.site)} at {d.where(ev.site)} trains on: validation data "
                            f"may not be used for training (R-DATA-NO-VAL-IN-TRAINING, #44)"),
                            related=[ev.site], also_guarded_by=[ev.site])
                    continue
                if "VAL" in roots and "TRAIN" in roots:
                    seen_sites.add(key)
                    yield self.hit(ev.site, (
                        f"{d.snippet(ev.site)} at {d.where(ev.site)} trains on a batch that mixes training and "
                        f"validation tokens (R-DATA-NO-VAL-IN-TRAINING)"))
                    continue
                if "VAL" in roots and _is_warmup(ev, func):
                    seen_sites.add(key)
                    yield self.hit(ev.site, (
                        f"{d.snippet(ev.site)} at {d.where(ev.site)} runs backward on validation tokens in a "
                        f"warmup/compile pass (`{func.qualname}`): warmups must use synthetic or training tokens "
                        f"(R-TTT-WARMUP-NO-VAL; #1530 was flagged, then merged)"), severity=Severity.WARNING,
                        ruling=_WARMUP_RULING)
        yield from self._calibration(program)
        yield from self._paths(program)
        for func in program.functions:
            for store in analysis.stores.get(func, ()):
                yield self.hit(store.site, (
                    f"{d.snippet(store.site)} at {d.where(store.site)} writes validation tokens into a saved file or "
                    f"buffer: validation data in the artifact is a \"paid prefix\" (R-DATA-NO-VAL-IN-TRAINING, #168)"))

    def _calibration(self, program):
        analysis = program.analysis
        seen = set()
        for rec in analysis.call_records.values():
            callee = rec.callee
            if not _calibrates(callee, program):
                continue
            if id(rec.call) in seen:
                continue
            val_args = []
            for pname, (px, origins) in rec.args.items():
                if pname in ("self", "model") or pname not in callee.name_refs:
                    continue
                if any(analysis.is_val(o, rec.caller) and o.via != "files" for o in origins if o.is_data):
                    val_args.append(ir.render(px, limit=50) if px is not None else pname)
            if not val_args:
                continue
            seen.add(id(rec.call))
            site = Site(rec.caller, rec.stmt, rec.call)
            yield self.hit(site, (
                f"{d.snippet(site)} at {d.where(site)} collects quantization calibration statistics in "
                f"`{callee.qualname}` from validation tokens ({', '.join(f'`{a}`' for a in val_args)}): "
                f"calibrate on training batches or generated text instead (R-DATA-NO-VAL-CALIB, #728, #1019)"),
                related=[Site(callee, None)])

    def _paths(self, program):
        for func in program.functions:
            for s in ir.walk_statements(func.body):
                if not isinstance(s, ir.Assign) or s.value is None or s.op is not None:
                    continue
                names = [n for t in s.targets for n in target_names(t)] + [t.attr for t in s.targets if isinstance(t, ir.Attr)]
                if not any(_TRAIN_NAME.search(n) for n in names):
                    continue
                if _names_val_files(s.value):
                    site = Site(func, s)
                    yield self.hit(site, (
                        f"{d.snippet(site)} at {d.where(site)} points the training data at validation shards "
                        f"(fineweb_val): training may not read validation data (R-DATA-NO-VAL-IN-TRAINING)"),
                        weights=[(w, func) for w in _choosing_conditions(s.value)])
            for cls_stmt in ir.walk_statements(func.body):
                if isinstance(cls_stmt, ir.ClassS):
                    for s in cls_stmt.cls.body:
                        if isinstance(s, ir.Assign) and s.value is not None and any(
                                isinstance(t, ir.Name) and _TRAIN_NAME.search(t.id) for t in s.targets) \
                                and _names_val_files(s.value):
                            site = Site(func, s)
                            yield self.hit(site, (
                                f"{d.snippet(site)} at {d.where(site)} points the training data at validation "
                                f"shards (fineweb_val): training may not read validation data "
                                f"(R-DATA-NO-VAL-IN-TRAINING)"),
                                weights=[(_as_class_attributes(w, cls_stmt.cls.body), func)
                                         for w in _choosing_conditions(s.value)])


def _choosing_conditions(x: ir.X) -> list[ir.X]:
    """The condition that picks the validation shards when they are one side of a conditional
    expression (`"fineweb_val_*.bin" if val_only else "fineweb_train_*.bin"`): the path is
    taken only where it holds, so a run with it false did not train on them. Empty when the
    validation name appears anywhere else in ``x``."""
    everywhere = _val_file_names(x)
    found: list[ir.X] = []
    chosen: set[int] = set()
    for y in ir.walk(x):
        if isinstance(y, ir.IfExpr) and not _val_file_names(y.test):
            in_body, in_else = _val_file_names(y.body), _val_file_names(y.orelse)
            if bool(in_body) != bool(in_else):
                found.append(y.test if in_body else ir.UnOp(None, "not", y.test))
                chosen = in_body or in_else
    if len(found) != 1 or chosen != everywhere:
        return []
    return found


def _as_class_attributes(x: ir.X, body: list) -> ir.X:
    """A condition written in a class body (`val_only` in `class Hyperparameters`) reads the
    class's own attribute: spelled as one, the flag evaluator finds its default and logged value."""
    own = {t.id for s in body if isinstance(s, ir.Assign) for t in s.targets if isinstance(t, ir.Name)}
    if isinstance(x, ir.Name) and x.id in own:
        return ir.Attr(None, ir.Name(None, "cls"), x.id)
    if isinstance(x, ir.UnOp):
        return ir.UnOp(None, x.op, _as_class_attributes(x.operand, body))
    return x


def _names_val_files(x: ir.X) -> bool:
    return bool(_val_file_names(x))


def _val_file_names(x: ir.X) -> set[int]:
    """The parts of ``x`` that name validation shards: a `fineweb_val` literal or a variable
    named like a validation file list or pattern."""
    found = set()
    for y in ir.walk(x):
        if isinstance(y, ir.Const) and isinstance(y.value, str) and VAL_FILE_RE.search(y.value):
            found.add(id(y))
        elif isinstance(y, (ir.Name, ir.Attr)):
            name = y.id if isinstance(y, ir.Name) else y.attr
            if VAL_NAME_RE.match(name) and ("file" in name or "pattern" in name or "path" in name):
                found.add(id(y))
    return found


def _calibrates(func, program) -> bool:
    if CALIBRATION_RE.search(func.name):
        return True
    for call, _stmt in func.calls:
        if isinstance(call.func, ir.Attr) and call.func.attr in ("register_forward_hook", "register_forward_pre_hook"):
            return True
    return False


_WARMUP_RULING = Ruling("R-TTT-WARMUP-NO-VAL", source="dexhunter and msisovic on #1530, merged by cocohearts",
                        disputed=True)


def _is_warmup(ev, func) -> bool:
    if WARMUP_RE.search(func.name):
        return True
    for loop, _it in ev.loops:
        names = set(loop.iter.names if loop.iter is not None else ()) | set(
            target_names(loop.target) if loop.target is not None else ())
        if any(WARMUP_RE.search(n) for n in names):
            return True
    stmt = ev.site.stmt
    for test, _taken in (stmt.guards if stmt is not None else ()):
        if any(WARMUP_RE.search(n) for n in test.names):
            return True
    return False
