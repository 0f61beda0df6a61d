"""Shared test fixtures.

The real records corpus (data only: READMEs, submission.json files and logs, no code) lies
beside the repository at ../shared/corpus; tests that need it skip cleanly where it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_ROOT = REPO_ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    if not CORPUS_ROOT.is_dir():
        pytest.skip("records corpus not present at ../shared/corpus")
    return CORPUS_ROOT
