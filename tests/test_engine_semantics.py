"""The engine's facts on the shapes real submissions have: the artifact is what the script
reads back, an early return ends its path, window lengths are not the scored token, rulings
have dates, flags resolve through aliases and counters, the logs' own lines show which path
ran, and every file that runs is analysed or the checks say they are incomplete."""

from __future__ import annotations

import json
import textwrap

import pytest

from pgolf_audit.audit import audit_folder
from pgolf_audit.context import AuditOptions
from pgolf_audit.engine.severity import apply_ruling
from pgolf_audit.cases import build_code_case_folder, log_text
from pgolf_audit.model import CheckStatus, Severity
from pgolf_audit.rulebase import LAUNCH_DATE, CodeCase, Ruling


def audit(tmp_path, code: str, *, files: dict[str, str] | None = None, logs=None, date: str | None = None,
          select=("PG1",), extra_log_lines: list[str] | None = None):
    case = CodeCase(code=textwrap.dedent(code).lstrip("\n"), files=files or {}, log_hyperparameters=logs)
    folder = build_code_case_folder(case, tmp_path)
    if date is not None:
        (folder / "submission.json").write_text(json.dumps({"date": date, "val_bpb": 1.12}), encoding="utf-8")
    if extra_log_lines:
        for log in sorted(folder.glob("train_seed*.log")):
            log.write_text(log.read_text() + "\n".join(extra_log_lines) + "\n", encoding="utf-8")
    return audit_folder(folder, AuditOptions(select=list(select)))


def codes(result, code: str, severity: Severity | None = None):
    return [f for f in result.findings if f.code == code and (severity is None or f.severity is severity)]


# --------------------------------------------------------------------------- the artifact

CALIBRATE_AFTER_CHECKPOINT = '''
import io
import lzma

import torch


def serialize(model, calib_files):
    torch.save(model.state_dict(), "final_model.pt")
    calib_loader = DistributedTokenLoader(calib_files, 0, 8)
    hessians = collect_hessians(model, calib_loader)
    buf = io.BytesIO()
    torch.save(gptq_quantize(model, hessians), buf)
    with open("final_model.int6.ptz", "wb") as f:
        f.write(lzma.compress(buf.getvalue()))


def deserialize():
    with open("final_model.int6.ptz", "rb") as f:
        blob = f.read()
    return torch.load(io.BytesIO(lzma.decompress(blob)))


def main():
    model = build_model()
    serialize(model, "./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin")
    model.load_state_dict(deserialize())
    val_tokens = load_validation_tokens("./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin")
    val_loss = eval_val(model, val_tokens)
    print(f"final val_bpb:{val_loss:.6f}")
    EXTRA


main()
'''


def test_calibration_after_the_raw_checkpoint_is_not_evaluation(tmp_path):
    result = audit(tmp_path, CALIBRATE_AFTER_CHECKPOINT.replace("EXTRA", "pass"))
    assert not codes(result, "PG109"), [f.message for f in codes(result, "PG109")]


def test_training_reads_after_the_artifact_is_read_back_are_evaluation(tmp_path):
    extra = 'table = build_table(DistributedTokenLoader("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin", 0, 8))'
    result = audit(tmp_path, CALIBRATE_AFTER_CHECKPOINT.replace("EXTRA", extra))
    errors = codes(result, "PG109", Severity.ERROR)
    assert errors and "training data after the artifact" in errors[0].message


def test_an_eval_only_branch_that_returns_does_not_flow_into_training(tmp_path):
    result = audit(tmp_path, '''
        import io
        import zlib

        import torch


        def main(args):
            val_tokens = load_validation_tokens("./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin")
            if args.eval_only:
                with open("final_model.ptz", "rb") as f:
                    state = torch.load(io.BytesIO(zlib.decompress(f.read())))
                model = build_model()
                model.load_state_dict(state)
                print(f"final val_bpb:{eval_val(model, val_tokens):.6f}")
                return
            model = build_model()
            train_loader = DistributedTokenLoader("./data/datasets/fineweb10B_sp1024/fineweb_train_*.bin", 0, 8)
            train(model, train_loader)
            buf = io.BytesIO()
            torch.save(quantize(model), buf)
            with open("final_model.ptz", "wb") as f:
                f.write(zlib.compress(buf.getvalue()))


        main(parse_args())
        ''')
    assert not codes(result, "PG109"), [f.message for f in codes(result, "PG109")]


