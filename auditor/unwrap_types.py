"""What the unwrapper produces and its limits: the wrapper layers, the unwrapped code, and the
error that makes code unanalysable. No dependency on the rest of the unwrapper."""

from __future__ import annotations

import lzma
from dataclasses import dataclass

import libcst as cst

DEFAULT_MAX_OUTPUT_BYTES = 16 << 20
DEFAULT_MAX_DEPTH = 8
DEFAULT_MAX_FILE_BYTES = 32 << 20

# liblzma allocates the dictionary that a stream header or a raw filter chain asks for.
# Presets top out at 64 MiB; anything far beyond that is not a real wrapper.
LZMA_MEMORY_LIMIT = 256 << 20


# ---------------------------------------------------------------------------------------
# Public result types


@dataclass(frozen=True)
class LayerImport:
    """One import statement of a wrapper layer (imports run, so local ones count as code)."""

    module: str                # dotted module as written, without the leading dots
    names: tuple[str, ...]     # imported names for ``from X import a, b``; empty for ``import X``
    level: int                 # number of leading dots of a relative import
    line: int


@dataclass(frozen=True)
class WrapperLayer:
    file: str                  # file holding this layer, relative to the record folder
    line: int                  # 1-based line of the exec call in that layer's text
    codecs: tuple[str, ...]    # decode chain in application order, e.g. ("base85", "lzma-raw-lzma2")
    description: str           # human words: "lzma (raw LZMA2) + base85"
    output_bytes: int          # size of what this layer decodes to
    sibling: str | None = None            # file this layer reads and runs (exec stubs)
    imports: tuple[LayerImport, ...] = ()  # the layer's own import statements


@dataclass
class UnwrappedCode:
    entry: str                  # submitted entry file name, e.g. "train_gpt.py"
    entry_bytes: int            # raw bytes of the entry file on disk
    origin: str                 # file whose decoded text is the final source
    source: str                 # final readable source
    layers: list[WrapperLayer]  # empty when the entry is plain source
    module: cst.Module | None   # parsed final source when the unwrapper had to parse it
    runtime_file: str = ""      # what ``__file__`` names while the final source runs

    def __post_init__(self) -> None:
        if not self.runtime_file:
            self.runtime_file = self.origin

    @property
    def wrapped(self) -> bool:
        return bool(self.layers)

    def wrapper_name(self) -> str | None:
        if not self.layers:
            return None
        first = self.layers[0]
        if first.sibling is not None and not first.codecs:
            name = f"exec stub in {first.file} running {first.sibling}"
        else:
            name = f"{first.description} self-extracting wrapper in {first.file}"
        if len(self.layers) > 1:
            name += f" ({len(self.layers)} layers: " + "; ".join(layer.description for layer in self.layers) + ")"
        return name


class UnwrapError(Exception):
    """A wrapper could not be interpreted. ``line`` is a line of the layer's text (``layer``
    counts decoded layers: 0 is the file as stored)."""

    def __init__(self, message: str, file: str, line: int | None = None, layer: int = 0):
        self.message = message
        self.file = file
        self.line = line
        self.layer = layer
        where = file if layer == 0 else f"{file} (decoded layer {layer})"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")
