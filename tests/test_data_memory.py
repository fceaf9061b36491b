"""release_freed_memory: what the allocators kept after data preparation goes back to the OS."""

from __future__ import annotations

import gc
import sys

import pyarrow as pa
import pytest

from adapters.cost import proc_status_bytes
from adapters.data.memory import release_freed_memory


def _anonymous_bytes() -> int:
    return proc_status_bytes("RssAnon")["RssAnon"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_freed_arrow_text_is_returned_to_the_os():
    # Rendered text arrives as many Arrow chunks (4,096 rows each); freed, pyarrow's pool keeps the pages.
    before = _anonymous_bytes()
    chunks = [pa.array(["applicant " * 20 + str(row) for row in range(4096)]) for _ in range(100)]
    allocated = _anonymous_bytes() - before
    assert allocated > 60 * 2**20
    del chunks
    gc.collect()
    kept = _anonymous_bytes() - before
    release_freed_memory()
    returned = kept - (_anonymous_bytes() - before)
    assert returned > 0.5 * allocated, (allocated, kept, returned)


def test_release_leaves_live_data_intact():
    live = pa.array([f"row {index}" for index in range(10_000)])
    release_freed_memory()
    assert live[9_999].as_py() == "row 9999" and len(live) == 10_000