# --------------------------------------------------------------------------- the scored token

def test_window_lengths_and_row_indices_are_not_the_scored_token(tmp_path):
    result = audit(tmp_path, '''
        import torch
        import torch.nn.functional as F


        def eval_val_sliding(model, val_tokens, seq_len, stride, chunk_windows):
            loss_sum, token_count = 0.0, 0.0
            for ci in range(len(chunk_windows)):
                windows = chunk_windows[ci]
                x_batch = torch.zeros(len(windows), seq_len, dtype=torch.int64)
                y_batch = torch.zeros(len(windows), seq_len, dtype=torch.int64)
                wlens = []
                for i, ws in enumerate(windows):
                    wlen = min(seq_len, val_tokens.numel() - 1 - ws)
                    wlens.append(wlen)
                    chunk = val_tokens[ws:ws + wlen + 1]
                    x_batch[i, :wlen] = chunk[:-1]
                    y_batch[i, :wlen] = chunk[1:]
                logits = model(x_batch)
                nll = F.cross_entropy(logits.flatten(0, 1), y_batch.flatten(), reduction="none").view(len(windows), -1)
                for i, ws in enumerate(windows):
                    wlen = wlens[i]
                    s = 0 if ws == 0 else seq_len - stride
                    loss_sum += nll[i, s:wlen].sum()
                    token_count += float(wlen - s)
            return loss_sum / token_count


        print(f"final val_bpb:{eval_val_sliding(model, load_validation_tokens('fineweb_val_000000.bin'), 2048, 64, windows):.4f}")
        ''')
    assert not codes(result, "PG105") and not codes(result, "PG104")


@pytest.mark.parametrize("pattern", [
    'str(Path(data_path) / "{name}")',
    '"{{}}/{name}".format(data_path)',
])
def test_validation_files_named_through_str_or_format_are_validation_data(tmp_path, pattern):
    # the reference trainer's spelling: the loader and the scorer are named for no data set,
    # so only the file name says the scored tokens are the validation tokens
    def scoring(name):
        return (tmp_path / name, '''
            import numpy as np
            import torch.nn.functional as F
            from pathlib import Path


            def load_tokens(pattern):
                return np.concatenate([np.fromfile(p, dtype=np.uint16) for p in sorted(Path().glob(pattern))])


            def score(model, tokens):
                total = 0.0
                for i in range(0, len(tokens) - 1024, 1024):
                    total += F.cross_entropy(model(tokens[i:i + 1024]), tokens[i + 1:i + 1025]).item()
                return total


            def main(data_path):
                files = ''' + pattern.format(name=name) + '''
                tokens = load_tokens(files)
                print(f"final val_bpb:{score(model, tokens):.4f}")


            main("/data/fineweb10B_sp1024")
            ''')

    folder, code = scoring("fineweb_val_*.bin")
    folder.mkdir()
    order = {c.code: c for c in audit(folder, code).checks if c.code in ("PG101", "PG102", "PG103", "PG107")}
    assert order and all(c.status is CheckStatus.PASS for c in order.values()), [(c.code, c.reason) for c in order.values()]
    # the control: the same code over the training shards scores no validation tokens
    folder, code = scoring("fineweb_train_*.bin")
    folder.mkdir()
    control = next(c for c in audit(folder, code).checks if c.code == "PG101")
    assert control.status is CheckStatus.INCOMPLETE and control.reason.startswith("not recognised")


# --------------------------------------------------------------------------- rulings and flags

SMEAR = '''
import torch
from torch import nn


class SmearGate(nn.Module):
    def forward(self, x):
        gate = torch.sigmoid(self.gate)
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return (1 - gate) * x + gate * x_prev


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.smear = SmearGate()

    def forward(self, input_ids):
        return self.smear(self.tok_emb(input_ids))


model = GPT()
print(f"final val_bpb:{eval_val(model, load_validation_tokens('fineweb_val_000000.bin')):.4f}")
'''


