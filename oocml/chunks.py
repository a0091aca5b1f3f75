"""Row chunks: work on a partition a few megabytes at a time.

Arrays of partition size are handed back to the kernel when freed, so every
temporary faults in fresh pages (3-5x slower than reused memory on the
machines we measured); chunks of a few megabytes are recycled by the allocator.
"""

from __future__ import annotations

from collections.abc import Iterator

CHUNK_BYTES = 8 << 20


def row_chunks(n_rows: int, n_columns: int, itemsize: int = 8) -> Iterator[slice]:
    """Slices covering ``range(n_rows)`` in chunks of about ``CHUNK_BYTES``."""
    step = max(1024, CHUNK_BYTES // max(n_columns * itemsize, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
