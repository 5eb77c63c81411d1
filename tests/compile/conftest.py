"""Fixtures for the build stage's tests: an isolated cache, a small
hand-written BPF C program (independent of the C backend), and tool probes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOSTD_CRATE = REPO / "tests" / "fixtures" / "nostd-xdp"

PASS_C = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} hits SEC(".maps");

SEC("xdp")
int pass_all(struct xdp_md *ctx)
{
    __u32 key = 0;
    __u64 *count = bpf_map_lookup_elem(&hits, &key);
    if (count)
        __sync_fetch_and_add(count, 1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own $XDG_CACHE_HOME."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "tatara-build"


@pytest.fixture
def c_sources(tmp_path) -> Path:
    """A directory as the C backend would write it: <stem>.bpf.c, stem "pass"."""
    src = tmp_path / "generated-c"
    src.mkdir()
    (src / "pass.bpf.c").write_text(PASS_C)
    return src


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


needs_clang = pytest.mark.skipif(not have("clang") or not Path("/usr/include/bpf/bpf_helpers.h").exists(),
                                 reason="clang and libbpf-dev are needed")


def has_backend_emit() -> bool:
    try:
        from tatara_build.backends import emit  # noqa: F401
        from tatara_build.check import check  # noqa: F401
    except ImportError:
        return False
    return True


def is_root() -> bool:
    return os.geteuid() == 0
