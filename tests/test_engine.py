"""The AST engine: the code model from one walk, name resolution, the effect simulation,
feature flags, and the runner's guarantees (one parse, fail closed, crashes contained)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from pgolf_audit import registry
from pgolf_audit.audit import audit_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.engine import ir
from pgolf_audit.engine.loader import CodeProgram
from pgolf_audit.cases import build_code_case_folder
from pgolf_audit.engine.flags import Evaluator, RunValues
from pgolf_audit.lines import LineTable
from pgolf_audit.model import CheckStatus, Severity
from pgolf_audit.rulebase import CodeCase


def program_of(source: str, runs: list[dict[str, str]] | None = None) -> CodeProgram:
    module = cst.parse_module(textwrap.dedent(source).lstrip("\n"))
    f = ir.build_file("train_gpt.py", module, LineTable(module))
    f.source = module.code
    return CodeProgram([f], runs=[RunValues.from_dict(f"run{i}.log", r) for i, r in enumerate(runs or [])])


def func(program: CodeProgram, name: str) -> ir.FunctionIR:
    return next(f for f in program.functions if f.name == name)


# --------------------------------------------------------------------------- the model


def test_model_records_aliases_functions_calls_and_guards():
    p = program_of('''
        import os
        import torch.nn.functional as F
        from torch import nn


        class Net(nn.Module):
            def forward(self, x, y):
                return F.cross_entropy(self.head(x), y)


        def main(args):
            if not args.enabled:
                return
            for step in range(3):
                loss = Net()(1, 2)
            print(loss)
        ''')
    main = func(p, "main")
    forward = func(p, "forward")
    assert forward.qualname == "Net.forward" and forward.cls is not None
    ce = next(c for c, _s in forward.calls if isinstance(c.func, ir.Attr) and c.func.attr == "cross_entropy")
    assert p.qualify(ce.func, forward) == "torch.nn.functional.cross_entropy"
    # the early return guards everything after it
    loop = next(s for s in main.body if isinstance(s, ir.Loop))
    assert [(ir.render(t), taken) for t, taken in loop.guards] == [("not args.enabled", False)]
    assert all(stmt is not None for _c, stmt in main.calls)
    assert p.resolve(next(c for c, _s in main.calls if ir.render(c.func) == "Net"), main).kind == "class"


def test_positions_are_lines_of_the_unwrapped_source():
    p = program_of('''
        def f(x):
            y = x + 1
            return y
        ''')
    f = func(p, "f")
    from pgolf_audit.engine.api import Site

    assert Site(f, f.body[1]).line() == 3


def test_rule_visitors_run_during_the_single_walk():
    seen: list[str] = []
    module = cst.parse_module("import requests\nrequests.get('x')\nprint(1)\n")
    ir.build_file("train_gpt.py", module, LineTable(module),
                  hooks={"Call": [lambda node, builder: seen.append(ir.render(builder.expr(node.func)))]})
    assert seen == ["requests.get", "print"]


# --------------------------------------------------------------------------- effects


def kinds(source: str) -> list[str]:
    p = program_of(source)
    return sorted({i.kind for i in p.analysis.all_incidents()})


def test_score_first_loop_has_no_incident_and_train_then_score_has_one():
    legal = '''
        def ttt(model, val_tokens, opt):
            loss_sum = 0.0
            for s in range(0, val_tokens.numel(), 1024):
                chunk = val_tokens[s : s + 1025]
                loss_sum += model(chunk[:-1], chunk[1:]).item()
                model(chunk[:-1], chunk[1:]).backward()
                opt.step()
            return loss_sum
        '''
    assert kinds(legal) == []
    illegal = legal.replace(
        "                loss_sum += model(chunk[:-1], chunk[1:]).item()\n"
        "                model(chunk[:-1], chunk[1:]).backward()\n",
        "                model(chunk[:-1], chunk[1:]).backward()\n"
        "                loss_sum += model(chunk[:-1], chunk[1:]).item()\n")
    assert kinds(illegal) == ["update_before_score"]


def test_epoch_conditions_are_first_or_later_iterations():
    source = '''
        def ttt(model, val_tokens, opt, epochs):
            loss_sum = 0.0
            for epoch in range(epochs):
                for s in range(0, val_tokens.numel(), 1024):
                    chunk = val_tokens[s : s + 1025]
                    loss = model(chunk[:-1], chunk[1:])
                    if epoch == CONDITION:
                        loss_sum += loss.item()
                    loss.backward()
                    opt.step()
            return loss_sum
        '''
    assert kinds(source.replace("CONDITION", "0")) == []
    assert kinds(source.replace("CONDITION", "epochs - 1")) == ["score_after_epoch_update"]


def test_restoring_a_snapshot_undoes_a_warmup():
    source = '''
        import copy


        def warmup(model, val_tokens, opt):
            saved = copy.deepcopy(model.state_dict())
            model(val_tokens[:1024], val_tokens[1:1025]).backward()
            opt.step()
            RESTORE


        def main():
            val_tokens = load_validation_tokens("fineweb_val_*.bin")
            warmup(model, val_tokens, opt)
            val_loss = evaluate_val(model, val_tokens)
            print(f"val_bpb:{val_loss}")
        '''
    assert kinds(source.replace("RESTORE", "model.load_state_dict(saved)")) == []
    assert kinds(source.replace("RESTORE", "pass")) == ["adapt_before_score"]


# --------------------------------------------------------------------------- flags


FLAGS = '''
    import os


    class Hyperparameters:
        ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))
        within_beta = float(os.environ.get("NGRAM_WITHIN_BETA", "0.5"))
        mode = os.environ.get("MODE", "fast")


    def gate(args):
        return args.ttt_enabled and args.within_beta > 0
    '''


@pytest.mark.parametrize("run,expected", [
    (None, True),                                                    # code defaults
    ({"ttt_enabled": "False"}, False),                               # Hyperparameters block (converted)
    ({"TTT_ENABLED": "0"}, False),                                   # env dump (raw string, converted here)
    ({"ttt_enabled": "True", "ngram_within_beta": "0.0"}, False),    # env name printed lowercase
    ({"within_beta": "0.25"}, True),
])
def test_flag_values_per_run(run, expected):
    p = program_of(FLAGS)
    f = func(p, "gate")
    guard = f.body[0].value
    ev = Evaluator(p.defs, RunValues.from_dict("train.log", run) if run is not None else None)
    assert bool(ev.value(guard, f)) is expected
    assert ev.uses and all(u.source == ("log" if run else "default") for u in ev.uses if u.key == "ttt_enabled") \
        or run is not None


def test_constructor_behind_a_conditional_expression_is_gated(tmp_path):
    cls = registry.get("PG110")
    case = next(c for c in cls.INVALID if c.log_hyperparameters)
    folder = build_code_case_folder(case, tmp_path)
    result = audit_folder(folder, AuditOptions(select=["PG110"]))
    finding = next(f for f in result.findings if f.code == "PG110")
    assert finding.severity is Severity.INFO
    assert "smear_gate=False at train_seed42.log:" in finding.message
    assert any(loc.path == "train_seed42.log" for loc in finding.evidence.related)


# --------------------------------------------------------------------------- the runner


def test_code_is_parsed_once_and_helpers_once_each(tmp_path, monkeypatch):
    """The entry and each helper are parsed exactly once per audit, shared by the engine and
    the code-size accounting (both go through the context's parse cache)."""
    import pgolf_audit.context as context
    import pgolf_audit.engine.loader as engine
    import pgolf_audit.unwrap as unwrap

    calls: dict[str, int] = {"context": 0, "unwrap": 0}

    def counting(where, real):
        def parse(source):
            calls[where] += 1
            return real(source)
        return parse

    monkeypatch.setattr(context, "parse_module", counting("context", context.parse_module))
    monkeypatch.setattr(unwrap, "parse_module", counting("unwrap", unwrap.parse_module))
    assert not hasattr(engine, "parse_module"), "the engine parses nothing itself: it asks the context"
    wrappers: list[int] = []
    real_wrapper = cst.MetadataWrapper.__init__

    def wrapper_init(self, module, *a, **k):
        wrappers.append(len(module.body))
        real_wrapper(self, module, *a, **k)

    monkeypatch.setattr(cst.MetadataWrapper, "__init__", wrapper_init)
    # the helper's docstring names eval: the unwrapper parses it to look for hidden code, through the context
    case = CodeCase(code="import helper_mod\n\nhelper_mod.run()\n",
                    files={"helper_mod.py": '"""Called at eval time."""\ndef run():\n    return 1\n'})
    folder = build_code_case_folder(case, tmp_path)
    result = audit_folder(folder, AuditOptions(select=["PG1", "PG202"]))
    # no scoring pass in this snippet: the order rules say "not recognised", the others pass
    assert all(c.status is CheckStatus.PASS or c.reason.startswith("not recognised")
               for c in result.checks if c.code.startswith("PG1") and c.code not in ("PG111", "PG112"))  # these read the folder's text
    assert calls == {"context": 2, "unwrap": 0}  # train_gpt.py and helper_mod.py, once each
    assert all(n == 1 for n in wrappers)  # never a metadata provider over a whole module


def test_missing_code_is_incomplete_never_pass(tmp_path):
    folder = build_code_case_folder(CodeCase(code="x = 1\n"), tmp_path)
    (folder / "train_gpt.py").unlink()
    (folder / "README.md").write_text("# run\n")
    result = audit_folder(folder, AuditOptions(select=["PG1"]))
    statuses = {c.code: c.status for c in result.checks if c.code.startswith("PG1") and c.code not in ("PG111", "PG112")}  # these read the folder's text
    assert statuses and set(statuses.values()) == {CheckStatus.INCOMPLETE}


SCORING_PASS = """
def eval_val(model, val_tokens):
    loss_sum = 0.0
    for i in range(0, len(val_tokens), 1024):
        loss_sum += model(val_tokens[i:i + 1024]).item()
    return loss_sum


print(f"final val_bpb:{eval_val(model, load_validation_tokens('fineweb_val_000000.bin')):.4f}")
"""


def test_code_without_a_scoring_pass_is_not_recognised_never_pass(tmp_path):
    folder = build_code_case_folder(CodeCase(code="x = 1\n"), tmp_path)
    result = audit_folder(folder, AuditOptions(select=["PG1"]))
    order_rules = [c for c in result.checks if c.code in ("PG101", "PG102", "PG103", "PG107")]
    assert order_rules and all(c.status is CheckStatus.INCOMPLETE and c.reason.startswith("not recognised")
                               for c in order_rules)
    assert result.verdict.value == "INCOMPLETE"


def test_a_crashing_rule_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    cls = registry.get("PG104")

    def boom(self, program):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cls, "check", boom)
    folder = build_code_case_folder(CodeCase(code=SCORING_PASS), tmp_path)
    result = audit_folder(folder, AuditOptions(select=["PG1"]))
    statuses = {c.code: c.status for c in result.checks}
    assert statuses["PG104"] is CheckStatus.ERROR
    assert statuses["PG101"] is CheckStatus.PASS
    crash = next(f for f in result.findings if f.code == "PG900")
    assert "PG104" in crash.message and "kaboom" in crash.message
    assert result.verdict.value == "INCOMPLETE"


