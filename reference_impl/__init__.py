"""The challenge's measuring stick, written cleanly (install extra: ``pip install 'pgolf-audit[reference]'``).

- ``shards``: the token shard format (read, write, validate).
- ``metric``: val_loss and val_bpb from summed NLL, tokens and bytes (no torch, no numpy).
- ``byte_lut``: the per-token byte table of a sentencepiece model.
- ``byte_accounting``: exact bytes by decoding documents; disagreements named by piece and bug family.
- ``derive_bpb_ratios``: the reference val_bpb/val_loss ratio per tokenizer, from the records corpus.
- ``model``: a small GPT of the baseline's shape.
- ``evaluator``: plain and sliding-window evaluation, multi-process with a deterministic reduction.
- ``ttt``: a legal score-first test-time-training driver and a checker of its trace.
- ``quantize``: the int8 + zstandard artifact.
- ``trainer``: the torchrun-ready reference trainer, logging in the challenge's dialect.
- ``bundle``: the self-contained record script ``train_gpt.py``, bundled from the modules above.
- ``dataset``: a generated, download-free corpus and tokenizer; ``demo``: a complete record folder.
- ``commands``: the ``bpb`` and ``demo`` click commands.

Importing this package imports nothing heavy; the modules that need torch, numpy or
sentencepiece import them themselves.
"""
