"""The reproduction command of a record's README: the environment each seed was run with.

READMEs give the claimed configuration as shell, for example::

    SEED=42 QK_GAIN_INIT=5.25 TTT_ENABLED=1 \\
      torchrun --standalone --nproc_per_node=8 train_gpt.py

    export DATA_PATH=../../../data/datasets/demo_sp384
    for SEED in 1337 42 2025; do
      SEED=$SEED RUN_ID=train_seed$SEED VOCAB_SIZE=384 python train_gpt.py
    done

``launch_commands(text)`` reads every fenced code block (and indented or plain lines holding a
launch) with a small shell reader: backslash continuations, ``;``/``&&``/``|`` separated
statements, ``export NAME=VALUE``, plain ``NAME=VALUE`` statements (shell variables: used for
``$NAME`` expansion, not passed to the child, as in a shell), ``for NAME in A B C; do ... done``
loops, and ``NAME=VALUE ... env NAME=VALUE`` prefixes of a launch. A launch is a statement whose
command is ``torchrun``, ``python``/``python3`` (also behind ``env``, ``nohup``, ``time``,
``uv run``) and that names the entry script. Each launch is expanded over its loop values into
``Launch`` objects holding the concrete environment (``$SEED``, ``${SEED}`` and other variables
substituted) and the seed it runs, if the command says.

Nothing here runs a shell: unknown constructs are skipped, and a value whose variables cannot be
expanded keeps the ``$NAME`` text (the review shows it).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_FENCE = re.compile(r"^\s*(```|~~~)")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_LAUNCHERS = re.compile(r"^(torchrun|python[0-9.]*)$")
# Words that may stand before the launcher without changing what runs.
_PREFIX_WORDS = {"env", "nohup", "time", "exec", "command", "do", "then", "else", "{", "("}
_SEPARATORS = {";", "&&", "||", "|", "&", ";;"}
MAX_LOOP_VALUES = 64
MAX_LAUNCHES = 256  # nested loops multiply; a README never needs more concrete launches than this


@dataclass
class Launch:
    """One concrete launch of the entry script, as the README writes it."""

    line: int                        # 1-based line of the README where the statement starts
    text: str                        # the statement, continuations joined
    env: dict[str, str]              # exported and prefixed variables, expanded
    seed: int | None                 # SEED of this launch (its env or its loop), if known
    nproc: int | None                # --nproc_per_node, if given
    unexpanded: list[str] = field(default_factory=list)   # names whose value kept a $VARIABLE


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Joins backslash-continued lines; keeps the number of the first physical line."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in lines:
        stripped = text.rstrip()
        continued = stripped.endswith("\\")
        body = stripped[:-1] if continued else stripped
        if pending is None:
            pending = (number, body)
        else:
            pending = (pending[0], pending[1] + " " + body.strip())
        if not continued:
            out.append(pending)
            pending = None
    if pending is not None:
        out.append(pending)
    return out


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Fenced code blocks, then every other line that looks like a launch (inline commands)."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] | None = None
    loose: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
            continue
        if current is not None:
            current.append((number, line))
        elif "torchrun" in line or re.search(r"\bpython[0-9.]*\s", line):
            # `SEED=1 torchrun ... train_gpt.py` in prose or an indented block: take what is
            # inside backticks when there are any, else the line from its first assignment.
            ticked = re.findall(r"`([^`]+)`", line)
            for snippet in ticked or [line.strip().lstrip("$> ")]:
                loose.append((number, snippet))
    if current is not None:
        blocks.append(current)
    return blocks + [[item] for item in loose]


def _expand(value: str, variables: dict[str, str]) -> tuple[str, bool]:
    """``$NAME``/``${NAME}`` substituted from ``variables``; False when one was unknown."""
    complete = True

    def replace(m: re.Match) -> str:
        nonlocal complete
        name = m.group(1) or m.group(2)
        if name in variables:
            return variables[name]
        complete = False
        return m.group(0)

    return _VARIABLE.sub(replace, value), complete


def _statements(line: str) -> list[list[str]]:
    """Shell words of each statement of one logical line (quotes removed, comments dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    statements: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in _SEPARATORS:
                statements.append([])
            else:
                statements[-1].append(token)
    except ValueError:  # unbalanced quotes: not a command we can read
        return []
    return [s for s in statements if s]


def _nproc(words: list[str]) -> int | None:
    for i, word in enumerate(words):
        for flag in ("--nproc_per_node", "--nproc-per-node"):
            if word.startswith(flag + "="):
                value = word.split("=", 1)[1]
            elif word == flag and i + 1 < len(words):
                value = words[i + 1]
            else:
                continue
            return int(value) if value.isdigit() else None
    return None


def _is_launch(words: list[str], entry: str) -> bool:
    if not words:
        return False
    first = PurePosixPath(words[0]).name
    names_entry = any(PurePosixPath(w).name == entry for w in words)
    if first == "uv" and len(words) > 1 and words[1] == "run":
        return names_entry
    return bool(_LAUNCHERS.match(first)) and names_entry


def launch_commands(text: str, entry: str = "train_gpt.py") -> list[Launch]:
    """Every launch of ``entry`` in the README, expanded over its loops, in README order."""
    launches: list[Launch] = []
    for block in _blocks(text):
        shell_vars: dict[str, str] = {}
        exported: dict[str, str] = {}
        loops: list[tuple[str, list[str]]] = []
        for number, line in _logical_lines(block):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            for words in _statements(line):
                while words and words[0] in _PREFIX_WORDS - {"env"}:
                    words = words[1:]
                if not words:
                    continue
                if words[0] == "for" and len(words) >= 3 and words[2] == "in":
                    values = [w for w in words[3:] if w not in ("do",)][:MAX_LOOP_VALUES]
                    loops.append((words[1], values))
                    continue
                if words[0] == "done":
                    if loops:
                        loops.pop()
                    continue
                if words[0] == "export":
                    for word in words[1:]:
                        m = _ASSIGNMENT.match(word)
                        if m:
                            exported[m.group(1)] = m.group(2)
                        elif word in shell_vars:
                            exported[word] = shell_vars[word]
                    continue
                prefix: dict[str, str] = {}
                rest = list(words)
                while rest:
                    m = _ASSIGNMENT.match(rest[0])
                    if m:
                        prefix[m.group(1)] = m.group(2)
                        rest = rest[1:]
                    elif rest[0] in _PREFIX_WORDS:
                        rest = rest[1:]
                    else:
                        break
                if not rest:  # NAME=VALUE statements: shell variables, not the child's environment
                    shell_vars.update(prefix)
                    continue
                if not _is_launch(rest, entry):
                    continue
                launches.extend(_expand_launch(number, line, {**exported, **prefix}, shell_vars, loops, rest))
    return launches


def _expand_launch(number: int, line: str, raw_env: dict[str, str], shell_vars: dict[str, str],
                   loops: list[tuple[str, list[str]]], words: list[str]) -> list[Launch]:
    combos: list[dict[str, str]] = [{}]
    for name, values in loops:
        combos = ([{**c, name: v} for c in combos for v in values] or combos)[:MAX_LAUNCHES]
    out = []
    for combo in combos:
        variables = {**shell_vars, **combo}
        env: dict[str, str] = {}
        unexpanded = []
        for name, value in raw_env.items():
            env[name], complete = _expand(value, {**variables, **env})
            if not complete:
                unexpanded.append(name)
        seed_text = env.get("SEED") or combo.get("SEED")
        seed = int(seed_text) if seed_text is not None and seed_text.lstrip("-").isdigit() else None
        out.append(Launch(number, line.strip(), env, seed, _nproc(words), unexpanded))
    return out


def launch_for_seed(launches: list[Launch], seed: int, target_nproc: int = 8) -> tuple[Launch | None, str]:
    """The README launch that ran ``seed``, and how it was chosen.

    The launch whose SEED is this seed; else, when no launch names it, one of the others (the
    harness sets SEED itself): the last one on the target's process count, else the last one.
    """
    if not launches:
        return None, "the README has no launch command of the script"
    exact = [launch for launch in launches if launch.seed == seed]
    if exact:
        return exact[-1], f"README line {exact[-1].line} (SEED={seed})"
    on_target = [launch for launch in launches if launch.nproc == target_nproc]
    chosen = (on_target or launches)[-1]
    named = f" (it sets SEED={chosen.seed}; the harness sets SEED={seed})" if chosen.seed is not None else ""
    return chosen, f"README line {chosen.line}{named}"


__all__ = ["Launch", "launch_commands", "launch_for_seed"]
