"""Loading objects on the host kernel for tests: a private bpffs per call,
programs pinned but never attached, BPF_PROG_TEST_RUN through bpftool."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

PROCESSED = re.compile(r"processed (\d+) insns")


def available() -> str | None:
    """Why host loading is not possible here, or None when it is."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("bpftool", "clang"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


@contextlib.contextmanager
def loaded(obj: Path):
    """Yield (pin dir, verifier insns) with every program of obj loaded."""
    root = Path(tempfile.mkdtemp(prefix="tatara-test-bpffs-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(root)], check=True)
    try:
        done = subprocess.run(["bpftool", "-d", "prog", "loadall", str(obj), f"{root}/p", "pinmaps", f"{root}/m"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        yield root, [int(n) for n in PROCESSED.findall(done.stderr)]
    finally:
        subprocess.run(["umount", str(root)], check=False)
        root.rmdir()


def run(root: Path, program: str, packet: bytes, repeat: int = 1) -> int:
    data = root.parent / f"{root.name}.pkt"
    data.write_bytes(packet)
    try:
        done = subprocess.run(["bpftool", "-j", "prog", "run", "pinned", str(root / "p" / program), "data_in",
                               str(data), "repeat", str(repeat)], capture_output=True, text=True, timeout=60)
    finally:
        data.unlink()
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["retval"]


def map_sum(root: Path, name: str, key: bytes) -> int:
    """The value at key (per-CPU maps: summed over CPUs); 0 when absent."""
    done = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", str(root / "m" / name), "key",
                           *[str(b) for b in key]], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return 0
    entry = json.loads(done.stdout)
    total = 0
    for item in entry.get("values") or [entry]:
        value = item.get("value")
        total += int.from_bytes(bytes(int(b, 16) for b in value), "little") if isinstance(value, list) else int(value)
    return total


def map_value(root: Path, name: str, decl, key: int | str) -> int:
    """The value at a test's key (lpm: the entry with that exact prefix, bits
    past it ignored as the kernel does; per-CPU maps: summed); 0 when absent.
    Read from a dump, as the VM does, not a lookup (an lpm lookup is a
    longest-prefix match)."""
    from tatara_build import mapdata

    done = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(root / "m" / name)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    want = mapdata.key_bytes(decl, key)
    total = 0
    for entry in json.loads(done.stdout):
        raw = bytes(int(b, 16) for b in entry["key"])
        if mapdata.canonical_key(decl, raw) != want:
            continue
        for item in entry.get("values") or [entry]:
            total += mapdata.value_of(decl, bytes(int(b, 16) for b in item["value"]))
    return total


def map_update(root: Path, name: str, decl, key: int | str, value: int) -> None:
    """Write a test's `:maps-before` entry as the VM guest does (bpftool
    writes a per-CPU map's value on every CPU)."""
    from tatara_build import mapdata

    key_bytes, value_bytes = mapdata.key_bytes(decl, key), mapdata.value_bytes(decl, value)
    done = subprocess.run(["bpftool", "map", "update", "pinned", str(root / "m" / name),
                           "key", *[str(b) for b in key_bytes], "value", *[str(b) for b in value_bytes]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