@pytest.mark.parametrize("date,severity", [("2026-03-20", Severity.INFO), ("2026-04-28", Severity.ERROR)])
def test_a_ruling_applies_from_its_date(tmp_path, date, severity):
    result = audit(tmp_path, SMEAR, date=date)
    found = codes(result, "PG110")
    assert found and found[0].severity is severity
    if severity is Severity.INFO:
        assert "before the ruling" in found[0].message and "R-SMEAR-BOS" in found[0].message
    assert found[0].evidence.values["ruling"].startswith("R-SMEAR-BOS")


def test_ruling_policy():
    launch = Ruling("R-X")
    assert launch.date == LAUNCH_DATE
    assert apply_ruling(Severity.ERROR, launch, "2026-03-19")[0] is Severity.ERROR
    dated = Ruling("R-Y", date="2026-04-25", source="an audit")
    assert apply_ruling(Severity.ERROR, dated, "2026-04-24")[0] is Severity.INFO
    assert apply_ruling(Severity.ERROR, dated, None)[0] is Severity.ERROR
    disputed = Ruling("R-Z", source="a thread", disputed=True)
    severity, note = apply_ruling(Severity.ERROR, disputed, "2026-04-30")
    assert severity is Severity.WARNING and "disputed" in note


def test_a_flag_copied_through_an_attribute_alias_is_read_from_the_log(tmp_path):
    code = '''
        import os

        import torch
        from torch import nn


        class Hyperparameters:
            smear_gate_enabled = bool(int(os.environ.get("SMEAR_GATE_ENABLED", "1")))


        class GPT(nn.Module):
            def __init__(self, h):
                super().__init__()
                self.smear_gate_enabled = h.smear_gate_enabled

            def forward(self, x):
                if self.smear_gate_enabled:
                    g = torch.sigmoid(self.smear_lambda)
                    x = torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1]], dim=1)
                return x


        model = GPT(Hyperparameters())
        print(f"final val_bpb:{eval_val(model, load_validation_tokens('fineweb_val_000000.bin')):.4f}")
        '''
    result = audit(tmp_path, code, logs={"smear_gate_enabled": "False"}, date="2026-04-28")
    found = codes(result, "PG110")
    assert found and found[0].severity is Severity.INFO
    assert "smear_gate_enabled=False at train_seed42.log" in found[0].message


def test_a_flag_whose_default_is_not_decidable_gives_at_most_a_warning(tmp_path):
    """`os.environ.get("SMEAR", "1" if world_size > 1 else "0")`: the guard is on a flag whose
    value no log prints and the code cannot compute; the mixer behind it may not run."""
    code = '''
        import os

        import torch


        def smear(x, world_size):
            use_smear = bool(int(os.environ.get("SMEAR", "1" if world_size > 1 else "0")))
            if use_smear:
                g = torch.sigmoid(x.mean())
                x = torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1]], dim=1)
            return x


        print(f"final val_bpb:{eval_val(smear(load_validation_tokens('fineweb_val_000000.bin'), get_world())):.4f}")
        '''
    result = audit(tmp_path, code, logs={"train_steps": "10"}, date="2026-04-28")
    found = codes(result, "PG110")
    assert found and found[0].severity is Severity.WARNING
    assert "`use_smear` is not decidable" in found[0].message


def test_a_counter_updated_in_place_is_not_its_initial_value(tmp_path):
    """`if self.total < 100: return` with `self.total += n` elsewhere: the guard is not
    decided by the `__init__` value, so the mixer after it is not dead code."""
    result = audit(tmp_path, '''
        import math


        class Mixer:
            def __init__(self):
                self.total = 0
                self.full_counts = {}
                self.ctx_counts = {}

            def update(self, ctx, tgt):
                self.total += 1
                self.full_counts[(ctx, tgt)] = self.full_counts.get((ctx, tgt), 0) + 1
                self.ctx_counts[ctx] = self.ctx_counts.get(ctx, 0) + 1

            def nll(self, ctx, tgt, p_model):
                if self.total < 100:
                    return -math.log(p_model)
                full_key = (ctx, tgt)
                p_ng = self.full_counts.get(full_key, 0) / max(self.ctx_counts.get(ctx, 0), 1)
                return -math.log(0.8 * p_model + 0.2 * p_ng)


        def eval_val(model, val_tokens):
            mixer = Mixer()
            loss_sum = 0.0
            for t in range(1, len(val_tokens)):
                ctx, tgt = int(val_tokens[t - 1]), int(val_tokens[t])
                loss_sum += mixer.nll(ctx, tgt, model.prob(ctx, tgt))
                mixer.update(ctx, tgt)
            return loss_sum


        print(f"final val_bpb:{eval_val(model, load_validation_tokens('fineweb_val_000000.bin')):.4f}")
        ''')
    assert codes(result, "PG104", Severity.ERROR), [(f.code, f.severity, f.message) for f in result.findings]


