"""The object cache: a key finds only its own object, entries appear whole or not at all, and
no temp dir outlives a store, whether it succeeded or failed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tatara_build.compile import cache


def object_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith((".tmp", ".bad"))]


def test_cache_root_follows_xdg_cache_home_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache.cache_root() == tmp_path / "x" / "tatara-build"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv("XDG_CACHE_HOME")
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert cache.cache_root() == tmp_path / "home" / ".cache" / "tatara-build"


def test_a_relative_xdg_cache_home_is_ignored_and_a_missing_home_is_not_an_error(monkeypatch, tmp_path):
    """XDG: a relative XDG_CACHE_HOME is invalid (it would follow the cwd, into
    OUT even). Without HOME the user's passwd home is used; without either, a
    directory of the user's under the temp dir."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "rel-cache")
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "tatara-build"
    monkeypatch.delenv("XDG_CACHE_HOME")
    for home in (None, "relative/home"):
        if home is None:
            monkeypatch.delenv("HOME")
        else:
            monkeypatch.setenv("HOME", home)
        import pwd

        assert cache.cache_root() == Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "tatara-build"
        monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
        (tmp_path / "t").mkdir(exist_ok=True)
        monkeypatch.setenv("TMPDIR", str(tmp_path / "t"))
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", None)
        assert cache.cache_root() == tmp_path / "t" / f"tatara-build-cache-{os.getuid()}"
        monkeypatch.undo()
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def test_two_keys_sharing_a_prefix_never_share_an_entry(tmp_path, isolated_cache):
    first = "ab" + "0" * 61 + "1"
    second = "ab" + "0" * 61 + "2"
    cache.store(first, object_file(tmp_path, "one.o", b"first object"), {"n": 1})
    assert cache.lookup(second) is None
    cache.store(second, object_file(tmp_path, "two.o", b"second object"), {"n": 2})
    assert cache.lookup(first).read_bytes() == b"first object"
    assert cache.lookup(second).read_bytes() == b"second object"
    # keys that differ only in their first characters too
    third = "ba" + first[2:]
    assert cache.lookup(third) is None
    assert cache.lookup(first[:-1]) is None


def test_a_stored_entry_has_the_object_and_its_meta_under_the_cache_root(tmp_path, isolated_cache):
    k = cache.key(sources="s", toolchain="t", flags=["-O2"])
    cache.store(k, object_file(tmp_path, "a.o", b"\x7fELF..."), {"stem": "a", "toolchain": "clang 19"})
    found = cache.lookup(k)
    assert found is not None and found.read_bytes() == b"\x7fELF..."
    assert found.is_relative_to(isolated_cache)
    meta = json.loads((found.parent / "meta.json").read_text())
    assert meta == {"stem": "a", "toolchain": "clang 19"}
    assert leftovers(isolated_cache) == []


def test_the_first_writer_wins_and_a_later_store_changes_nothing(tmp_path, isolated_cache):
    k = cache.key(x=1)
    cache.store(k, object_file(tmp_path, "a.o", b"winner"), {"n": 1})
    cache.store(k, object_file(tmp_path, "b.o", b"loser"), {"n": 2})
    assert cache.lookup(k).read_bytes() == b"winner"
    assert json.loads((cache.lookup(k).parent / "meta.json").read_text()) == {"n": 1}
    assert leftovers(isolated_cache) == []


def test_a_failed_store_leaves_no_entry_and_no_temp_dir(tmp_path, isolated_cache):
    k = cache.key(x=2)
    cache.store(k, tmp_path / "missing.o", {"n": 1})  # copying fails: OSError is swallowed
    assert cache.lookup(k) is None
    assert leftovers(isolated_cache) == []
    # the failed attempt does not block a later good one
    cache.store(k, object_file(tmp_path, "ok.o", b"ok"), {})
    assert cache.lookup(k).read_bytes() == b"ok"


def test_an_entry_without_its_object_is_a_miss(tmp_path, isolated_cache):
    k = cache.key(x=3)
    cache.store(k, object_file(tmp_path, "a.o", b"x"), {})
    cache.lookup(k).unlink()
    assert cache.lookup(k) is None


