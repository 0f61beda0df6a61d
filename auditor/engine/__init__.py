"""The AST rule engine: one model of the code, one traversal, every AST rule.

The package imports nothing itself, so a module can import ``engine.api`` (the rule API's
types) without loading the engine. Its modules, in the order the data flows:

- ``api``: ``Site``, ``Hit`` and ``Ruling``, the types a rule's ``check`` works with;
- ``ir``: the compact model of one file, built in a single walk of its libcst module;
- ``program``: name resolution, call graph and reachability over the files;
- ``loader``: ``CodeTarget``/``CodeProgram``, the program model of a folder's code built
  once for all AST rules (the entry script and every local module it runs);
- ``dataflow``, ``tokens``, ``flags``, ``gating``, ``printed``: the facts the rules query
  (see docs/engine_facts.md);
- ``severity``: from a rule's hit to a finding, with its severity decided by the logged runs
  and the ruling's date.

The runner (``pgolf_audit.runner.run``) runs each rule on the ``CodeTarget``; the engine only
turns hits into findings. The submitted code is never executed, imported, evaluated or compiled.
"""
