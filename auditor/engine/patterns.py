"""Names and shapes the analyses recognise, in one place.

Submissions follow the challenge's baseline closely, so names carry meaning: ``val_tokens``
holds validation tokens, ``loss_sum += nll`` accumulates the reported score, ``y`` is the
target. Every heuristic that relies on a name lives here, with the reason, so a reviewer
can see what the static rules assume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# File names of the challenge's data shards. A string literal naming them is a data source.
VAL_FILE_RE = re.compile(r"fineweb_val|(?:^|[/_])val(?:id(?:ation)?)?(?:_\d+|_\*|\*)?\.bin|fineweb10B_val")
TRAIN_FILE_RE = re.compile(r"fineweb_train|(?:^|[/_])train(?:_\d+|_\*|\*)?\.bin")

# Variables that hold validation or training data by the baseline's naming convention; used
# only where no assignment in the code says otherwise (parameters, attributes of `args`).
VAL_NAME_RE = re.compile(
    r"^(?:val|valid|validation|eval)_(?:tokens?|files?|data|np|ids|seq|stream|pattern|path|arr|buf|docs?|set|shards?"
    r"|tensor|input_ids|targets)$"
)
TRAIN_NAME_RE = re.compile(r"^train_(?:tokens?|files?|data|np|ids|seq|stream|pattern|path|shards?|batch(?:es)?|x|y|inputs?)$")

# Accumulators of the reported score: `loss_sum += nll.sum()`, `nll_list.append(nll)`.
ACCUM_RE = re.compile(r"(?:^|_)(?:loss|losses|nll|nlls|bits|logp|logprob|log_prob|logprobs|xent|ce|neg_log)(?:_|$|s$)|"
                      r"^(?:loss|nll|bits)|(?:loss|nll)_?(?:sum|total|acc)$")
# ... but not training-side statistics or byte/token counters.
NOT_ACCUM_RE = re.compile(r"train|ttt|adapt|grad|byte|count|tok(?:en)?s?_|n_tok|running|smooth|ema|warm|step|epoch_loss|aux|reg")

# Names the reported metric flows into.
REPORTED_RE = re.compile(r"bpb|val_loss|val_nll|final_loss|score")

# Calls whose result says nothing about the data content (sizes and shapes). Not `str` or
# `format`: `str(Path(data_path) / "fineweb_val_*.bin")` is the name of the validation files.
SIZE_CALLS = frozenset({"len", "numel", "size", "dim", "nelement", "shape", "ndim", "item_size", "element_size",
                        "range", "isinstance", "hasattr", "getattr", "print", "log0", "repr", "id", "type"})
SIZE_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "grad_fn"})

# Methods never resolved to a same-named method of a local class: they are (almost always)
# torch/numpy/stdlib methods on objects the analysis does not type.
UNRESOLVED_METHODS = frozenset({
    "step", "zero_grad", "forward", "backward", "train", "eval", "to", "cuda", "cpu", "float", "half", "bfloat16",
    "state_dict", "load_state_dict", "parameters", "named_parameters", "modules", "named_modules", "children",
    "item", "size", "view", "reshape", "sum", "mean", "append", "extend", "get", "items", "keys", "values", "copy",
    "clone", "detach", "numpy", "tolist", "apply", "register_buffer", "register_forward_hook", "add_", "mul_",
    "__init__", "__call__", "reset_parameters", "encode", "decode", "close", "open", "read", "write", "join",
    "split", "format", "run", "start", "pop", "setdefault", "sort", "index",
})

# An "update" of a cache: count tables written by increments.
COUNT_TABLE_RE = re.compile(r"count|cnt|table|freq|hist|cache|ngram|tally|bigram|trigram|hash_?tab", re.I)
# Model distributions, indexed by the target legitimately (that is how NLL is computed).
DISTRIBUTION_RE = re.compile(r"logit|prob|logp|log_p|lp$|^lp|softmax|dist|nll|loss|score|^p$|^q$|^p_|_p$|pred|out",
                             re.I)
# Byte accounting for the bpb denominator reads properties of the target token by design.
BYTE_RE = re.compile(r"byte|bytes|nbytes|n_bytes|tb$|^tb|denom|token_len|char|utf|leading_space|base_len", re.I)
# Variables that act as a gate or a mixing weight.
GATE_RE = re.compile(r"gate|weight|alpha|lam|lambda|mix|coef|beta|boost|tau|conf|trust|^use_|within|word|expert|"
                     r"blend|w_ng|ng_w|bonus", re.I)
# Target tokens by name.
TARGET_NAME_RE = re.compile(r"^(?:y|ys|yb|y_b|y_batch|y_true|tgt|tgts|tgt_ids|target|targets|target_ids|target_id|"
                            r"next_tok|next_token|next_tokens|next_ids|true_tok|true_token|label|labels|gold)$")
# Token streams indexed by position.
TOKEN_STREAM_RE = re.compile(r"tok|ids|seq|stream|val_np|data|arr|chunk|window|text", re.I)
# The whole name is a token stream: a read of it at one position alone (`val_np[jv]`) is a
# token; a longer name that only contains a stream word (`order_data[oi]`, `alpha_per_tok[m]`)
# holds something else unless reads at earlier positions show it is a stream.
TOKEN_STREAM_NAME_RE = re.compile(
    r"^(?:\w+_)?(?:tokens?|toks|ids|input_ids|token_ids|seq|seqs|stream|np|arr|buf)$|^(?:x|xs|inp|inputs?)$", re.I)

# Calls that quantize or serialize the artifact (the end of training).
QUANT_CALL_RE = re.compile(r"quantiz|gptq|awq|serializ|(?<!de)compress|pack_?model|save_?artifact|export_?model|"
                           r"^save_(?:int\d|model|quant|packed|weights)", re.I)
# Calls that read data.
READ_CALL_RE = re.compile(r"load|read|fromfile|memmap|next_batch|shard|loader|open|fetch|stream", re.I)
# Calls that generate synthetic tokens (legal calibration and warmup data).
GENERATE_RE = re.compile(r"generat|autoregress|sample_tokens|self_gen|synth|random_tokens|randint|randperm", re.I)
# Calibration statistics for quantization.
CALIBRATION_RE = re.compile(r"hessian|calib|gptq|awq|act_?stat|act_?scale|activation_stat|collect_stats", re.I)
# Warmup and compile passes.
WARMUP_RE = re.compile(r"warm|compile|prime|dry_?run", re.I)
# Document boundaries.
BOS_RE = re.compile(r"bos|doc_?start|doc_?mask|doc_?id|document|boundary|boundaries|is_start|first_tok|seg(?:ment)?_?id|"
                    r"reset_mask|cu_seqlens", re.I)
# Token ids rather than hidden states.
TOKEN_IDS_RE = re.compile(r"ids|idx|token|tok|target|label|input_seq|^x_?int", re.I)
# Byte-level models that get mixed with the token model.
BYTE_MODEL_RE = re.compile(r"ppm|byte_?model|byte_?prob|byte_?ctx|escape|kt_|byte_?mix|byte_?lm", re.I)

# Network and hub access.
NETWORK_PREFIXES = (
    "urllib.request", "urllib.urlopen", "urllib2", "requests", "httpx", "http.client", "aiohttp", "socket",
    "huggingface_hub", "datasets.load_dataset", "torch.hub", "wget", "gdown", "boto3", "ftplib", "paramiko",
    "transformers.AutoModel", "transformers.AutoTokenizer", "kagglehub",
)
# Calls under a network prefix that read only this machine's own identity (a run manifest's
# host name): no data comes from outside.
LOCAL_NETWORK_CALLS = frozenset({"socket.gethostname"})
NETWORK_COMMAND_RE = re.compile(r"\b(?:curl|wget|git\s+clone|pip\s+install|huggingface-cli|hf\s+download|aws\s+s3|gsutil)\b")
NETWORK_MODULES = ("urllib", "requests", "httpx", "http", "aiohttp", "socket", "huggingface_hub", "wget", "gdown",
                   "boto3", "ftplib", "paramiko", "kagglehub")



def last_part(dotted: str | None) -> str:
    return dotted.rsplit(".", 1)[-1] if dotted else ""


# --------------------------------------------------------------------------- the roles table
# Every name-based heuristic above, with the role it recognises, why a name is trusted there,
# and the rules whose findings depend on it. Facts made by data flow instead of names (the
# artifact read back, the loss target, the scoring pass, positions vs token values) are listed
# in docs/engine_facts.md with the function that makes each.


@dataclass(frozen=True)
class Role:
    role: str
    recogniser: str        # the pattern's name in this module
    why: str
    used_by: tuple[str, ...]


_ORDER = ("PG101", "PG102", "PG103", "PG107")
ROLES: tuple[Role, ...] = (
    Role("validation shard file", "VAL_FILE_RE", "the challenge's shard names are fixed (fineweb_val_*.bin)",
         _ORDER + ("PG108",)),
    Role("training shard file", "TRAIN_FILE_RE", "the challenge's shard names are fixed (fineweb_train_*.bin)",
         ("PG108", "PG109")),
    Role("validation data variable", "VAL_NAME_RE",
         "only where no assignment or caller says otherwise (a parameter no caller fills); findings that rest on "
         "it alone are marked", _ORDER + ("PG108",)),
    Role("training data variable", "TRAIN_NAME_RE", "as for validation data variables", ("PG108", "PG109")),
    Role("reported loss accumulator", "ACCUM_RE", "`loss_sum += nll` is the baseline's scoring idiom; a name "
         "that grows by a loss is a score", _ORDER),
    Role("not a reported accumulator", "NOT_ACCUM_RE", "training-side and byte/token counters grow the same way",
         _ORDER),
    Role("reported metric", "REPORTED_RE", "what the final log line prints", _ORDER),
    Role("count table", "COUNT_TABLE_RE", "a table incremented somewhere is a count table whatever its name; the "
         "name only adds tables read but never written here", ("PG104", "PG105", "PG106")),
    Role("model distribution", "DISTRIBUTION_RE", "indexing the model's own distribution by the target is how NLL "
         "is computed, never a leak", ("PG104", "PG105")),
    Role("byte accounting", "BYTE_RE", "the bpb denominator reads properties of the target by design",
         ("PG104", "PG105")),
    Role("gate or mixing weight", "GATE_RE", "a value read at the target that feeds a gate decides the mixture",
         ("PG105",)),
    Role("target variable", "TARGET_NAME_RE", "besides the loss's target argument (the primary recogniser), names "
         "the baseline gives the next token", ("PG104", "PG105")),
    Role("token stream", "TOKEN_STREAM_RE", "positional reads of a token stream at the scored position",
         ("PG104", "PG105")),
    Role("token stream by its whole name", "TOKEN_STREAM_NAME_RE", "a read at one position only, with no context "
         "read beside it, is the target only in a container named as a stream", ("PG104", "PG105")),
    Role("quantization or serialization", "QUANT_CALL_RE", "where training ends; the evaluation starts where the "
         "artifact is read back (torch.load), names only decide when nothing is read back", ("PG102", "PG109")),
    Role("data read", "READ_CALL_RE", "calls that bring data in", ("PG108", "PG109")),
    Role("generated tokens", "GENERATE_RE", "self-generated calibration and warmup data is legal (#1019)",
         ("PG108",)),
    Role("calibration statistics", "CALIBRATION_RE", "GPTQ/AWQ statistics collected from data", ("PG108",)),
    Role("warmup or compile pass", "WARMUP_RE", "warmups on validation tokens are a disputed ruling (#1530)",
         ("PG108",)),
    Role("document boundary mask", "BOS_RE", "the masks the R-SMEAR-BOS fix uses", ("PG110",)),
    Role("token ids", "TOKEN_IDS_RE", "a shift of token ids is not a hidden-state mix", ("PG110",)),
    Role("byte-level model", "BYTE_MODEL_RE", "PPM and byte mixers (R-PPM-BYTE-MIXTURE-C2)", ("PG106",)),
    Role("network command", "NETWORK_COMMAND_RE", "shell downloads", ("PG109",)),
)