def test_an_unwritable_cache_is_skipped_without_error(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    k = cache.key(x=4)
    cache.store(k, object_file(tmp_path, "a.o", b"x"), {})
    assert cache.lookup(k) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_a_read_only_cache_leaves_no_temp_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    k = cache.key(x=5)
    shard = cache.cache_root() / "objects" / k[:2]
    shard.mkdir(parents=True)
    shard.chmod(0o500)
    try:
        cache.store(k, object_file(tmp_path, "a.o", b"x"), {})
        assert cache.lookup(k) is None and leftovers(tmp_path / "xdg") == []
    finally:
        shard.chmod(0o700)


def test_key_depends_on_every_part_and_not_on_their_order():
    assert cache.key(a=1, b="x") == cache.key(b="x", a=1)
    assert len({cache.key(a=1, b="x"), cache.key(a=2, b="x"), cache.key(a=1, b="y"), cache.key(a=1),
                cache.key(a=1, b="x", c=None)}) == 5
    assert len(cache.key(a=1)) == 64 and int(cache.key(a=1), 16) >= 0


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_tree_digest_sees_bytes_names_and_nesting_but_not_the_location(tmp_path):
    base = {"a.c": b"int a;", "sub/b.h": b"#define B 1"}
    digest = cache.tree_digest(tree(tmp_path / "one", base))
    assert cache.tree_digest(tree(tmp_path / "two", base)) == digest
    assert cache.tree_digest(tree(tmp_path / "bytes", {**base, "a.c": b"int a; "})) != digest
    assert cache.tree_digest(tree(tmp_path / "name", {"A.c": b"int a;", "sub/b.h": b"#define B 1"})) != digest
    assert cache.tree_digest(tree(tmp_path / "flat", {"a.c": b"int a;", "b.h": b"#define B 1"})) != digest
    assert cache.tree_digest(tree(tmp_path / "more", {**base, "c": b""})) != digest
    # swapping contents between two names is a different tree
    assert cache.tree_digest(tree(tmp_path / "swap", {"a.c": b"#define B 1", "sub/b.h": b"int a;"})) != digest
    # a name/content boundary cannot be shifted: "ab" + "c" is not "a" + "bc"
    assert cache.tree_digest(tree(tmp_path / "s1", {"ab": b"c"})) != cache.tree_digest(tree(tmp_path / "s2", {"a": b"bc"}))
    empty_dir = tree(tmp_path / "dirs", base)
    (empty_dir / "empty").mkdir()
    assert cache.tree_digest(empty_dir) == digest
    os.utime(tmp_path / "one" / "a.c", (0, 0))
    assert cache.tree_digest(tmp_path / "one") == digest


def test_key_accepts_paths_and_other_objects_by_their_text():
    assert cache.key(src=Path("/a/b"), flags=("-O2",)) == cache.key(src="/a/b", flags=["-O2"])


def test_tree_digest_is_the_documented_hash_of_names_and_contents(tmp_path):
    import hashlib

    root = tree(tmp_path / "t", {"b.c": b"bee", "a/z.h": b"zed", "a/y": b""})
    expected = hashlib.sha256()
    for rel in ("a/y", "a/z.h", "b.c"):  # sorted relative paths, "/"-separated
        expected.update(rel.encode() + b"\0")
        expected.update(hashlib.sha256((root / rel).read_bytes()).digest())
    assert cache.tree_digest(root) == expected.hexdigest()


def test_entry_meta_is_written_the_same_whatever_the_dict_order(tmp_path, isolated_cache):
    k1, k2 = cache.key(x="m1"), cache.key(x="m2")
    cache.store(k1, object_file(tmp_path, "a.o", b"x"), {"z": 1, "a": [2, 3]})
    cache.store(k2, object_file(tmp_path, "b.o", b"x"), {"a": [2, 3], "z": 1})
    texts = {(cache.lookup(k).parent / "meta.json").read_text() for k in (k1, k2)}
    assert texts == {'{\n  "a": [\n    2,\n    3\n  ],\n  "z": 1\n}'}


def test_a_store_works_when_the_system_temp_dir_is_unusable(tmp_path, isolated_cache, monkeypatch):
    """The entry is written beside its final place, so the rename is one atomic step on the
    cache's own filesystem: the system temp dir (another filesystem, or none) is never used."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-dir"))
    k = cache.key(x=6)
    cache.store(k, object_file(tmp_path, "a.o", b"stored without /tmp"), {})
    assert cache.fetch(k) == b"stored without /tmp"
    (cache.lookup(k).parent / cache.OBJECT).write_bytes(b"damaged")
    assert cache.fetch(k) is None and cache.lookup(k) is None  # removed, again without /tmp
    cache.store(k, object_file(tmp_path, "b.o", b"stored again"), {})
    assert cache.fetch(k) == b"stored again"
    assert not (tmp_path / "no-such-temp-dir").exists() and leftovers(isolated_cache) == []


def test_an_object_swapped_for_a_symlink_is_never_served(tmp_path, isolated_cache):
    """Even a symlink to bytes that match the recorded sha256 is refused (and the entry
    removed): the cache serves only the file it wrote."""
    k = cache.key(x=7)
    cache.store(k, object_file(tmp_path, "a.o", b"genuine"), {})
    entry = cache.lookup(k).parent
    elsewhere = object_file(tmp_path, "elsewhere.o", b"genuine")
    (entry / cache.OBJECT).unlink()
    (entry / cache.OBJECT).symlink_to(elsewhere)
    assert cache.fetch(k) is None and cache.lookup(k) is None
    assert not entry.exists() and elsewhere.read_bytes() == b"genuine"


def test_a_damaged_entry_is_removed_whole_and_the_next_store_repairs_it(tmp_path, isolated_cache):
    k = cache.key(x=8)
    cache.store(k, object_file(tmp_path, "a.o", b"good object"), {})
    entry = cache.lookup(k).parent
    (entry / cache.OBJECT).write_bytes(b"flipped")
    assert cache.fetch(k) is None
    assert not entry.exists() and leftovers(isolated_cache) == []
    cache.store(k, object_file(tmp_path, "b.o", b"good object"), {})
    assert cache.fetch(k) == b"good object"
