"""Hostile and careless command lines against the tatara-build CLI, each in a
sandbox of its own (own cwd, own $XDG_CACHE_HOME): prints one row per case
with the exit code, whether a traceback showed, and whether what must
survive survived. The issue-12 before/after table comes from this script.

    .venv/bin/python bench/hostile.py            # all cases (VM ones too)
    .venv/bin/python bench/hostile.py --no-vm    # without QEMU boots
    .venv/bin/python bench/hostile.py o-dot o-empty   # by name

Kernels are hard-linked from ~/.cache/tatara-build/kernels (or
$TATARA_KERNEL_SEED) when present, else each VM case downloads its own.
Every tampering writes a new file and renames it, so no link is edited.
Runs as root where it can (mknod, mounts); a case it cannot set up is
reported as `skip`.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "drop-syn.tlisp"
OTHER = REPO / "examples" / "port-counter.tlisp"
SEED = Path(os.environ.get("TATARA_KERNEL_SEED") or Path.home() / ".cache/tatara-build/kernels")
CLI = [sys.executable, "-m", "tatara_build"]
UNDER_TEST = Path(os.environ.get("TATARA_UNDER_TEST") or REPO)  # a checkout to run instead of this one


@dataclass
class Result:
    code: int | str
    traceback: bool
    verdict: str  # "ok" when what must hold held, else what went wrong
    stdout: str = ""
    stderr: str = ""


class Sandbox:
    def __init__(self, root: Path):
        self.root = root
        self.cwd = root / "work"
        self.cwd.mkdir(parents=True)
        self.cache = root / "cache"
        self.env = dict(os.environ, XDG_CACHE_HOME=str(self.cache), PYTHONPATH=str(UNDER_TEST))
        self.env.pop("TATARA_VM_ACCEL", None)
        self.tmp = root / "tmp"  # the CLI's $TMPDIR: what it leaves there is its own
        self.tmp.mkdir()
        self.env["TMPDIR"] = str(self.tmp)

    def source(self, name: str = "drop-syn.tlisp", text: str | None = None, where: Path | None = None) -> Path:
        path = (where or self.cwd) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(EXAMPLE.read_text() if text is None else text, newline="")
        return path

    def kernels(self) -> None:
        dest = self.cache / "tatara-build" / "kernels"
        if SEED.is_dir() and not dest.exists():
            shutil.copytree(SEED, dest, copy_function=os.link)

    def run(self, *args: str, env: dict | None = None, timeout: float = 300, stdin=subprocess.DEVNULL) -> Result:
        """The CLI in a session of its own: on timeout the whole session is killed."""
        proc = subprocess.Popen([*CLI, *args], cwd=self.cwd, env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=stdin, errors="replace",
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid)
            stdout, stderr = proc.communicate()
            return Result("hang", False, f"no answer within {timeout:.0f} s", stdout, stderr)
        kill_session(proc.pid)  # whatever it left running
        return Result(proc.returncode, "Traceback" in stderr + stdout, "ok", stdout, stderr)


def kill_session(sid: int) -> list[str]:
    """Kill every process still in session `sid`; returns what was found."""
    out = subprocess.run(["ps", "-s", str(sid), "-o", "pid=,args="], capture_output=True, text=True).stdout
    found = [line.strip() for line in out.splitlines() if line.strip()]
    for line in found:
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    return found


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_symlink() or not path.exists():
        return f"link:{os.readlink(path)}" if path.is_symlink() else "absent"
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    for p in sorted(path.rglob("*")):
        digest.update(str(p.relative_to(path)).encode())
        if p.is_file() and not p.is_symlink():
            digest.update(p.read_bytes())
    return digest.hexdigest()


def victim_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "precious.txt").write_text("the user's own data\n")
    (path / ".git").mkdir(exist_ok=True)
    (path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return path


def expect(result: Result, codes: tuple[int, ...], **intact: tuple[Path, str]) -> Result:
    problems = []
    if result.code not in codes:
        problems.append(f"exit {result.code}, want {'/'.join(map(str, codes))}")
    if result.traceback:
        problems.append("traceback")
    for what, (path, before) in intact.items():
        if tree_digest(path) != before:
            problems.append(f"{what} changed")
    result.verdict = "ok" if not problems else "; ".join(problems)
    return result


def snap(path: Path) -> tuple[Path, str]:
    return path, tree_digest(path)


def leftovers(directory: Path, since: set[str]) -> list[str]:
    return sorted(set(glob.glob(str(directory / ".*tmp-*")) + glob.glob(str(directory / ".*old-*"))) - since)


# --- OUT ownership -----------------------------------------------------------

def o_dot(sb: Sandbox) -> Result:
    victim_dir(sb.cwd)
    src = sb.source()
    before = snap(sb.cwd)
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "."), (2,), cwd=before)


def o_empty(sb: Sandbox) -> Result:
    victim_dir(sb.cwd)
    src = sb.source()
    before = snap(sb.cwd)
    return expect(sb.run("build", src.name, "--backend", "c", "-o", ""), (2,), cwd=before)


def o_source_dir(sb: Sandbox) -> Result:
    proj = victim_dir(sb.cwd / "proj")
    src = sb.source(where=proj)
    before = snap(proj)
    return expect(sb.run("build", str(src), "--backend", "c", "-o", "proj"), (2,), project=before)


def o_parent(sb: Sandbox) -> Result:
    inner = sb.cwd / "a" / "b"
    inner.mkdir(parents=True)
    victim_dir(sb.cwd / "a")
    src = sb.source(where=sb.cwd)
    before = snap(sb.cwd / "a")
    proc = subprocess.run([*CLI, "build", str(src), "--backend", "c", "-o", ".."], cwd=inner, env=sb.env,
                          capture_output=True, text=True)
    r = Result(proc.returncode, "Traceback" in proc.stderr, "ok", proc.stdout, proc.stderr)
    return expect(r, (2,), parent=before)


def o_source_file(sb: Sandbox) -> Result:
    src = sb.source()
    before = snap(src)
    return expect(sb.run("build", src.name, "--backend", "c", "-o", src.name), (2,), source=before)


def o_file(sb: Sandbox) -> Result:
    src = sb.source()
    notes = sb.cwd / "notes.txt"
    notes.write_text("keep me\n")
    before = snap(notes)
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "notes.txt"), (2,), file=before)


def o_chardev(sb: Sandbox) -> Result | None:
    src = sb.source()
    dev = sb.cwd / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        return None
    r = sb.run("build", src.name, "--backend", "c", "-o", "null")
    r = expect(r, (2,))
    if not (dev.exists() and stat.S_ISCHR(dev.stat().st_mode)):
        r.verdict = (r.verdict if r.verdict != "ok" else "") + " device node gone"
    return r


def o_symlink(sb: Sandbox) -> Result:
    src = sb.source()
    target = victim_dir(sb.root / "elsewhere")
    (sb.cwd / "link").symlink_to(target)
    before = snap(target)
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "link"), (2,), target=before,
                  link=snap(sb.cwd / "link"))


def o_default_symlink(sb: Sandbox) -> Result:
    src = sb.source()
    target = victim_dir(sb.root / "elsewhere")
    (sb.cwd / "out").symlink_to("../elsewhere")
    before = snap(target)
    return expect(sb.run("build", src.name, "--backend", "c"), (2,), target=before)


def o_user_dir(sb: Sandbox) -> Result:
    src = sb.source()
    user = victim_dir(sb.cwd / "results")
    before = snap(user)
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "results"), (2,), dir=before)


def o_manifest_not_ours(sb: Sandbox) -> Result:
    """A directory with someone else's manifest.json (a list) is not ours."""
    src = sb.source()
    user = victim_dir(sb.cwd / "out")
    (user / "manifest.json").write_text("[1, 2, 3]\n")
    before = snap(user)
    return expect(sb.run("build", src.name, "--backend", "c"), (2,), dir=before)


def o_rebuild(sb: Sandbox) -> Result:
    """Our own previous output is replaced (exit 0 twice)."""
    src = sb.source()
    first = sb.run("build", src.name, "--backend", "c")
    if first.code != 0:
        return expect(first, (0,))
    return expect(sb.run("build", src.name, "--backend", "c"), (0,))


