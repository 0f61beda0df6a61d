"""pgolf-audit: static auditor and rerun harness for Parameter Golf submissions."""
__version__ = "0.1.0"
