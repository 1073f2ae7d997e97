"""Where the shared test corpus is, and skip marks for tests that need it.

The corpus (real LIF, CZI, ND2, OME-TIFF... files with Bio-Formats' own answer for each, and
``tools/make_lif.py``) lives in ``../shared`` beside the checkout; ``BFDASK_SHARED`` points
elsewhere. Without it, the tests that need it skip (saying so) and the others still run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BFDASK_SHARED") or ROOT.parent / "shared")
DATA = SHARED / "data"
MAKE_LIF = SHARED / "tools" / "make_lif.py"

requires_data = pytest.mark.skipif(
    not (DATA / "MANIFEST.tsv").is_file(),
    reason=f"shared test corpus not found at {DATA} (set BFDASK_SHARED)",
)
requires_make_lif = pytest.mark.skipif(
    not MAKE_LIF.is_file(), reason=f"{MAKE_LIF} not found (set BFDASK_SHARED)"
)