def o_root(sb: Sandbox) -> Result:
    src = sb.source()
    since = set(glob.glob("/.*tmp-*") + glob.glob("/.*old-*"))
    r = expect(sb.run("build", str(src), "--backend", "c", "-o", "/"), (3,))
    left = leftovers(Path("/"), since)
    for path in left:  # what main left behind in / (its own temp dirs only)
        shutil.rmtree(path, ignore_errors=True)
    if left:
        r.verdict = ("" if r.verdict == "ok" else r.verdict + "; ") + f"left {left}"
    return r


def o_proc(sb: Sandbox) -> Result:
    src = sb.source()
    return expect(sb.run("build", str(src), "--backend", "c", "-o", "/proc/tatara-x"), (3,))


def o_readonly(sb: Sandbox) -> Result | None:
    src = sb.source()
    ro = sb.cwd / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True).returncode:
        return None
    try:
        r = expect(sb.run("build", src.name, "--backend", "c", "-o", "ro/out"), (3,))
        if list(ro.iterdir()):
            r.verdict += " leftovers"
        return r
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def o_unwritable_parent(sb: Sandbox) -> Result:
    """A directory made read-only by mode (root ignores modes: then exit 0 is right)."""
    src = sb.source()
    locked = sb.cwd / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    r = sb.run("build", src.name, "--backend", "c", "-o", "locked/out")
    locked.chmod(0o755)
    return expect(r, (0,) if os.geteuid() == 0 else (3,))


def emit_project(sb: Sandbox) -> Result:
    src = sb.source()
    proj = sb.cwd / "myproj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "lib.rs").write_text("pub fn mine() {}\n")
    (proj / "Cargo.toml").write_text('[package]\nname = "mine"\nversion = "0.1.0"\n')
    before = snap(proj)
    return expect(sb.run("emit", src.name, "--backend", "aya", "-o", "myproj"), (2,), project=before)


def emit_c_user_dir(sb: Sandbox) -> Result:
    src = sb.source()
    user = victim_dir(sb.cwd / "gen")
    (user / "drop-syn.bpf.c").write_text("/* my own hand-written program */\n")
    before = snap(user)
    return expect(sb.run("emit", src.name, "--backend", "c", "-o", "gen"), (2,), dir=before)


def emit_empty_out(sb: Sandbox) -> Result:
    victim_dir(sb.cwd)
    src = sb.source()
    before = snap(sb.cwd)
    return expect(sb.run("emit", src.name, "--backend", "aya", "-o", ""), (2,), cwd=before)


def emit_twice(sb: Sandbox) -> Result:
    src = sb.source()
    first = sb.run("emit", src.name, "--backend", "aya", "-o", "crate")
    if first.code != 0:
        return expect(first, (0,))
    return expect(sb.run("emit", src.name, "--backend", "aya", "-o", "crate"), (0,))


def emit_symlink(sb: Sandbox) -> Result:
    src = sb.source()
    target = victim_dir(sb.root / "elsewhere")
    (sb.cwd / "gen").symlink_to(target)
    before = snap(target)
    return expect(sb.run("emit", src.name, "--backend", "c", "-o", "gen"), (2,), target=before)


# --- caches ------------------------------------------------------------------

def _cached_objects(sb: Sandbox) -> list[Path]:
    return sorted((sb.cache / "tatara-build" / "objects").rglob("object.o"))


def _rewrite(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode)
    tmp.rename(path)


def _fresh_sha(sb: Sandbox, src: Path) -> str:
    r = sb.run("build", src.name, "--backend", "c", "--no-cache", "-o", "fresh", "--json")
    return json.loads(r.stdout)["objects"][0]["sha256"]


def _served_sha(r: Result) -> str | None:
    try:
        return json.loads(r.stdout)["objects"][0]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def cache_flip(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c", "-o", "a")
    (obj,) = _cached_objects(sb)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    _rewrite(obj, bytes(data))
    good = _fresh_sha(sb, src)
    r = expect(sb.run("build", src.name, "--backend", "c", "-o", "b", "--json"), (0,))
    if _served_sha(r) != good:
        r.verdict = "served the corrupted object"
    return r


def cache_swap(sb: Sandbox) -> Result:
    src = sb.source()
    other = sb.source("port-counter.tlisp", OTHER.read_text())
    sb.run("build", src.name, "--backend", "c", "-o", "a")
    (obj,) = _cached_objects(sb)
    sb.run("build", other.name, "--backend", "c", "-o", "o", "--no-cache")
    _rewrite(obj, (sb.cwd / "o" / "port-counter.o").read_bytes())
    good = _fresh_sha(sb, src)
    r = expect(sb.run("build", src.name, "--backend", "c", "-o", "b", "--json"), (0,))
    if _served_sha(r) != good:
        r.verdict = "served another program's object"
    return r


def cache_truncated(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c", "-o", "a")
    (obj,) = _cached_objects(sb)
    _rewrite(obj, obj.read_bytes()[:100])
    good = _fresh_sha(sb, src)
    r = expect(sb.run("build", src.name, "--backend", "c", "-o", "b", "--json"), (0,))
    if r.verdict == "ok" and _served_sha(r) != good:
        r.verdict = "served a truncated object"
    return r


def cache_meta_garbage(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c", "-o", "a")
    (obj,) = _cached_objects(sb)
    (obj.parent / "meta.json").write_text("[not json")
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "b"), (0,))


def probe_memo(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c", "-o", "a", "--no-cache")
    memo = sb.cache / "tatara-build" / "toolchain-probes.json"
    data = json.loads(memo.read_text())
    for k in data:  # the output, edited in place (a memo entry may be {"output": …, …})
        if isinstance(data[k], dict):
            data[k]["output"] = "Evil clang version 0.0.1 (fake)\n" + data[k]["output"]
        elif data[k]:
            data[k] = "Evil clang version 0.0.1 (fake)\n" + data[k]
    memo.write_text(json.dumps(data))
    r = expect(sb.run("build", src.name, "--backend", "c", "-o", "b", "--json", "--no-cache"), (0,))
    if "Evil" in r.stdout:
        r.verdict = "fake compiler recorded in the manifest"
    return r


def probe_memo_list(sb: Sandbox) -> Result:
    src = sb.source()
    memo = sb.cache / "tatara-build" / "toolchain-probes.json"
    memo.parent.mkdir(parents=True)
    memo.write_text("[1, 2]")
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "b"), (0,))


def _vm_test(sb: Sandbox, src: Path, out: str = "t") -> Result:
    return sb.run("test", src.name, "--backend", "c", "-o", out, "--json", "--accel", "tcg", timeout=400)


def initramfs_edit(sb: Sandbox) -> Result:
    sb.kernels()
    src = sb.source()
    first = _vm_test(sb, src)
    if first.code != 0:
        return expect(first, (0,))
    found = sorted((sb.cache / "tatara-build" / "initramfs").glob("base-*.cpio"))
    if not found:  # nothing cached is read back: plant a tampered archive where one would be
        from tatara_build.vm import initramfs as guest_archive
        cpio = sb.cache / "tatara-build" / "initramfs" / "base-0000000000000000.cpio"
        cpio.parent.mkdir(parents=True, exist_ok=True)
        cpio.write_bytes(guest_archive.newc(guest_archive.base_entries()))
        found = [cpio]
    cpio = found[0]
    data = cpio.read_bytes()
    marker = b"#!/bin/sh\n"
    at = data.find(marker)
    # The guest's /init prints this and powers off before doing anything:
    evil = b"#!/bin/sh\necho TAMPERED; poweroff -f\n#"
    _rewrite(cpio, data[:at] + evil + data[at + len(evil):])
    r = expect(_vm_test(sb, src, "t2"), (0,))
    if "TAMPERED" in r.stdout + r.stderr or r.code == 5:
        r.verdict = "booted the edited /init"
    return r


def vmlinux_swap(sb: Sandbox) -> Result:
    sb.kernels()
    src = sb.source()
    homes = list((sb.cache / "tatara-build" / "kernels").glob("linux-image-6.1.*"))
    if not homes:
        first = _vm_test(sb, src)
        if first.code != 0:
            return expect(first, (0,))
        homes = list((sb.cache / "tatara-build" / "kernels").glob("linux-image-6.1.*"))
    home = homes[0]
    fake = b"\x7fELF" + b"\0" * 4096  # not a kernel: a served fake never boots
    _rewrite(home / "vmlinux", fake)
    _rewrite(home / "vmlinux.sha256", (hashlib.sha256(fake).hexdigest() + "\n").encode())
    return expect(_vm_test(sb, src), (0,))


