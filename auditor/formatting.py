"""Number formatting shared by the rules' messages and the renderers, so one value reads the
same everywhere it is printed."""

from __future__ import annotations


def bpb_text(value: float, min_decimals: int = 0) -> str:
    """A val_bpb at up to 8 decimals without trailing zeros, padded to ``min_decimals``
    (messages use 0: ``1.12``; tables use 4: ``1.1200``)."""
    text = f"{value:.8f}".rstrip("0")
    whole, _, frac = text.partition(".")
    frac += "0" * max(0, min_decimals - len(frac))
    return f"{whole}.{frac}" if frac else whole
