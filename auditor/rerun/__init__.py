"""``pgolf-audit rerun``: reproduce a record folder's runs and measure them from outside.

The harness copies the record folder to a scratch folder per seed, launches
``torchrun --standalone --nproc_per_node=N train_gpt.py`` there with the seed and the claimed
configuration in the environment and the network cut off, and measures what the script cannot misreport:
timestamps of its output lines, the files it writes, its exit code, GPU memory. The result is
a ``RerunResult`` that the PG8xx checks read; its JSON form is the ``rerun`` section of the
audit JSON.

Modules (none imports torch; the flash-attention shim runs in the child only):

- ``readme_command``, ``hparams``, ``config``: the claimed configuration (the README's launch
  command per seed, ``--data-root`` and ``--env`` on top) and the comparison of the
  hyperparameters a run printed with the claimed log's.
- ``harness``: one seed: scratch copy, environment, launch, line timestamps, folder watch,
  timeout and process-tree kill, measurements.
- ``processes``: finding and ending every process a run started.
- ``isolation``: network namespace when it works here, else the socket-layer guard.
- ``network_guard``: the guard itself (installed in the child as ``sitecustomize``).
- ``flash_attn_shim``: ``flash_attn_interface`` on top of torch SDPA (``--shim-flash-attn``);
  ``fa3_usage`` reads (statically) which return style the script expects.
- ``hardware``: GPU model and count, CPU; whether it is the 8xH100 SXM target.
- ``calibrate`` and ``speed_reference``: the speed factor against a recorded 8xH100 number.
- ``compare``: reproduced vs claimed, limits, comparability (pure functions over the result).
- ``runner``: all seeds, claims from the static audit, the ``RerunResult``.
- ``result``: ``RerunResult``, the typed result, and its JSON form.
- ``commands``: the click command.
- ``schema``: JSON Schema of the section; ``examples``: synthetic sections for the rule examples.
"""

RERUN_SCHEMA_VERSION = "1"