def vmlinuz_swap(sb: Sandbox) -> Result:
    sb.kernels()
    src = sb.source()
    home = next((sb.cache / "tatara-build" / "kernels").glob("linux-image-6.1.*"), None)
    if home is None:
        return None
    _rewrite(home / "vmlinuz", b"not a kernel")
    return expect(_vm_test(sb, src), (0, 3))


# --- signals -----------------------------------------------------------------

def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,stat=,args="], capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3:
            table[int(parts[0])] = (int(parts[1]), parts[2], parts[3] if len(parts) > 3 else "")
    return table


def _descendants(pid: int) -> dict[int, str]:
    """Every live (non-zombie) process below `pid`, with its command line."""
    table = _processes()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, state, args) in table.items():
            if ppid == parent and child not in found:
                if not state.startswith("Z"):
                    found[child] = args
                frontier.append(child)
    return found


def _alive(pids: dict[int, str]) -> list[str]:
    table = _processes()
    return [f"{pid} {args[:60]}" for pid, args in pids.items()
            if pid in table and not table[pid][1].startswith("Z") and table[pid][2] == args]


def default_signals() -> None:
    """In the CLI's child: the signals under test at their defaults, whatever
    this harness inherited (a background job ignores SIGINT, nohup SIGHUP,
    and the CLI rightly keeps an inherited SIG_IGN)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _signal_case(sb: Sandbox, args: list[str], sig: int, wait_for: str, want: int, *, patience: float = 240) -> Result:
    """Start the CLI, wait until `wait_for` runs below it, send `sig` to the
    CLI alone (as `kill PID` would), then look for survivors among every
    process that was below it, for temp dirs and for a changed OUT."""
    out_before = snap(sb.cwd / "out")
    tmp_before = set(glob.glob(str(sb.tmp / "*")))
    proc = subprocess.Popen([*CLI, *args], cwd=sb.cwd, env=sb.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=default_signals)
    deadline = time.monotonic() + patience
    below: dict[int, str] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        below = _descendants(proc.pid)
        if any(wait_for in a for a in below.values()):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        proc.communicate()
        for pid in _descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
        return Result("skip", False, f"never saw {wait_for!r} running")
    time.sleep(0.5)
    below |= _descendants(proc.pid)
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += "\n(did not exit within 60 s of the signal)"
    time.sleep(1.0)
    survivors = _alive(below)
    r = expect(Result(proc.returncode, "Traceback" in stderr, "ok", stdout, stderr), (want,), out=out_before)
    problems = [] if r.verdict == "ok" else [r.verdict]
    if survivors:
        problems.append(f"survivors: {survivors[:3]}")
        for line in survivors:
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
    left = sorted(set(glob.glob(str(sb.tmp / "*"))) - tmp_before)
    left += leftovers(sb.cwd, set())
    if left:
        problems.append(f"left {left}")
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
    r.verdict = "; ".join(problems) or "ok"
    return r


def sig_test_qemu(sb: Sandbox, sig: int = signal.SIGTERM) -> Result:
    sb.kernels()
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")  # an OUT that must stay as it was
    return _signal_case(sb, ["test", src.name, "--backend", "c", "--accel", "tcg"], sig, "qemu-system", 128 + sig)


def sigint_test_qemu(sb: Sandbox) -> Result:
    return sig_test_qemu(sb, signal.SIGINT)


def sig_test_matrix(sb: Sandbox) -> Result:
    """Two kernels, one VM at a time: the VM runs in a worker thread, and the
    second must never start."""
    sb.kernels()
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    r = _signal_case(sb, ["test", src.name, "--backend", "c", "--accel", "tcg", "--kernel", "6.1,6.12", "-j", "1"],
                     signal.SIGTERM, "qemu-system", 143)
    if r.verdict == "ok" and "6.12" in r.stdout + r.stderr and "interrupted" not in r.stderr:
        r.verdict = "the second kernel ran after the signal"
    return r


def sig_verify_qemu(sb: Sandbox) -> Result:
    sb.kernels()
    src = sb.source()
    sb.run("build", src.name, "--backend", "c", "-o", "built")
    shutil.copyfile(sb.cwd / "built" / "drop-syn.o", sb.cwd / "x.o")
    return _signal_case(sb, ["verify", "x.o", "--accel", "tcg"], signal.SIGTERM, "qemu-system", 143)


def sig_build_cargo(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    return _signal_case(sb, ["build", src.name, "--backend", "aya", "--no-cache"], signal.SIGTERM, "rustc", 143)


def sigint_build_clang(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    # a slow clang: a wrapper that sleeps first, so the signal lands mid-compile
    wrapper = sb.root / "slow-clang"
    wrapper.write_text(f"#!/bin/sh\nsleep 30\nexec {shutil.which('clang')} \"$@\"\n")
    wrapper.chmod(0o755)
    return _signal_case(sb, ["build", src.name, "--backend", "c", "--no-cache", "--clang", str(wrapper)],
                        signal.SIGINT, "sleep 30", 130)


# --- bad inputs --------------------------------------------------------------

def in_dev_zero(sb: Sandbox) -> Result:
    return expect(sb.run("build", "/dev/zero", "--backend", "c", timeout=30), (2,))


def in_fifo(sb: Sandbox) -> Result:
    os.mkfifo(sb.cwd / "pipe.tlisp")
    return expect(sb.run("check", "pipe.tlisp", timeout=30), (2,))


def in_dir(sb: Sandbox) -> Result:
    (sb.cwd / "d.tlisp").mkdir()
    return expect(sb.run("build", "d.tlisp", "--backend", "c"), (2,))


def in_missing(sb: Sandbox) -> Result:
    return expect(sb.run("build", "nope.tlisp", "--backend", "c"), (2,))


def in_huge(sb: Sandbox) -> Result:
    big = sb.cwd / "big.tlisp"
    with big.open("w") as f:
        f.write(";" + "x" * (64 << 20) + "\n")
    r = expect(sb.run("check", "big.tlisp", timeout=120), (1, 2))
    if r.verdict == "ok" and "size" not in r.stderr and "large" not in r.stderr:
        r.verdict = "no size message"
    return r


def _bad_option(*args: str, need_src: bool = True, code: int = 2):
    def case(sb: Sandbox) -> Result:
        src = sb.source()
        if args[0] == "verify":
            sb.kernels()
            sb.run("build", src.name, "--backend", "c")
            return expect(sb.run(*args, timeout=60), (code,))
        return expect(sb.run(args[0], src.name, *args[1:], timeout=60), (code,))
    return case


def dash_name(sb: Sandbox) -> Result:
    sb.source("-x.tlisp")
    r = expect(sb.run("build", "--backend", "c", "-o", "out", "--", "-x.tlisp"), (0,))
    return r


def _no_crates(r: Result) -> bool:
    return r.code == 3 and any(w in r.stderr for w in ("crates.io", "--vendor-dir", "fetch failed"))


def dash_name_aya(sb: Sandbox) -> Result:
    """The crate is named after the file: `-x` cannot name one, which is said
    as a source error (exit 1), never read as an option by cargo."""
    sb.source("-x.tlisp")
    r = sb.run("build", "--backend", "aya", "-o", "out", "--", "-x.tlisp", timeout=600)
    if _no_crates(r):
        return Result("skip", False, "aya's crates are not reachable here (set TATARA_VENDOR_DIR)")
    r = expect(r, (0, 1))
    if r.code == 1 and "cannot name a crate" not in r.stderr:
        r.verdict = "exit 1 without saying why"
    return r


def _empty_program(text: str, command: str = "build"):
    def case(sb: Sandbox) -> Result:
        sb.source("e.tlisp", text)
        args = [command, "e.tlisp"] + (["--backend", "c"] if command in ("build", "test") else [])
        return expect(sb.run(*args, timeout=120), (1,))
    return case


# --- --json ------------------------------------------------------------------

def _one_json(r: Result) -> bool:
    try:
        json.loads(r.stdout)
        return True
    except ValueError:
        return False


def _json_case(*args: str, code: int | tuple[int, ...], setup: Callable[[Sandbox], None] | None = None, env_patch: dict | None = None):
    def case(sb: Sandbox) -> Result:
        sb.source()
        if setup:
            setup(sb)
        env = dict(sb.env, **(env_patch or {}))
        r = expect(sb.run(*args, env=env, timeout=120), code if isinstance(code, tuple) else (code,))
        if not _one_json(r):
            r.verdict = ("" if r.verdict == "ok" else r.verdict + "; ") + "stdout is not one JSON document"
        return r
    return case


def _bad_source(sb: Sandbox) -> None:
    sb.source("bad.tlisp", "(defbpf-map x :kind :nope)\n")


def _manifest_list(sb: Sandbox) -> None:
    sb.run("build", "drop-syn.tlisp", "--backend", "c")
    (sb.cwd / "out" / "manifest.json").write_text("[1, 2]")


def no_path(sb: Sandbox) -> Result:
    src = sb.source()
    env = dict(sb.env, PATH="")  # a clang found by absolute path may still build: then exit 0
    return expect(sb.run("build", src.name, "--backend", "c", env=env), (0, 3))


def no_path_test(sb: Sandbox) -> Result:
    sb.kernels()
    src = sb.source()
    env = dict(sb.env, PATH="")
    return expect(sb.run("test", src.name, "--backend", "c", env=env), (3,))


def verify_manifest_list(sb: Sandbox) -> Result:
    sb.kernels()
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    (sb.cwd / "out" / "manifest.json").write_text("[1, 2]")
    return expect(sb.run("verify", "out/drop-syn.o", "--accel", "tcg", timeout=400), (0,))


# --- error rendering ---------------------------------------------------------

def _caret(text: str, want_line: str):
    def case(sb: Sandbox) -> Result:
        sb.source("c.tlisp", text)
        r = expect(sb.run("check", "c.tlisp"), (1,))
        shown = [l for l in r.stderr.splitlines() if " | " in l]
        if not shown or want_line not in shown[0]:
            r.verdict = f"caret on {shown[:1]}"
        return r
    return case


def control_chars(sb: Sandbox) -> Result:
    sb.source("c.tlisp", "(defbpf-map \x1b[31mred\x07 :kind :array)\n")
    r = expect(sb.run("check", "c.tlisp"), (1,))
    if any(c in r.stderr for c in "\x1b\x07"):
        r.verdict = "raw control characters on the terminal"
    return r


def huge_token(sb: Sandbox) -> Result:
    sb.source("t.tlisp", "(defbpf-map " + "a" * (1 << 20) + " :kind :array)\n")
    r = expect(sb.run("check", "t.tlisp"), (1,))
    if len(r.stderr) > 20_000:
        r.verdict = f"message of {len(r.stderr)} characters"
    return r


# --- names -------------------------------------------------------------------

PROGRAM = """(defbpf-map {map} :kind :array :key u32 :value u64 :max-entries 1)
(defbpf-program {prog} :kind :xdp :attach (:target "eth0") :license "GPL" :uses-maps ({map}))
(bpf-fn {prog} ({ctx}) (let (({var} (u64 1))) (map-add {map} 0 {var})) (return :xdp-pass))
"""


def _name_case(backend: str, **names: str):
    values = dict(map="hits", prog="pass", ctx="ctx", var="n") | names

    def case(sb: Sandbox) -> Result:
        sb.source("n.tlisp", PROGRAM.format(**values))
        check = sb.run("check", "n.tlisp")
        if check.code == 1:
            return expect(check, (1,))
        built = sb.run("build", "n.tlisp", "--backend", backend, timeout=600)
        if _no_crates(built):
            return Result("skip", False, "aya's crates are not reachable here (set TATARA_VENDOR_DIR)")
        r = expect(built, (0,))
        if r.verdict != "ok":
            r.verdict = f"check passed, build exit {built.code}"
        return r
    return case


def long_name_vm(sb: Sandbox) -> Result:
    sb.kernels()
    sb.source("n.tlisp", PROGRAM.format(map="a-map-name-longer-than-fifteen", prog="pass", ctx="ctx", var="n"))
    check = sb.run("check", "n.tlisp")
    if check.code == 1:
        return expect(check, (1,))
    r = sb.run("test", "n.tlisp", "--backend", "c", "--accel", "tcg", timeout=400)
    r = expect(r, (0,))
    r.verdict = f"check passed, test exit {r.code}" if r.code else r.verdict
    return r


CASES: dict[str, tuple[Callable[[Sandbox], Result | None], bool]] = {
    "o-dot": (o_dot, False),
    "o-empty": (o_empty, False),
    "o-source-dir": (o_source_dir, False),
    "o-parent-of-cwd": (o_parent, False),
    "o-source-file": (o_source_file, False),
    "o-existing-file": (o_file, False),
    "o-char-device": (o_chardev, False),
    "o-symlink-to-dir": (o_symlink, False),
    "o-default-out-symlink": (o_default_symlink, False),
    "o-user-dir": (o_user_dir, False),
    "o-foreign-manifest": (o_manifest_not_ours, False),
    "o-own-previous-output": (o_rebuild, False),
    "o-root": (o_root, False),
    "o-proc": (o_proc, False),
    "o-readonly-mount": (o_readonly, False),
    "o-mode-555-parent": (o_unwritable_parent, False),
    "emit-aya-into-project": (emit_project, False),
    "emit-c-into-user-dir": (emit_c_user_dir, False),
    "emit-o-empty": (emit_empty_out, False),
    "emit-own-previous": (emit_twice, False),
    "emit-symlink": (emit_symlink, False),
    "cache-object-flipped-byte": (cache_flip, False),
    "cache-object-swapped": (cache_swap, False),
    "cache-object-truncated": (cache_truncated, False),
    "cache-meta-garbage": (cache_meta_garbage, False),
    "probe-memo-edited": (probe_memo, False),
    "probe-memo-a-list": (probe_memo_list, False),
    "initramfs-init-edited": (initramfs_edit, True),
    "vmlinux-replaced-with-sidecar": (vmlinux_swap, True),
    "vmlinuz-replaced": (vmlinuz_swap, True),
    "sigterm-test-in-qemu": (sig_test_qemu, True),
    "sigint-test-in-qemu": (sigint_test_qemu, True),
    "sigterm-verify-in-qemu": (sig_verify_qemu, True),
    "sigterm-test-two-kernels": (sig_test_matrix, True),
    "sigterm-build-in-cargo": (sig_build_cargo, False),
    "sigint-build-in-clang": (sigint_build_clang, False),
    "input-dev-zero": (in_dev_zero, False),
    "input-fifo": (in_fifo, False),
    "input-directory": (in_dir, False),
    "input-missing": (in_missing, False),
    "input-64mb": (in_huge, False),
    "timeout-0": (_bad_option("test", "--timeout", "0"), False),
    "timeout-neg": (_bad_option("test", "--timeout", "-5"), False),
    "timeout-nan": (_bad_option("test", "--timeout", "nan"), False),
    "timeout-inf": (_bad_option("test", "--timeout", "inf"), False),
    "accel-unknown": (_bad_option("test", "--accel", "warp"), False),
    "verify-accel-unknown": (_bad_option("verify", "out/drop-syn.o", "--accel", "warp"), False),
    "verify-max-insns-0": (_bad_option("verify", "out/drop-syn.o", "--max-insns", "0"), False),
    "verify-max-insns-neg": (_bad_option("verify", "out/drop-syn.o", "--max-insns", "-3"), False),
    "cpu-unknown": (_bad_option("build", "--backend", "c", "--cpu", "v9; rm -rf"), False),
    "file-named-dash-c": (dash_name, False),
    "file-named-dash-aya": (dash_name_aya, False),
    "empty-program-build": (_empty_program(""), False),
    "comment-only-build": (_empty_program(";; nothing here\n"), False),
    "cr-only-comment-build": (_empty_program(";; a\r(defbpf-map x :kind :array)\r"), False),
    "empty-program-test": (_empty_program("", "test"), False),
    "json-usage-error": (_json_case("build", "drop-syn.tlisp", "--json", "--bogus", code=2), False),
    "json-missing-file": (_json_case("build", "nope.tlisp", "--json", code=2), False),
    "json-dir-input": (_json_case("build", ".", "--json", code=2), False),
    "json-ir-bad-source": (_json_case("ir", "bad.tlisp", "--json", code=1, setup=_bad_source), False),
    "json-check-bad-source": (_json_case("check", "bad.tlisp", "--json", code=1, setup=_bad_source), False),
    "json-emit-bad-source": (_json_case("emit", "bad.tlisp", "--json", "-o", "e", code=1, setup=_bad_source), False),
    "json-build-bad-source": (_json_case("build", "bad.tlisp", "--json", "--backend", "c", code=1,
                                         setup=_bad_source), False),
    "json-empty-path": (_json_case("build", "drop-syn.tlisp", "--json", "--backend", "c", code=(0, 3),
                                   env_patch={"PATH": ""}), False),
    "json-o-root": (_json_case("build", "drop-syn.tlisp", "--json", "--backend", "c", "-o", "/", code=3), False),
    "json-o-proc": (_json_case("build", "drop-syn.tlisp", "--json", "--backend", "c", "-o", "/proc/x", code=3),
                    False),
    "json-test-manifest-list": (_json_case("build", "drop-syn.tlisp", "--json", "--backend", "c", code=2,
                                           setup=_manifest_list), False),
    "json-verify-missing": (_json_case("verify", "nope.o", "--json", code=2), False),
    "json-schema-unknown": (_json_case("schema", "nope", "--json", code=2), False),
    "empty-path-build": (no_path, False),
    "empty-path-test": (no_path_test, True),
    "verify-manifest-a-list": (verify_manifest_list, True),
    "caret-after-formfeed": (_caret("\f\n(defbpf-map x :kind :nope)\n", "defbpf-map"), False),
    "caret-after-u2028": (_caret(";; a\u2028b\n(defbpf-map x :kind :nope)\n", "defbpf-map"), False),
    "caret-after-lone-cr": (_caret(";; a\rb\n(defbpf-map x :kind :nope)\n", "defbpf-map"), False),
    "control-chars-escaped": (control_chars, False),
    "1mb-token": (huge_token, False),
    "name-tc-gen-c": (_name_case("c", map="tc-gen"), False),
    "name-offsetof-c": (_name_case("c", var="offsetof"), False),
    "name-barrier-var-c": (_name_case("c", var="barrier-var"), False),
    "name-license-aya": (_name_case("aya", map="license"), False),
    "name-panic-aya": (_name_case("aya", prog="panic"), False),
    "name-let-ctx-c": (_name_case("c", ctx="ctx", var="ctx"), False),
    "name-let-ctx-aya": (_name_case("aya", ctx="c", var="ctx"), False),
    "name-long-map-vm": (long_name_vm, True),
}


# --- more hostile and careless cases (second round) --------------------------

def _junit_refused(make: Callable[[Sandbox], Path]):
    """`--junit PATH` over something that is not an earlier report of ours:
    exit 2 before anything runs, the thing untouched."""
    def case(sb: Sandbox) -> Result:
        src = sb.source()
        victim = make(sb)
        before = snap(victim)
        r = expect(sb.run("test", src.name, "--backend", "c", "--junit", str(victim), "--accel", "tcg", timeout=60),
                   (2,), victim=before)
        if r.verdict == "ok" and not (sb.cwd / "out").exists() is False and (sb.cwd / "out").exists():
            r.verdict = "built before refusing the --junit path"
        return r
    return case


def _user_report(sb: Sandbox) -> Path:
    path = sb.cwd / "report.xml"
    path.write_text("my own notes, not a report\n")
    return path


def _pytest_report(sb: Sandbox) -> Path:
    path = sb.cwd / "junit.xml"
    path.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="x"/>'
                    "</testsuites>\n")
    return path


def _report_link(sb: Sandbox) -> Path:
    target = sb.root / "elsewhere.xml"
    target.write_text("someone else's file\n")
    (sb.cwd / "j.xml").symlink_to(target)
    return sb.cwd / "j.xml"


def _report_dir(sb: Sandbox) -> Path:
    return victim_dir(sb.cwd / "reports")


def _report_source(sb: Sandbox) -> Path:
    return sb.cwd / "drop-syn.tlisp"


def _report_fifo(sb: Sandbox) -> Path:
    os.mkfifo(sb.cwd / "j.fifo")
    return sb.cwd / "j.fifo"


def junit_dev_null(sb: Sandbox) -> Result | None:
    """A device node named as the report: never renamed over (as root that
    would replace the node with a regular file)."""
    src = sb.source()
    dev = sb.cwd / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        return None
    r = expect(sb.run("test", src.name, "--backend", "c", "--junit", "null", timeout=60), (2,))
    if not stat.S_ISCHR(os.lstat(dev).st_mode):
        r.verdict = "the device node was replaced"
    return r


BAD = '(defbpf-program p :kind :xdp :attach (:target "eth0") :license "GPL")\n(bpf-fn p (ctx) (return :nope))\n'


def junit_own_previous(sb: Sandbox) -> Result:
    """An earlier report of ours is replaced (a bad source still writes one: exit 1)."""
    sb.source("bad.tlisp", BAD)
    first = expect(sb.run("test", "bad.tlisp", "--backend", "c", "--junit", "j.xml"), (1,))
    if first.verdict != "ok" or not (sb.cwd / "j.xml").exists():
        first.verdict = "no report written the first time" if first.verdict == "ok" else first.verdict
        return first
    before = (sb.cwd / "j.xml").read_bytes()
    (sb.cwd / "j.xml").write_bytes(before.replace(b"tests=", b"tests =", 1))  # any change: rewritten again
    r = expect(sb.run("test", "bad.tlisp", "--backend", "c", "--junit", "j.xml"), (1,))
    if r.verdict == "ok" and b"tests =" in (sb.cwd / "j.xml").read_bytes():
        r.verdict = "the earlier report was not replaced"
    left = leftovers(sb.cwd, set()) + glob.glob(str(sb.cwd / ".j.xml*"))
    if left:
        r.verdict = f"left {left}"
    return r


def junit_empty_file(sb: Sandbox) -> Result:
    """An empty file (`touch junit.xml` in a CI script) holds nothing to lose."""
    sb.source("bad.tlisp", BAD)
    (sb.cwd / "j.xml").write_text("")
    r = expect(sb.run("test", "bad.tlisp", "--backend", "c", "--junit", "j.xml"), (1,))
    if r.verdict == "ok" and b"<testsuites" not in (sb.cwd / "j.xml").read_bytes():
        r.verdict = "no report written"
    return r


def junit_unwritable(sb: Sandbox) -> Result:
    sb.source("bad.tlisp", BAD)
    r = expect(sb.run("test", "bad.tlisp", "--backend", "c", "--junit", "/proc/tatara-x/j.xml"), (1, 3))
    return r


def junit_empty_string(sb: Sandbox) -> Result:
    victim_dir(sb.cwd)
    src = sb.source()
    before = snap(sb.cwd)
    return expect(sb.run("test", src.name, "--backend", "c", "--junit", "", timeout=60), (2,), cwd=before)


def junit_inside_out(sb: Sandbox) -> Result:
    """`test -o out --junit out/junit.xml` (what docs/ci.md shows), then a
    rebuild into the same OUT: our report inside OUT is ours, not foreign."""
    src = sb.source()
    sb.source("bad.tlisp", BAD)
    first = expect(sb.run("build", src.name, "--backend", "c"), (0,))
    if first.verdict != "ok":
        return first
    second = expect(sb.run("test", "bad.tlisp", "--backend", "c", "--junit", "out/junit.xml"), (1,))
    if second.verdict != "ok":
        return second
    return expect(sb.run("build", src.name, "--backend", "c"), (0,))


# paths


def path_spaces_unicode(sb: Sandbox) -> Result:
    src = sb.source("drøp syn ☃.tlisp", where=sb.cwd / "my dir")
    r = expect(sb.run("build", str(src.relative_to(sb.cwd)), "--backend", "c", "-o", "out dir/ü"), (0,))
    if r.verdict == "ok" and not (sb.cwd / "out dir" / "ü" / "drøp syn ☃.o").is_file():
        r.verdict = "no object under the unicode OUT"
    return r


def path_newline_name(sb: Sandbox) -> Result:
    """A file name with a newline and an escape: builds, and an error about
    it never writes raw control characters."""
    sb.source("a\nb\x1b[31m.tlisp", "(defbpf-map x :kind :nope)\n")
    r = expect(sb.run("check", "a\nb\x1b[31m.tlisp"), (1,))
    if "\x1b" in r.stderr:
        r.verdict = "raw escape from the file name on the terminal"
    return r


def path_newline_build(sb: Sandbox) -> Result:
    sb.source("a\nb.tlisp")
    return expect(sb.run("build", "a\nb.tlisp", "--backend", "c", "-o", "o\nut"), (0, 1))


def path_very_long_out(sb: Sandbox) -> Result:
    src = sb.source()
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "x" * 300), (2, 3))


def path_very_deep_out(sb: Sandbox) -> Result:
    src = sb.source()
    deep = "/".join(["d" * 200] * 25)  # > PATH_MAX
    return expect(sb.run("build", src.name, "--backend", "c", "-o", deep), (2, 3))


def path_long_source(sb: Sandbox) -> Result:
    return expect(sb.run("check", "s" * 300 + ".tlisp"), (2,))


def out_trailing_slash(sb: Sandbox) -> Result:
    src = sb.source()
    first = expect(sb.run("build", src.name, "--backend", "c", "-o", "out/"), (0,))
    if first.verdict != "ok":
        return first
    return expect(sb.run("build", src.name, "--backend", "c", "-o", "out/./"), (0,))


def out_is_cache(sb: Sandbox) -> Result:
    """-o at the cache itself (or inside it): refused, the cache intact."""
    src = sb.source()
    sb.run("build", src.name, "--backend", "c", "-o", "a")
    cache = sb.cache / "tatara-build"
    before = snap(cache)
    r = expect(sb.run("build", src.name, "--backend", "c", "-o", str(cache)), (2,), cache=before)
    if r.verdict != "ok":
        return r
    objects = cache / "objects"
    return expect(sb.run("build", src.name, "--backend", "c", "-o", str(objects)), (2,), cache=snap(cache))


def cache_inside_out(sb: Sandbox) -> Result:
    """XDG_CACHE_HOME inside OUT: the build must not refuse its own OUT
    forever, nor lose the cache silently with a traceback."""
    src = sb.source()
    env = dict(sb.env, XDG_CACHE_HOME=str(sb.cwd / "out" / "cache"))
    first = expect(sb.run("build", src.name, "--backend", "c", env=env), (0, 2))
    if first.verdict != "ok":
        return first
    return expect(sb.run("build", src.name, "--backend", "c", env=env), (0, 2))


def concurrent_same_out(sb: Sandbox) -> Result:
    """Two builds into one OUT at once: each exits 0 (or 2/3 cleanly), and OUT
    ends as one whole build output; no temp siblings."""
    src = sb.source()
    other = sb.source("port-counter.tlisp", OTHER.read_text())
    procs = [subprocess.Popen([*CLI, "build", name, "--backend", "c", "-o", "out", "--no-cache"], cwd=sb.cwd,
                              env=sb.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in (src.name, other.name, src.name, other.name)]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    problems = []
    for p, out, err in results:
        if p.returncode not in (0, 2, 3) or "Traceback" in err:
            problems.append(f"exit {p.returncode}: {err[-300:]}")
    manifest = sb.cwd / "out" / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
        files = sorted(o["file"] for o in data["objects"])
        listed = sorted(p.name for p in (sb.cwd / "out").iterdir() if p.suffix == ".o")
        if files != listed or len(files) != 1:
            problems.append(f"OUT mixes outputs: manifest {files}, objects {listed}")
    except (OSError, ValueError, KeyError) as err:
        problems.append(f"no whole OUT: {err}")
    if not any(p.returncode == 0 for p, _, _ in results):
        problems.append("no build succeeded")
    left = leftovers(sb.cwd, set())
    if left:
        problems.append(f"left {left}")
    code = ",".join(str(p.returncode) for p, _, _ in results)
    return Result(code, any("Traceback" in e for _, _, e in results), "; ".join(problems) or "ok")


def _slow_source(sb: Sandbox) -> Path:
    """A source big enough (about 40k forms) that loading it takes a while."""
    maps = "".join(f"(defbpf-map m{i} :kind :array :key u32 :value u64 :max-entries 1)\n" for i in range(40000))
    return sb.source("slow.tlisp", maps + EXAMPLE.read_text())


def _signal_at(sb: Sandbox, args: list[str], sig: int, after: float, want: tuple[int, ...],
               marker: str | None = None) -> Result:
    """Send `sig` `after` seconds after the CLI starts, or once `marker`
    shows on its stderr; a run that ended before the signal is a skip."""
    out_before = snap(sb.cwd / "out")
    tmp_before = set(glob.glob(str(sb.tmp / "*")))
    proc = subprocess.Popen([*CLI, *args], cwd=sb.cwd, env=sb.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=default_signals)
    seen = ""
    if marker is not None:
        assert proc.stderr is not None
        while marker not in seen and (line := proc.stderr.readline()):
            seen += line
    time.sleep(after)
    below = _descendants(proc.pid)
    if proc.poll() is not None:
        proc.communicate()
        return Result("skip", False, f"the run ended (exit {proc.returncode}) before the signal")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    stderr = seen + stderr
    time.sleep(0.5)
    r = expect(Result(proc.returncode, "Traceback" in stderr, "ok", stdout, stderr), want, out=out_before)
    problems = [] if r.verdict == "ok" else [r.verdict]
    survivors = _alive(below)
    if survivors:
        problems.append(f"survivors: {survivors[:3]}")
    left = sorted(set(glob.glob(str(sb.tmp / "*"))) - tmp_before) + leftovers(sb.cwd, set())
    if left:
        problems.append(f"left {left}")
    r.verdict = "; ".join(problems) or "ok"
    return r


def sigterm_while_loading(sb: Sandbox) -> Result:
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")  # an OUT that must stay as it was
    slow = _slow_source(sb)
    return _signal_at(sb, ["build", slow.name, "--backend", "c", "-o", "out"], signal.SIGTERM, 0.05, (143,),
                      marker="load slow.tlisp")


def sigint_while_checking(sb: Sandbox) -> Result:
    slow = _slow_source(sb)
    return _signal_at(sb, ["check", slow.name], signal.SIGINT, 0.4, (130,))


def sigterm_at_start(sb: Sandbox) -> Result:
    """Before Python has even imported the CLI: still 143 (or the default
    SIGTERM death), nothing written."""
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    r = _signal_at(sb, ["build", src.name, "--backend", "c", "--no-cache"], signal.SIGTERM, 0.01, (143, -15))
    return r


def sighup_build_clang(sb: Sandbox) -> Result:
    """A closed terminal (SIGHUP) mid-compile: 129, OUT as it was, clang gone."""
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    wrapper = sb.root / "slow-clang"
    wrapper.write_text(f"#!/bin/sh\nsleep 30\nexec {shutil.which('clang')} \"$@\"\n")
    wrapper.chmod(0o755)
    return _signal_case(sb, ["build", src.name, "--backend", "c", "--no-cache", "--clang", str(wrapper)],
                        signal.SIGHUP, "sleep 30", 129)


def _mounted(sb: Sandbox, where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def readonly_cache(sb: Sandbox) -> Result | None:
    """A read-only cache dir: the build still works (the cache is a speed-up)."""
    src = sb.source()
    if not _mounted(sb, sb.cache, "ro,size=1m"):
        return None
    try:
        return expect(sb.run("build", src.name, "--backend", "c"), (0,))
    finally:
        _umount(sb.cache)


def full_disk_out(sb: Sandbox) -> Result | None:
    """OUT on a full file system: exit 3 with a message, nothing left there."""
    src = sb.source()
    disk = sb.cwd / "disk"
    if not _mounted(sb, disk, "size=8k"):
        return None
    try:
        (disk / "filler").write_bytes(b"\0" * 4096)
        r = expect(sb.run("build", src.name, "--backend", "c", "-o", "disk/out", "--no-cache"), (3,))
        left = sorted(p.name for p in disk.iterdir() if p.name != "filler")
        if left:
            r.verdict = ("" if r.verdict == "ok" else r.verdict + "; ") + f"left {left}"
        if r.verdict == "ok" and "space" not in r.stderr.lower():
            r.verdict = "no word of the full disk"
        return r
    finally:
        _umount(disk)


def full_disk_cache(sb: Sandbox) -> Result | None:
    """A full cache file system: the build still succeeds (nothing cached)."""
    src = sb.source()
    if not _mounted(sb, sb.cache, "size=8k"):
        return None
    try:
        r = expect(sb.run("build", src.name, "--backend", "c"), (0,))
        if r.verdict == "ok":
            r = expect(sb.run("build", src.name, "--backend", "c"), (0,))
        return r
    finally:
        _umount(sb.cache)


def full_disk_tmp(sb: Sandbox) -> Result | None:
    """$TMPDIR full: exit 3 (or 0 if nothing needed it), never a traceback."""
    src = sb.source()
    if not _mounted(sb, sb.tmp, "size=4k"):
        return None
    try:
        (sb.tmp / "filler").write_bytes(b"\0" * 4096)
        return expect(sb.run("build", src.name, "--backend", "c", "--no-cache"), (0, 3))
    finally:
        _umount(sb.tmp)


def _manifest_edit(text: str, command: str = "build", code: tuple[int, ...] = (2,)):
    def case(sb: Sandbox) -> Result:
        src = sb.source()
        first = expect(sb.run("build", src.name, "--backend", "c"), (0,))
        if first.verdict != "ok":
            return first
        (sb.cwd / "out" / "manifest.json").write_text(text)
        before = snap(sb.cwd / "out")
        r = expect(sb.run(command, src.name, "--backend", "c"), code, out=before if code == (2,) else (sb.cwd / "out", before[1]))
        return r
    return case


def manifest_traversal(sb: Sandbox) -> Result:
    """A manifest (ours in shape) that lists `../precious` as an object: the
    rebuild replaces OUT only; the file outside stays."""
    src = sb.source()
    sb.run("build", src.name, "--backend", "c")
    precious = sb.cwd / "precious"
    precious.write_text("keep\n")
    manifest = sb.cwd / "out" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["objects"].append({"file": "../precious"})
    data["objects"].append({"file": "/etc/passwd"})
    manifest.write_text(json.dumps(data))
    return expect(sb.run("build", src.name, "--backend", "c"), (0, 2), precious=snap(precious))


def _source_bytes(data: bytes, command: str = "check", codes: tuple[int, ...] = (1,)):
    def case(sb: Sandbox) -> Result:
        (sb.cwd / "s.tlisp").write_bytes(data)
        args = [command, "s.tlisp"] + (["--backend", "c"] if command == "build" else [])
        r = expect(sb.run(*args), codes)
        raw = [c for c in r.stderr if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]
        if raw:
            r.verdict = ("" if r.verdict == "ok" else r.verdict + "; ") + f"raw control characters {raw[:3]!r}"
        if r.verdict == "ok" and r.code == 1 and "s.tlisp:" not in r.stderr:
            r.verdict = "no file:line:col"
        return r
    return case


def env_case(patch: dict[str, str | None], codes: tuple[int, ...], command: tuple[str, ...] = ("build",),
             cwd_cache: bool = False):
    def case(sb: Sandbox) -> Result:
        src = sb.source()
        env = dict(sb.env)
        for k, v in patch.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v.replace("{cwd}", str(sb.cwd)).replace("{root}", str(sb.root))
        args = [*command, src.name] + (["--backend", "c"] if command[0] in ("build", "test") else [])
        r = expect(sb.run(*args, env=env, timeout=120), codes)
        if r.verdict == "ok" and r.code == 3 and not r.stderr.strip():
            r.verdict = "exit 3 without a message"
        return r
    return case


def xdg_relative(sb: Sandbox) -> Result:
    """A relative XDG_CACHE_HOME is invalid (XDG spec: ignore it): no cache
    directory appears under the cwd, the build works."""
    src = sb.source()
    env = dict(sb.env, XDG_CACHE_HOME="rel-cache", HOME=str(sb.root / "home"))
    r = expect(sb.run("build", src.name, "--backend", "c", env=env), (0,))
    if r.verdict == "ok" and (sb.cwd / "rel-cache").exists():
        r.verdict = "made a cache under the working directory (relative XDG_CACHE_HOME used)"
    return r


def xdg_is_file(sb: Sandbox) -> Result:
    src = sb.source()
    (sb.root / "cachefile").write_text("not a directory\n")
    env = dict(sb.env, XDG_CACHE_HOME=str(sb.root / "cachefile"))
    r = expect(sb.run("build", src.name, "--backend", "c", env=env), (0, 3))
    if (sb.root / "cachefile").read_text() != "not a directory\n":
        r.verdict = "the file was changed"
    return r


def cwd_deleted(sb: Sandbox) -> Result:
    src = sb.source()
    gone = sb.cwd / "gone"
    gone.mkdir()
    proc = subprocess.Popen(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$@"', "sh", *CLI, "build",
                             str(src), "--backend", "c", "-o", str(sb.cwd / "o")],
                            env=sb.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    return expect(Result(proc.returncode, "Traceback" in err, "ok", out, err), (0, 2, 3))


def stdout_closed_pipe(sb: Sandbox) -> Result:
    """`tatara-build ir x --json | head -c 1`: the reader goes away; no
    BrokenPipeError traceback."""
    src = sb.source()
    proc = subprocess.Popen(["sh", "-c", '"$@" | head -c 1 >/dev/null', "sh", *CLI, "ir", src.name, "--json"],
                            cwd=sb.cwd, env=sb.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    return expect(Result(proc.returncode, "Traceback" in err or "BrokenPipe" in err, "ok", out, err), (0,))


def stdout_full(sb: Sandbox) -> Result:
    """stdout on /dev/full: exit 3 or 0, no traceback."""
    src = sb.source()
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*CLI, "ir", src.name, "--json"], cwd=sb.cwd, env=sb.env, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    return expect(Result(proc.returncode, "Traceback" in proc.stderr, "ok", "", proc.stderr), (1, 3))


def ascii_locale(sb: Sandbox) -> Result:
    """An ASCII-only terminal (LANG=C, PYTHONIOENCODING=ascii) and a unicode
    path in the error: no UnicodeEncodeError."""
    sb.source("ü☃.tlisp", ";; ☃ snow\n(defbpf-map ☃ :kind :nope)\n")
    env = dict(sb.env, LANG="C", LC_ALL="C", PYTHONIOENCODING="ascii")
    return expect(sb.run("check", "ü☃.tlisp", env=env), (1,))


def emit_unicode_out(sb: Sandbox) -> Result:
    src = sb.source()
    return expect(sb.run("emit", src.name, "--backend", "c", "-o", "gen ü/x y"), (0,))


def source_symlink_to_dev(sb: Sandbox) -> Result:
    (sb.cwd / "s.tlisp").symlink_to("/dev/zero")
    return expect(sb.run("build", "s.tlisp", "--backend", "c", timeout=30), (2,))


def source_unreadable(sb: Sandbox) -> Result:
    """A source nobody may read: as root it is readable (then exit 0)."""
    src = sb.source()
    src.chmod(0)
    return expect(sb.run("check", src.name), (0,) if os.geteuid() == 0 else (2,))


def json_junit_refused(sb: Sandbox) -> Result:
    src = sb.source()
    (sb.cwd / "notes.txt").write_text("keep\n")
    r = expect(sb.run("test", src.name, "--backend", "c", "--json", "--junit", "notes.txt"), (2,),
               notes=(sb.cwd / "notes.txt", tree_digest(sb.cwd / "notes.txt")))
    if not _one_json(r):
        r.verdict = ("" if r.verdict == "ok" else r.verdict + "; ") + "stdout is not one JSON document"
    return r


def junit_is_out(sb: Sandbox) -> Result:
    """`test -o out --junit out`: the report and the output cannot be one
    path; refused before the build (nothing written)."""
    src = sb.source()
    r = expect(sb.run("test", src.name, "--backend", "c", "-o", "out", "--junit", "out", timeout=60), (2,))
    if r.verdict == "ok" and (sb.cwd / "out").exists():
        r.verdict = "built before refusing"
    return r


def _whole_notes(text: str):
    """A note is a sentence: one printed a character per line once
    (`note: d`, `note: i`, … for `did you mean`)."""
    def case(sb: Sandbox) -> Result:
        sb.source("n.tlisp", text)
        r = expect(sb.run("check", "n.tlisp"), (1,))
        short = [l for l in r.stderr.splitlines() if l.strip().startswith("note:") and len(l.split("note:", 1)[1]) <= 2]
        if r.verdict == "ok" and short:
            r.verdict = f"notes cut into characters: {short[:3]}"
        return r
    return case


PERF_NEAR_STACK_LIMIT = """(defbpf-struct rec (pid u64) (comm (array u8 16)) (pad (array u8 472)))
(defbpf-map out :kind :perf-event-array :value rec :max-entries 64)
(defbpf-map cnt :kind :hash :key u64 :value u64 :max-entries 64)
(defbpf-program p :kind :tracepoint :attach (:target "syscalls/sys_enter_openat") :license "GPL" :uses-maps (out cnt))
(bpf-fn p (ctx) (let ((pid (call get-current-pid-tgid))) (map-add cnt pid 1)
  (event-output out (make rec :pid pid :comm (current-comm))) (return :ok)))
