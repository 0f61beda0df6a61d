"""The rules: one module per rule, named after its code (``pg201_artifact_over_limit.py``).

Families: PG1xx evaluation legality (AST), PG2xx artifact, PG3xx time, PG4xx consistency,
PG5xx statistics, PG6xx packaging, PG7xx metric, PG8xx rerun, PG9xx the auditor itself.
Track limits and policies are data under ``tracks/``.
"""