def test_a_sanity_check_that_raises_does_not_gate_what_follows(tmp_path):
    result = audit(tmp_path, '''
        def main(args, sp):
            if int(sp.vocab_size()) != args.vocab_size:
                raise ValueError("vocab mismatch")
            val_tokens = load_validation_tokens("fineweb_val_000000.bin")
            ttt_adapt(model, val_tokens)
            print(f"final val_bpb:{eval_val(model, val_tokens):.4f}")


        def ttt_adapt(model, tokens):
            for i in range(0, len(tokens), 1024):
                model(tokens[i:i + 1024]).backward()
                opt.step()


        def eval_val(model, tokens):
            loss_sum = 0.0
            for i in range(0, len(tokens), 1024):
                loss_sum += model(tokens[i:i + 1024]).item()
            return loss_sum


        main(parse_args(), load_sp())
        ''')
    errors = codes(result, "PG102", Severity.ERROR)
    assert errors and "not decidable" not in errors[0].message


def test_a_line_only_the_flagged_path_prints_shows_it_ran(tmp_path):
    code = '''
        import os


        def ttt_eval(model, val_tokens, epochs):
            loss_sum = 0.0
            for epoch in range(epochs):
                for i in range(0, len(val_tokens), 1024):
                    chunk = val_tokens[i:i + 1024]
                    nll = model(chunk)
                    if epoch == epochs - 1:
                        loss_sum += nll.item()
                    nll.backward()
                    opt.step()
            print(f"lora_ttt_batched: epochs={epochs} done")
            return loss_sum


        def main():
            val_tokens = load_validation_tokens("fineweb_val_000000.bin")
            ttt_on = bool(int(os.environ.get("TTT_ENABLED", "0")))
            if ttt_on:
                val_loss = ttt_eval(model, val_tokens, 3)
                print(f"final val_bpb:{val_loss:.4f}")


        main()
        '''
    quiet = audit(tmp_path / "quiet", code, logs={"seed": "42"})
    assert not [f for f in quiet.findings if f.code.startswith("PG1") and f.severity is Severity.ERROR]
    ran = audit(tmp_path / "ran", code, logs={"seed": "42"}, extra_log_lines=["lora_ttt_batched: epochs=3 done"])
    errors = [f for f in ran.findings if f.code.startswith("PG1") and f.severity is Severity.ERROR]
    assert errors and any("it ran: `lora_ttt_batched: epochs=`" in f.message for f in errors)


def test_log_text_helper_is_the_case_log():
    assert "seed:42" in log_text({}, 42)


# --------------------------------------------------------------------------- state

def test_a_probe_trained_on_its_own_parameters_does_not_update_the_model(tmp_path):
    result = audit(tmp_path, '''
        import torch
        import torch.nn.functional as F
        from torch import nn


        def diagnostics(model, val_tokens):
            with torch.no_grad():
                hidden = model.encode(val_tokens[:-1])
            probe = nn.Linear(hidden.shape[-1], 1024)
            opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
            for _ in range(200):
                loss = F.cross_entropy(probe(hidden[:4096]), val_tokens[1:4097])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.inference_mode():
                return F.cross_entropy(probe(hidden[4096:]), val_tokens[4097:]).item()


        def main():
            val_tokens = load_validation_tokens("fineweb_val_000000.bin")
            print(f"probe_bpb:{diagnostics(model, val_tokens):.4f}")
            print(f"final val_bpb:{eval_val(model, val_tokens):.4f}")


        main()
        ''')
    assert not [f for f in result.findings if f.code in ("PG101", "PG102", "PG103") and f.severity is Severity.ERROR]