"""


def perf_record_near_stack_limit(sb: Sandbox) -> Result:
    """A 496-byte perf record passes `check`, so `build` must compile it
    (the C once copied it twice and clang refused the stack: exit 3)."""
    sb.source("perf.tlisp", PERF_NEAR_STACK_LIMIT)
    return expect(sb.run("build", "perf.tlisp", "--backend", "c", timeout=120), (0,))


def case_named_like_builtin(sb: Sandbox) -> Result:
    """Test and case names never reach the generated code: `trunc`, `index`
    as names of a test's cases were refused as C builtins (exit 1)."""
    text = EXAMPLE.read_text() + """
(defbpf-test index :program drop-syn :cases ((trunc :packet ((eth) (ipv4)) :expect :xdp-pass)))
"""
    sb.source("n.tlisp", text)
    return expect(sb.run("check", "n.tlisp"), (0,))


CASES.update({
    "junit-is-out": (junit_is_out, False),
    "source-note-whole-sentence": (_whole_notes("(defbpf-struct ev (a u8))\n"
                                                "(defbpf-map m :kind :hash :key u32 :value evv :max-entries 4)\n"), False),
    "source-trigger-on-xdp": (_caret("(defbpf-program p :kind :xdp :attach (:target \"eth0\"))\n"
                                     "(bpf-fn p (ctx) (return :xdp-pass))\n"
                                     "(defbpf-test t :program p :trigger ((open \"/init\")))\n", "(defbpf-test t"), False),
    "source-case-named-like-c-builtin": (case_named_like_builtin, False),
    "build-perf-record-near-stack-limit": (perf_record_near_stack_limit, False),
    "junit-over-user-file": (_junit_refused(_user_report), False),
    "junit-over-pytest-report": (_junit_refused(_pytest_report), False),
    "junit-symlink": (_junit_refused(_report_link), False),
    "junit-directory": (_junit_refused(_report_dir), False),
    "junit-the-source": (_junit_refused(_report_source), False),
    "junit-fifo": (_junit_refused(_report_fifo), False),
    "junit-char-device": (junit_dev_null, False),
    "junit-own-previous": (junit_own_previous, False),
    "junit-empty-file": (junit_empty_file, False),
    "junit-unwritable": (junit_unwritable, False),
    "junit-empty-string": (junit_empty_string, False),
    "junit-inside-out-then-rebuild": (junit_inside_out, False),
    "json-junit-refused": (json_junit_refused, False),
    "path-spaces-unicode": (path_spaces_unicode, False),
    "path-newline-escape-in-name": (path_newline_name, False),
    "path-newline-build": (path_newline_build, False),
    "path-very-long-out": (path_very_long_out, False),
    "path-deeper-than-path-max": (path_very_deep_out, False),
    "path-long-source-name": (path_long_source, False),
    "out-trailing-slash": (out_trailing_slash, False),
    "out-is-the-cache": (out_is_cache, False),
    "cache-inside-out": (cache_inside_out, False),
    "concurrent-builds-same-out": (concurrent_same_out, False),
    "sigterm-while-loading": (sigterm_while_loading, False),
    "sigint-while-checking": (sigint_while_checking, False),
    "sigterm-at-start": (sigterm_at_start, False),
    "sighup-build-in-clang": (sighup_build_clang, False),
    "readonly-cache": (readonly_cache, False),
    "full-disk-out": (full_disk_out, False),
    "full-disk-cache": (full_disk_cache, False),
    "full-disk-tmpdir": (full_disk_tmp, False),
    "manifest-garbage": (_manifest_edit("{not json"), False),
    "manifest-empty": (_manifest_edit(""), False),
    "manifest-objects-not-list": (_manifest_edit('{"tatara_build_version": "0", "objects": 7}'), False),
    "manifest-traversal-entries": (manifest_traversal, False),
    "source-binary": (_source_bytes(bytes(range(256)) * 8), False),
    "source-invalid-utf8": (_source_bytes(b"(defbpf-map x :kind :array)\n; caf\xe9\n(\xff)\n"), False),
    "source-nul-bytes": (_source_bytes(b"(defbpf-map x\0 :kind :array)\n"), False),
    "source-bom": (_source_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes(), codes=(0,)), False),
    "source-bom-error-caret": (_caret("\ufeff(defbpf-map x :kind :nope)\n", "(defbpf-map"), False),
    "source-utf16": (_source_bytes(EXAMPLE.read_text().encode("utf-16")), False),
    "source-symlink-to-dev-zero": (source_symlink_to_dev, False),
    "source-mode-000": (source_unreadable, False),
    "env-vendor-dir-garbage": (env_case({"TATARA_VENDOR_DIR": "/nonexistent\n$(rm -rf /)"}, (0, 3)), False),
    "env-provenance-garbage": (env_case({"TATARA_PROVENANCE": "{not json"}, (0, 3)), False),
    "env-provenance-list": (env_case({"TATARA_PROVENANCE": "[1,2]"}, (0, 3)), False),
    "env-clang-garbage": (env_case({"TATARA_CLANG": "/nonexistent/clang"}, (0, 3)), False),
    "env-clang-not-clang": (env_case({"TATARA_CLANG": "/bin/true"}, (0, 3)), False),
    "env-llvm-bin-garbage": (env_case({"TATARA_LLVM_BIN": "/nonexistent"}, (0, 3)), False),
    "env-vm-accel-garbage": (env_case({"TATARA_VM_ACCEL": "warp"}, (0, 2, 3)), False),
    "env-debug-garbage": (env_case({"TATARA_DEBUG": "\x1b[31m"}, (0,)), False),
    "env-source-date-epoch-garbage": (env_case({"SOURCE_DATE_EPOCH": "yesterday"}, (0, 3)), False),
    "env-home-unset": (env_case({"HOME": None, "XDG_CACHE_HOME": None}, (0, 3)), False),
    "env-home-nonexistent": (env_case({"HOME": "/nonexistent/home", "XDG_CACHE_HOME": None}, (0, 3)), False),
    "env-xdg-relative": (xdg_relative, False),
    "env-xdg-is-a-file": (xdg_is_file, False),
    "env-tmpdir-missing": (env_case({"TMPDIR": "{root}/no-such-tmp"}, (0, 3)), False),
    "env-cargo-home-garbage": (env_case({"CARGO_HOME": "/nonexistent"}, (0,)), False),
    "cwd-deleted": (cwd_deleted, False),
    "stdout-closed-pipe": (stdout_closed_pipe, False),
    "stdout-dev-full": (stdout_full, False),
    "ascii-locale-unicode-error": (ascii_locale, False),
    "emit-unicode-out": (emit_unicode_out, False),
})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--no-vm", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    args = parser.parse_args()
    names = args.names or [n for n, (_, vm) in CASES.items() if not (vm and args.no_vm)]
    bad = 0
    with tempfile.TemporaryDirectory(prefix="hostile-") as base:
        for name in names:
            fn, _ = CASES[name]
            sb = Sandbox(Path(base) / name)
            started = time.monotonic()
            try:
                result = fn(sb)
            except Exception as err:  # the harness's own failure: say so
                result = Result("harness", False, f"{type(err).__name__}: {err}")
            result = result or Result("skip", False, "cannot set up here")
            bad += result.verdict != "ok" and result.code != "skip"
            row = {"case": name, "exit": result.code, "traceback": result.traceback, "verdict": result.verdict,
                   "seconds": round(time.monotonic() - started, 1)}
            print(json.dumps(row) if args.json else
                  f"{name:32} exit {str(result.code):>7}  {'TRACEBACK ' if result.traceback else ''}{result.verdict}",
                  flush=True)
            for path in sb.root.rglob("*"):  # let the temp dir go even after chmods
                if path.is_dir() and not path.is_symlink():
                    path.chmod(0o755)
    print(f"{len(names)} cases, {bad} not holding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
