"""`hf_iis.utils.memory.release_freed_memory`: gives freed heap pages back on glibc, a no-op elsewhere."""

from __future__ import annotations

import platform

from hf_iis.utils.memory import release_freed_memory


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_freed_heap_goes_back_to_the_system():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert release_freed_memory() in (False, True)  # elsewhere it only has to be callable
        return
    # 40 MB in blocks below the mmap threshold, each followed by a small block that stays: once the big ones are
    # freed, the heap holds 40 MB of free holes that it cannot shrink past, which only a trim gives back
    blocks, keep = [], []
    for _ in range(700):
        blocks.append(bytearray(60_000))
        keep.append(bytearray(1_000))  # above pymalloc's 512 bytes: from the same heap
    before = _resident_mb()
    del blocks
    after_free = _resident_mb()
    assert release_freed_memory() is True
    after_trim = _resident_mb()
    assert after_free > before - 10, (before, after_free)  # freeing alone gave (almost) nothing back
    assert after_trim < after_free - 20, (before, after_free, after_trim)
    assert len(keep) == 700
