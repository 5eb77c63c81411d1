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
    return run_out(root, program, packet, repeat)[0]


def run_out(root: Path, program: str, packet: bytes, repeat: int = 1) -> tuple[int, bytes]:
    """(return value, the packet the program left: test-run's data_out)."""
    data, out = root.parent / f"{root.name}.pkt", root.parent / f"{root.name}.out"
    data.write_bytes(packet)
    try:
        done = subprocess.run(["bpftool", "-j", "prog", "run", "pinned", str(root / "p" / program), "data_in",
                               str(data), "data_out", str(out), "repeat", str(repeat)],
                              capture_output=True, text=True, timeout=60)
        left = out.read_bytes() if out.exists() else b""
    finally:
        data.unlink()
        out.unlink(missing_ok=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["retval"], left


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


def map_value(root: Path, name: str, decl, key, layouts=None):
    """The value at a test's key (lpm: the entry with that exact prefix, bits
    past it ignored as the kernel does; per-CPU maps: summed; structs: the
    bytes, fields summed); 0 (structs: None) when absent. Read from a dump,
    as the VM does, not a lookup (an lpm lookup is a longest-prefix match)."""
    from tatara_build import mapdata

    done = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(root / "m" / name)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    want = mapdata.key_bytes(decl, key, layouts)
    for entry in json.loads(done.stdout):
        raw = bytes(int(b, 16) for b in entry["key"])
        if mapdata.canonical_key(decl, raw) != want:
            continue
        values = [bytes(int(b, 16) for b in item["value"]) for item in entry.get("values") or [entry]]
        return mapdata.total(decl, values, layouts)
    return None if decl.value.startswith("struct:") else 0


def slot_update(root: Path, name: str, decl, index: int, program: str) -> None:
    """Fill a prog-array slot with a pinned program of the object, as the VM guest does."""
    from tatara_build import mapdata

    done = subprocess.run(["bpftool", "map", "update", "pinned", str(root / "m" / name), "key",
                           *[str(b) for b in mapdata.key_bytes(decl, index)], "value", "pinned", str(root / "p" / program)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def map_update(root: Path, name: str, decl, key, value, layouts=None) -> None:
    """Write a test's `:maps-before` entry as the VM guest does (bpftool
    writes a per-CPU map's value on every CPU)."""
    from tatara_build import mapdata

    key_bytes, value_bytes = mapdata.key_bytes(decl, key, layouts), mapdata.value_bytes(decl, value, layouts)
    done = subprocess.run(["bpftool", "map", "update", "pinned", str(root / "m" / name),
                           "key", *[str(b) for b in key_bytes], "value", *[str(b) for b in value_bytes]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- events -----------------------------------------------------------------
# A ring buffer is read as a user-space consumer does (what libbpf's
# ring_buffer__poll does): map the consumer page read-write and the producer
# page plus the data pages (mapped twice by the kernel) read-only, then walk
# the records from the consumer position to the producer position. A perf
# event array is read by `bpftool map event_pipe`, started before the runs.
_BPF_OBJ_GET = 7
_SYS_BPF = 321  # x86_64
_RINGBUF_BUSY, _RINGBUF_DISCARD = 1 << 31, 1 << 30


def _pinned_fd(path: Path) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    name = ctypes.create_string_buffer(str(path).encode())
    attr = (ctypes.c_uint64 * 2)(ctypes.addressof(name), 0)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(_SYS_BPF, _BPF_OBJ_GET, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"BPF_OBJ_GET {path}")
    return fd


def ringbuf_records(root: Path, name: str, size: int) -> list[bytes]:
    """Every record submitted to ring-buf `name` (of `size` bytes) since the
    last read, in order; the consumer position moves past them."""
    import mmap
    import struct

    page = mmap.PAGESIZE
    fd = _pinned_fd(root / "m" / name)
    try:
        consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        data = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
    finally:
        os.close(fd)
    try:
        cons, = struct.unpack_from("<Q", consumer, 0)
        prod, = struct.unpack_from("<Q", data, 0)
        out = []
        while cons < prod:
            at = page + (cons & (size - 1))
            length, _ = struct.unpack_from("<II", data, at)
            assert not length & _RINGBUF_BUSY, "a record is still being written"
            n = length & ~(_RINGBUF_BUSY | _RINGBUF_DISCARD)
            if not length & _RINGBUF_DISCARD:
                out.append(bytes(data[at + 8:at + 8 + n]))
            cons += (n + 8 + 7) // 8 * 8
        struct.pack_into("<Q", consumer, 0, cons)
        return out
    finally:
        consumer.close()
        data.close()


@contextlib.contextmanager
def perf_events(root: Path, name: str):
    """Yield a list that holds, after the block, every record sent to
    perf-event-array `name` while it ran (bpftool map event_pipe installs a
    perf event per CPU into the map and prints each record as JSON)."""
    proc = subprocess.Popen(["bpftool", "-j", "map", "event_pipe", "pinned", str(root / "m" / name)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records: list[bytes] = []
    try:
        _wait_installed(root / "m" / name, proc)
        yield records
    finally:
        import signal

        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    records += perf_records(out)


def perf_records(out: str) -> list[bytes]:
    """The records in `bpftool -j map event_pipe` output (a JSON array, or
    objects, among its other lines). Perf pads each to 4 bytes short of a
    multiple of 8: compare only the record type's size."""
    items = []
    for line in out.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        items += value if isinstance(value, list) else [value]
    return [bytes(int(b) for b in item["data"]) for item in items if isinstance(item, dict) and "data" in item]


def _wait_installed(path: Path, proc, timeout: float = 10.0) -> None:
    """Until the map holds a perf event for every online CPU: bpftool opens
    them one CPU after another, and a record sent on a CPU whose slot is
    still empty is lost (seen on 2 CPUs under load)."""
    import os
    import time

    info = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", str(path)],
                                     capture_output=True, text=True, check=True).stdout)
    wanted = min(os.cpu_count() or 1, info["max_entries"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)], capture_output=True, text=True)
        if done.returncode == 0 and len(json.loads(done.stdout or "[]")) >= wanted:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("bpftool map event_pipe installed no perf event")