def test_findings_in_wrapped_code_name_the_wrapper(tmp_path):
    cls = registry.get("PG101")
    case = next(c for c in cls.INVALID if c.wrap)
    folder = build_code_case_folder(case, tmp_path)
    result = audit_folder(folder, AuditOptions(select=["PG101"]))
    finding = next(f for f in result.findings if f.code == "PG101")
    assert finding.location.wrapper and finding.location.start_line == case.line
    assert finding.evidence.excerpt == "loss.backward()"


def test_rule_docs_show_code_examples():
    from pgolf_audit.ruledocs import rule_markdown

    text = rule_markdown(registry.get("PG101"))
    assert "### Flagged (examples)" in text and "```python" in text and "loss.backward()" in text


def test_line_table_agrees_with_libcst_positions():
    from libcst.metadata import MetadataWrapper, PositionProvider

    root = Path(__file__).parent / "fixtures"
    for path in [root / "example_source" / "train_gpt.py", root / "legality" / "illegal_hashed_ngram.py",
                 root / "legality" / "legal_score_first_ttt.py"]:
        source = path.read_text()
        module = cst.parse_module(source)
        expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        for table in (LineTable(module, source), LineTable(module)):  # per statement, whole module
            for top in module.body:
                stack = [top]
                while stack:
                    node = stack.pop()
                    stack.extend(node.children)
                    if node in expected and isinstance(node, (cst.BaseStatement, cst.BaseSmallStatement,
                                                              cst.BaseExpression)):
                        span = table.span(node, top)
                        want = expected[node]
                        assert (span.start_line, span.end_line) == (want.start.line, want.end.line), (
                            path.name, type(node).__name__, span, want)
