"""The configuration a rerun runs: what the record claims, plus what the person asked for.

For each seed the environment is built in this order (later wins):

1. **README**: the variables of the README's launch command for that seed (``readme_command``),
   less those the harness owns (``SEED``, ``DEVICE``, ``CUDA_VISIBLE_DEVICES``, torchrun's own,
   ``PYTHONPATH``). A relative path that exists outside the folder, seen from the original
   folder (``DATA_PATH=../../../data/datasets/x``), is made absolute: the run happens in a
   scratch copy elsewhere. Paths inside the folder stay relative (the copy has them).
2. **--data-root DIR** (a challenge-style data folder with ``datasets/`` and ``tokenizers/``):
   each data variable the script reads (found in its code or set by the README) is pointed
   into DIR. A path with a ``datasets`` or ``tokenizers`` component keeps its part from there
   on (``./data/datasets/fineweb10B_sp1024`` -> ``DIR/datasets/fineweb10B_sp1024``); a
   ``*_DIR``/``*_ROOT`` variable whose path holds neither is DIR itself; a variable without a
   readable default takes the only dataset folder or tokenizer of DIR. A mapped path that does
   not exist stops the rerun before it starts.
3. **--data-path / --tokenizer-path**: DATA_PATH / TOKENIZER_PATH, made absolute.
4. **--env NAME=VALUE**.

Steps 2-4 are the overrides: the review lists them, and the hyperparameter comparison counts
the differences they cause as requested.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .readme_command import Launch, launch_commands, launch_for_seed

# Set by the harness for every run; a README's value for them is not used.
HARNESS_OWNED = frozenset({"SEED", "DEVICE", "CUDA_VISIBLE_DEVICES", "PYTHONPATH", "PYTHONUNBUFFERED", "RANK",
                           "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                           "TORCHELASTIC_RUN_ID", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
                           "NVSHMEM_DISABLE_NVLS"})
# Variables the challenge's scripts use for their data; read by name when the code builds names.
KNOWN_DATA_NAMES = ("DATA_PATH", "DATA_DIR", "DATA_ROOT", "DATASETS_DIR", "DATASET_PATH", "TOKENIZER_PATH",
                    "TOKENIZER_DIR", "TOKENIZER_MODEL")
_ENV_READ = re.compile(r"""(?:environ\.get|getenv|environ\.setdefault)\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]"""
                       r"""(?:\s*,\s*(?:['"]([^'"\n]*)['"])?)?|environ\[\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\]""")
_DATA_NAME = re.compile(r"(^|_)(DATA|DATASET|DATASETS|TOKENIZER)(_|$)")
_FOLDER_NAME = re.compile(r"_(DIR|ROOT)$")


class ConfigError(Exception):
    """The configuration cannot be built from the options given (a usage error)."""


@dataclass
class SeedConfig:
    seed: int
    env: dict[str, str]                   # the child's configuration variables
    sources: dict[str, str]               # name -> "README line N", "--data-root", "--env", ...
    readme: str                           # how the README launch was chosen, or why there is none
    readme_env: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)   # README names the harness owns


@dataclass
class RerunConfig:
    seeds: dict[int, SeedConfig]
    overrides: dict[str, dict[str, Any]]  # name -> {"value", "source", "readme", "changes_claim"}
    script_reads: list[str]               # environment variables the code reads by name
    data_root: str | None
    data_mapping: dict[str, str]          # name -> path, from --data-root
    resolved_paths: dict[str, str]        # README relative path -> absolute

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": {str(s): {"env": c.env, "sources": c.sources, "readme": c.readme, "readme_env": c.readme_env,
                               "dropped": c.dropped} for s, c in self.seeds.items()},
            "overrides": self.overrides,
            "script_reads": self.script_reads,
            "data_root": self.data_root,
            "data_mapping": self.data_mapping,
            "resolved_paths": self.resolved_paths,
        }


def script_variables(source: str | None) -> dict[str, str | None]:
    """Environment variables the code reads by name -> their literal default, if any.

    Also the challenge's data variables when the code builds names (``f.name.upper()``) and
    holds the lower-case field: ``data_path: str = "./data/..."`` gives DATA_PATH with that default.
    """
    found: dict[str, str | None] = {}
    if not source:
        return found
    for m in _ENV_READ.finditer(source):
        name = m.group(1) or m.group(3)
        if found.get(name) is None:
            found[name] = m.group(2)
    for name in KNOWN_DATA_NAMES:
        if name in found:
            continue
        field_default = re.search(rf"\b{name.lower()}\s*(?::\s*[\w\[\]| ]+)?=\s*['\"]([^'\"\n]*)['\"]", source)
        if field_default and ".upper()" in source:
            found[name] = field_default.group(1)
    return found


def is_data_variable(name: str) -> bool:
    return bool(_DATA_NAME.search(name))


def _reroot(name: str, value: str | None, root: Path) -> Path | None:
    """Where ``name`` points under a challenge-style data folder (module docstring, step 2)."""
    if value:
        parts = PurePosixPath(value).parts
        for anchor in ("datasets", "tokenizers"):
            if anchor in parts:
                return root.joinpath(*parts[parts.index(anchor):])
        if _FOLDER_NAME.search(name):
            return root
        return None
    if _FOLDER_NAME.search(name):
        return root
    kind = "tokenizers" if "TOKENIZER" in name else "datasets"
    folder = root / kind
    if not folder.is_dir():
        return None
    entries = sorted(p for p in folder.iterdir() if (p.suffix == ".model" if kind == "tokenizers" else p.is_dir()))
    return entries[0] if len(entries) == 1 else None


def _resolve_relative(value: str, folder: Path) -> str | None:
    """A README path relative to the original folder that exists outside it, made absolute."""
    if not value or value.startswith(("/", "~")) or "://" in value or "/" not in value or "$" in value:
        return None
    candidate = (folder / value).resolve()
    base = folder.resolve()
    glob_part = any(ch in value for ch in "*?[")
    exists = candidate.parent.is_dir() if glob_part else candidate.exists()
    if not exists or candidate == base or base in candidate.parents:
        return None
    return str(candidate)


def build_config(folder: Path, readme_text: str | None, source: str | None, seeds: list[int], *,
                 data_root: Path | None = None, data_path: str | None = None, tokenizer_path: str | None = None,
                 env: dict[str, str] | None = None, entry: str = "train_gpt.py") -> RerunConfig:
    launches: list[Launch] = launch_commands(readme_text, entry) if readme_text else []
    reads = script_variables(source)
    overrides: dict[str, dict[str, str]] = {}
    resolved: dict[str, str] = {}

    per_seed_readme: dict[int, tuple[Launch | None, str]] = {s: launch_for_seed(launches, s) for s in seeds}

    data_mapping: dict[str, str] = {}
    if data_root is not None:
        root = data_root.expanduser().resolve()
        if not root.is_dir():
            raise ConfigError(f"--data-root {data_root}: not a directory")
        if not ((root / "datasets").is_dir() or (root / "tokenizers").is_dir()):
            raise ConfigError(f"--data-root {data_root}: holds neither datasets/ nor tokenizers/ (a challenge-style "
                              f"data folder: datasets/<name>/fineweb_*.bin, tokenizers/<name>.model)")
        readme_names = {n for launch, _ in per_seed_readme.values() if launch for n in launch.env}
        names = sorted({n for n in reads if is_data_variable(n)} | {n for n in readme_names if is_data_variable(n)})
        for name in names:
            readme_values = [launch.env[name] for launch, _ in per_seed_readme.values() if launch and name in launch.env]
            value = readme_values[0] if readme_values else reads.get(name)
            target = _reroot(name, value, root)
            if target is None:
                continue
            if not any(ch in str(target) for ch in "*?[") and not target.exists():
                raise ConfigError(f"--data-root {data_root}: {name} would be {target} (from "
                                  f"{value or 'the only entry of ' + str(root)}), which does not exist")
            data_mapping[name] = str(target)
            overrides[name] = {"value": str(target), "source": "--data-root"}
        if not data_mapping:
            raise ConfigError(f"--data-root {data_root}: the script reads none of the data variables that could be "
                              f"mapped into it ({', '.join(KNOWN_DATA_NAMES)} or a README path with datasets/ or "
                              f"tokenizers/); give --data-path/--tokenizer-path or --env")
    for name, value in (("DATA_PATH", data_path), ("TOKENIZER_PATH", tokenizer_path)):
        if value:
            overrides[name] = {"value": str(Path(value).expanduser().resolve()),
                               "source": f"--{name.lower().replace('_', '-')}"}
    for name, value in (env or {}).items():
        overrides[name] = {"value": value, "source": "--env"}

    seed_configs: dict[int, SeedConfig] = {}
    for seed in seeds:
        launch, how = per_seed_readme[seed]
        child: dict[str, str] = {}
        sources: dict[str, str] = {}
        dropped: dict[str, str] = {}
        readme_env = dict(launch.env) if launch else {}
        for name, value in readme_env.items():
            if name in HARNESS_OWNED:
                dropped[name] = value
                continue
            absolute = _resolve_relative(value, folder)
            if absolute is not None:
                resolved[value] = absolute
                value = absolute
            child[name] = value
            sources[name] = f"README line {launch.line}"
        for name, item in overrides.items():
            child[name] = item["value"]
            sources[name] = item["source"]
        seed_configs[seed] = SeedConfig(seed, child, sources, how, readme_env, dropped)
    for name, item in overrides.items():
        readme_values = {c.readme_env[name] for c in seed_configs.values() if name in c.readme_env}
        item["readme"] = sorted(readme_values)[0] if len(readme_values) == 1 else None
        # An --env value equal to the README's changes nothing: not an override of the claims.
        item["changes_claim"] = item["readme"] is None or item["readme"] != item["value"]
    return RerunConfig(seed_configs, overrides, sorted(reads), str(data_root) if data_root else None, data_mapping,
                       resolved)


def missing_data_paths(config: RerunConfig) -> dict[str, str]:
    """Data variables of the configuration whose absolute path does not exist on this machine
    (a README written on another machine: ``DATA_PATH=/root/code/parameter-golf/data/...``)."""
    missing: dict[str, str] = {}
    for seed_config in config.seeds.values():
        for name, value in seed_config.env.items():
            if not is_data_variable(name) or not os.path.isabs(value) or any(ch in value for ch in "*?["):
                continue
            if not os.path.exists(value):
                missing.setdefault(name, value)
    return missing


def requested_hyperparameters(config: RerunConfig, source: str | None) -> dict[str, str]:
    """Hyperparameter names the overrides set -> the option that set them.

    A variable NAME is printed as ``name`` by nearly every script; the code also says which
    attribute it assigns (``max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS"``).
    """
    out: dict[str, str] = {}
    for name, item in config.overrides.items():
        label = f"{item['source']} {name}" if item["source"] == "--env" else f"{name} from {item['source']}"
        out[name.lower()] = label
        if source:
            for m in re.finditer(rf"\b([A-Za-z_]\w*)\s*(?::\s*\w+\s*)?=[^=\n;]*?\(\s*['\"]{re.escape(name)}['\"]", source):
                out.setdefault(m.group(1).lower(), label)
    return out


def requested_paths(config: RerunConfig) -> list[str]:
    return [item["value"] for item in config.overrides.values() if os.path.isabs(item["value"])]


__all__ = ["ConfigError", "RerunConfig", "SeedConfig", "build_config", "script_variables", "requested_hyperparameters",
           "requested_paths", "missing_data_paths", "HARNESS_OWNED"]