def test_a_progress_json_of_losses_is_not_validation_data_in_the_artifact(tmp_path):
    result = audit(tmp_path, '''
        import json


        def eval_val(model, val_tokens):
            loss_sum = 0.0
            for i in range(0, len(val_tokens), 1024):
                batch = val_tokens[i:i + 1024]
                loss_sum += model(batch).item()
                with open("progress.json", "w") as f:
                    f.write(json.dumps({"batch": i, "first": batch[:4].tolist(), "loss": loss_sum}))
            return loss_sum


        print(f"final val_bpb:{eval_val(model, load_validation_tokens('fineweb_val_000000.bin')):.4f}")
        ''')
    assert not codes(result, "PG108")


# --------------------------------------------------------------------------- what runs

ILLEGAL_HELPER = '''
def pre_eval_adapt(model, opt, val_tokens):
    for i in range(0, len(val_tokens), 1024):
        model(val_tokens[i:i + 1024]).backward()
        opt.step()
'''


def test_a_helper_loaded_with_importlib_is_analysed(tmp_path):
    result = audit(tmp_path, '''
        import importlib

        adapt = importlib.import_module("adapt_helper")


        def main():
            val_tokens = load_validation_tokens("fineweb_val_000000.bin")
            adapt.pre_eval_adapt(model, opt, val_tokens)
            print(f"final val_bpb:{eval_val(model, val_tokens):.4f}")


        main()
        ''', files={"adapt_helper.py": ILLEGAL_HELPER}, select=("PG1", "PG202"))
    found = [f for f in result.findings if f.code == "PG102" and f.severity is Severity.ERROR]
    assert found and "adapt_helper.py" in found[0].message, [(f.code, f.message) for f in result.findings]


def test_a_helper_that_does_not_parse_leaves_the_checks_incomplete(tmp_path):
    result = audit(tmp_path, '''
        import broken_helper

        print(f"final val_bpb:{broken_helper.run():.4f}")
        ''', files={"broken_helper.py": "def run(:\n    return 1\n"})
    from pgolf_audit import registry

    # the rules that read the code; PG111 and PG112 read the README, scripts and logs, not the code
    code_rules = {cls.CODE for cls in registry.all_rules() if cls.CODE.startswith("PG1") and cls.KIND == "ast"}
    statuses = {c.code: c for c in result.checks if c.code in code_rules}
    assert statuses and all(c.status is CheckStatus.INCOMPLETE for c in statuses.values())
    assert "broken_helper.py" in next(iter(statuses.values())).reason
    others = {c.code: c.status for c in result.checks if c.code.startswith("PG1") and c.code not in code_rules}
    # no README or shell script (PG111), no data-preparation script (PG112) in the folder
    assert others == {"PG111": CheckStatus.SKIP, "PG112": CheckStatus.SKIP}
    assert result.verdict.value != "PASS"


def test_a_crash_in_one_function_model_leaves_the_checks_incomplete(tmp_path, monkeypatch):
    from pgolf_audit.engine import dataflow

    real_run = dataflow.Simulation.run

    def run(self):
        if self.func.name == "helper":
            raise RuntimeError("model fault")
        return real_run(self)

    monkeypatch.setattr(dataflow.Simulation, "run", run)
    result = audit(tmp_path, '''
        def helper(model, tokens):
            model(tokens).backward()
            opt.step()


        def main():
            val_tokens = load_validation_tokens("fineweb_val_000000.bin")
            print(f"final val_bpb:{eval_val(model, val_tokens):.4f}")
            helper(model, load_train_batch("fineweb_train_000000.bin"))


        main()
        ''')
    assert not codes(result, "PG900")
    gaps = [c for c in result.checks if c.code.startswith("PG1") and c.status is CheckStatus.INCOMPLETE]
    assert gaps and "model fault" in gaps[0].reason


def test_every_name_heuristic_is_in_the_roles_table():
    from pgolf_audit import registry
    from pgolf_audit.engine import patterns

    patterns_here = {n for n in vars(patterns) if n.endswith("_RE") and not n.startswith("_")}
    listed = {r.recogniser for r in patterns.ROLES}
    assert patterns_here == listed
    known = {cls.CODE for cls in registry.all_rules()} if hasattr(registry, "all_rules") else None
    for role in patterns.ROLES:
        assert role.why and role.used_by
        for code in role.used_by:
            assert registry.get(code) is not None and (known is None or code in known)
