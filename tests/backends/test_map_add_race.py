"""`map-add` on a hash map never loses a count to a concurrent insert.

The race (lookup misses, another CPU inserts the key, our BPF_NOEXIST
insert fails with EEXIST) cannot be timed reliably on a real kernel, so the
generated C helper runs on the host against a fake map that plays the other
CPU: its first lookup misses, then the key appears with the other CPU's
count and the insert fails with -EEXIST. The helper must add to that entry.
The aya spelling is held to the same steps textually (it cannot be built
here: no crates)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tatara_build import check, frontend
from tatara_build.backends import render

SOURCE = """
(defbpf-map counts :kind :{kind} :key u32 :value {value} :max-entries 64)
(defbpf-program counter :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps (counts))
(bpf-fn counter (ctx) (map-add counts 7 5) (return :xdp-pass))
"""

HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include <errno.h>
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef unsigned short __u16;
#define __always_inline inline
#define BPF_NOEXIST 1
static struct { int unused; } counts;
static VALUE other_cpu;           /* the entry another CPU inserted */
static int present, lookups, inserts;
static void *bpf_map_lookup_elem(void *map, const void *key)
{
    lookups++;
    if (lookups == 1)
        return 0;               /* our lookup misses ... */
    present = 1;                /* ... the other CPU inserts meanwhile */
    return &other_cpu;
}
static long bpf_map_update_elem(void *map, const void *key, const void *value, __u64 flags)
{
    inserts++;
    if (flags == BPF_NOEXIST && (present || lookups == 1)) {
        present = 1;
        return -EEXIST;         /* the other CPU won */
    }
    other_cpu = *(const VALUE *)value;
    return 0;
}
HELPER
int main(void)
{
    other_cpu = 3;              /* its own count */
    __add_counts(7, 5);
    printf("%llu %d %d\n", (unsigned long long)other_cpu, lookups, inserts);
    return 0;
}
"""


def module(tmp_path, kind: str, value: str):
    path = tmp_path / "race.tlisp"
    path.write_text(SOURCE.format(kind=kind, value=value))
    return check.check(frontend.load(path))


def helper_text(c_source: str) -> str:
    m = re.search(r"^static __always_inline void __add_counts\(.*?^}\n", c_source, re.M | re.S)
    assert m, "no map-add helper in the generated C"
    return m.group(0)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
@pytest.mark.parametrize("kind", ["hash", "lru-hash", "per-cpu-hash"])
@pytest.mark.parametrize("value", ["u64", "u32", "u16"])
def test_c_map_add_adds_to_the_entry_that_won_the_race(tmp_path, kind, value):
    files = render(module(tmp_path, kind, value), "c")
    [c_source] = files.values()
    ctype = {"u64": "__u64", "u32": "__u32", "u16": "__u16"}[value]
    program = HARNESS.replace("VALUE", ctype).replace("HELPER", helper_text(c_source))
    (tmp_path / "race.c").write_text(program)
    exe = tmp_path / "race"
    subprocess.run(["cc", "-O1", "-w", "-o", str(exe), str(tmp_path / "race.c")], check=True)
    total, lookups, inserts = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert (int(total), int(lookups), int(inserts)) == (8, 2, 1), "the delta was lost or the entry overwritten"


def test_aya_map_add_retries_on_eexist(tmp_path):
    main = render(module(tmp_path, "hash", "u64"), "aya")["src/main.rs"]
    m = re.search(r"^fn __add_counts\(.*?^}\n", main, re.M | re.S)
    assert m
    body = m.group(0)
    # lookup; on a miss insert-if-absent; on EEXIST look up again and add atomically
    steps = ["map.get_ptr_mut(key)", "BPF_NOEXIST", "map.insert(key, delta, flags) == Err(-17)",
             "map.get_ptr_mut(key)", "__atomic_add_u64(slot, delta)"]
    at = 0
    for step in steps:
        found = body.find(step, at)
        assert found >= 0, f"{step!r} missing or out of order in:\n{body}"
        at = found + len(step)
