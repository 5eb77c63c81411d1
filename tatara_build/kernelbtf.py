"""The pinned kernels' own types, read from their BTF: what `core-read`,
`tp-field` and LSM `arg` are checked against and placed by.

Where the data comes from (a decision, see docs/language.md): nothing is
committed. Each pinned kernel's `vmlinux` (extracted from the pinned Debian
package and checked by sha256, vm/kernels.py) carries a `.BTF` section;
the first time a program needs a kernel's types it is parsed here and a
compact index (every named struct and union with its members, anonymous
members flattened, the arity of every `bpf_lsm_<hook>`, and the record
struct of every built-in tracepoint, tpclasses.py) is cached under
$XDG_CACHE_HOME/tatara-build/btf/ keyed by the vmlinux's sha256 (~2 s to
build, ~0.05 s to load). Programs that use none of these forms never touch it, so
their `check` stays as fast as before. A kernel that is not downloaded is
fetched like `test` fetches it; when that fails, exit 3 says how to get it.

Member types are strings: `int:<bytes>:<s|u>`, `bool`, `enum:<bytes>`,
`ptr:<composite key or empty>`, `comp:<key>` (an embedded struct or union),
`array:<bytes per element>:<n>[:<s|u> of integers]`, `other:<what>`; composite keys are the
C name (`sock`) or `(anon)<id>` for an anonymous one with named members.
"""

from __future__ import annotations

import gzip
import marshal
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

INDEX_VERSION = 5  # 3: tp_records; 5: the sign of integer array elements
BTF_MAGIC = 0xEB9F
# kinds (include/uapi/linux/btf.h)
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC, \
    FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(1, 20)
_EXTRA = {INT: 4, ARRAY: 12, VAR: 4, DECL_TAG: 4}
_PER_ITEM = {STRUCT: 12, UNION: 12, ENUM: 8, FUNC_PROTO: 8, DATASEC: 12, ENUM64: 12}
_MODIFIERS = {TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG}
LSM_PREFIX = "bpf_lsm_"


class KernelDataError(Exception):
    """The kernel's types cannot be had (not downloaded and not fetchable,
    no .BTF): the caller turns it into an exit-3 error."""


@dataclass(frozen=True)
class Member:
    name: str
    offset_bits: int
    bitfield: int  # bit size of a bitfield member, 0 otherwise
    type: str


@dataclass
class Composite:
    key: str
    kind: str  # "struct" | "union"
    size: int
    members: dict[str, Member]  # anonymous members flattened in, offsets from this composite's start


class KernelTypes:
    """One kernel's index: composites by key, LSM hook arities."""

    def __init__(self, release: str, data: dict):
        self.release = release
        self._raw: dict[str, list] = data["composites"]  # made into Composites on first use
        self._made: dict[str, Composite] = {}
        self.lsm_hooks: dict[str, int] = data["lsm_hooks"]
        # "system/name" -> the trace_event_raw_* struct of its record (tpclasses)
        self.tp_records: dict[str, str] = data.get("tp_records", {})

    def named(self, key: str) -> Composite | None:
        """A struct or union by its C name (or anonymous key)."""
        made = self._made.get(key)
        if made is None and key in self._raw:
            kind, size, packed = self._raw[key]
            members = {}
            for line in packed.split("\n") if packed else ():
                name, offset, bitfield, type_ = line.split(" ")
                members[name] = Member(name, int(offset), int(bitfield), type_)
            made = self._made[key] = Composite(key, kind, size, members)
        return made

    def names(self) -> list[str]:
        return [k for k in self._raw if not k.startswith("(anon)")]


# --- reading .BTF ---------------------------------------------------------------


def btf_section(path: Path, data: bytes | None = None) -> bytes:
    """The `.BTF` section of an ELF vmlinux (its bytes, when already read)."""
    from .compile import elf  # the project's ELF reader (imported only to build an index)

    data = path.read_bytes() if data is None else data
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise KernelDataError(f"{path} is not an ELF64 kernel")
    start, size = elf.section_range(data, ".BTF")
    if size == 0:
        raise KernelDataError(f"{path} has no .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF)")
    return data[start:start + size]


def build_index(btf: bytes) -> dict:
    """Parse raw BTF into the cached index (see the module docstring)."""
    reader = _BtfReader(btf)
    return {"version": INDEX_VERSION, "composites": reader.composites(), "lsm_hooks": reader.lsm_hooks()}


_KIND_NAMES = ['void', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const',
               'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64']


class _BtfReader:
    """One raw .BTF blob: its type records by id, and what the index keeps of them."""

    def __init__(self, btf: bytes):
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", btf, 0)
        if magic != BTF_MAGIC:
            raise KernelDataError("not little-endian BTF")
        self.strings = btf[hdr_len + str_off:hdr_len + str_off + str_len]
        self.types = read_types(btf, hdr_len + type_off, hdr_len + type_off + type_len)
        self.keys: dict[int, str] = {}

    def name_at(self, off: int) -> str:
        return self.strings[off:self.strings.find(b"\0", off)].decode("ascii", "replace")

    def strip(self, tid: int) -> int:
        """Past typedefs and qualifiers (a bounded walk: BTF from disk may loop)."""
        seen = 0
        while self.types[tid][0] in _MODIFIERS and seen < 64:
            tid, seen = self.types[tid][3], seen + 1
        return tid

    def size_of(self, tid: int) -> int:
        kind, _, _, size_type, extra = self.types[self.strip(tid)]
        if kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT):
            return size_type
        if kind == PTR:
            return 8
        if kind == ARRAY:
            return self.size_of(extra[0]) * extra[2]
        return 0

    def key_of(self, tid: int) -> str:
        if tid not in self.keys:
            self.keys[tid] = self.name_at(self.types[tid][1]) or f"(anon){tid}"
        return self.keys[tid]

    def describe(self, tid: int) -> str:
        """The index's type string of a member (see the module docstring)."""
        tid = self.strip(tid)
        kind, _, info, size_type, extra = self.types[tid]
        if kind == INT:
            encoding = extra[0] >> 24
            return "bool" if encoding & 4 else f"int:{size_type}:{'s' if encoding & 1 else 'u'}"
        if kind in (ENUM, ENUM64):
            return f"enum:{size_type}"
        if kind == PTR:
            return self.describe_pointer(size_type)
        if kind in (STRUCT, UNION):
            return f"comp:{self.key_of(tid)}"
        if kind == ARRAY:
            # integer elements say their sign (core-read of an element); bytes
            # are u8 (`char` is signed in some kernels' BTF and not in others)
            elem, size = self.types[self.strip(extra[0])], self.size_of(extra[0])
            sign = ("s" if elem[4][0] >> 24 & 1 and size > 1 else "u") \
                if elem[0] == INT and not elem[4][0] >> 24 & 4 else ""
            return f"array:{size}:{extra[2]}" + (f":{sign}" if sign else "")
        return f"other:{_KIND_NAMES[kind]}"

    def describe_pointer(self, target: int) -> str:
        target = self.strip(target)
        if self.types[target][0] in (STRUCT, UNION):
            return f"ptr:{self.key_of(target)}"
        if self.types[target][0] == FWD:  # a declared-only struct: its name is the key
            return f"ptr:{self.name_at(self.types[target][1])}"
        return "ptr:"

    def flatten(self, tid: int, base: int, out: dict[str, list], depth: int = 0) -> None:
        """Members by name, anonymous members' own members flattened in at their offsets."""
        kind, _, info, _, members = self.types[tid]
        kind_flag = info >> 31
        for m_name_off, m_type, m_offset in members:
            bits, bitfield = (m_offset & 0xFFFFFF, m_offset >> 24) if kind_flag else (m_offset, 0)
            m_name = self.name_at(m_name_off)
            target = self.strip(m_type)
            if not m_name:
                if self.types[target][0] in (STRUCT, UNION) and depth < 16:
                    self.flatten(target, base + bits, out, depth + 1)
                continue
            out.setdefault(m_name, [m_name, base + bits, bitfield, self.describe(m_type)])

    def composites(self) -> dict[str, list]:
        """Every named struct and union, and the anonymous ones reached
        through named members (`struct { … } x;`), packed for the cache."""
        composites: dict[str, list] = {}
        wanted = [tid for tid, t in enumerate(self.types) if t[0] in (STRUCT, UNION) and t[1]]
        done: set[int] = set()
        while wanted:
            tid = wanted.pop()
            if tid in done:
                continue
            done.add(tid)
            members: dict[str, list] = {}
            self.flatten(tid, 0, members)
            key = self.key_of(tid)
            if key in composites and composites[key][2].count("\n") + 1 >= len(members):
                continue  # two types of one name (rare): keep the fuller
            packed = "\n".join(f"{m[0]} {m[1]} {m[2]} {m[3]}" for m in members.values())
            composites[key] = ["struct" if self.types[tid][0] == STRUCT else "union", self.types[tid][3], packed]
            for m in members.values():
                for prefix in ("comp:", "ptr:"):
                    if m[3].startswith(prefix + "(anon)"):
                        wanted.append(int(m[3].removeprefix(prefix + "(anon)")))
        return composites

    def lsm_hooks(self) -> dict[str, int]:
        """LSM hook name -> its argument count (from the bpf_lsm_* functions)."""
        hooks: dict[str, int] = {}
        for kind, name_off, _info, size_type, _extra in self.types:
            if kind == FUNC:
                name = self.name_at(name_off)
                if name.startswith(LSM_PREFIX):
                    proto = self.types[size_type]
                    hooks[name.removeprefix(LSM_PREFIX)] = proto[4] if proto[0] == FUNC_PROTO else 0
        return hooks


def read_types(btf: bytes, pos: int, end: int) -> list[tuple]:
    """The type records by id; id 0 is void: (kind, name offset, info, size or type, extra)."""
    types: list[tuple] = [(0, "", 0, 0, None)]
    unpack = struct.unpack_from
    while pos < end:
        name_off, info, size_type = unpack("<III", btf, pos)
        pos += 12
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        extra = None
        if kind in _EXTRA:
            extra = unpack("<III" if kind == ARRAY else "<I", btf, pos)
            pos += _EXTRA[kind]
        elif kind in _PER_ITEM:
            if kind in (STRUCT, UNION):
                extra = [unpack("<III", btf, pos + i * 12) for i in range(vlen)]
            elif kind == FUNC_PROTO:
                extra = vlen
            pos += vlen * _PER_ITEM[kind]
        types.append((kind, name_off, info, size_type, extra))
    return types


# --- the cache ------------------------------------------------------------------------

_LOADED: dict[str, KernelTypes] = {}


def _cache_dir() -> Path:
    from .memo import cache_root

    return cache_root() / "btf"


def _entry(sha256: str) -> str:
    # marshal: 10x faster to load than JSON; its format is Python's own, so
    # the entry is per Python version (another one rebuilds its own).
    return f"{sha256}.py{marshal.version}.marshal.gz"


def _cached(sha256: str) -> dict | None:
    """A cached index built from the vmlinux of this sha256 (gzip's CRC
    catches a damaged file; the entry names the sha256 it was built from)."""
    try:
        data = marshal.loads(gzip.decompress((_cache_dir() / _entry(sha256)).read_bytes()))
    except (OSError, ValueError, EOFError, TypeError):
        return None
    ok = isinstance(data, dict) and data.get("version") == INDEX_VERSION and data.get("vmlinux_sha256") == sha256
    return data if ok else None


def index_for(release: str, vmlinux: Path, sha256: str) -> KernelTypes:
    """The index of one kernel from the cache, built from its vmlinux (whose
    sha256 the caller has checked) when absent or unreadable."""
    if sha256 in _LOADED:
        return _LOADED[sha256]
    path = _cache_dir() / _entry(sha256)
    data = _cached(sha256)
    if data is None:
        data = build_full_index(vmlinux, sha256)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(gzip.compress(marshal.dumps(data), compresslevel=6, mtime=0))
            tmp.replace(path)
        except OSError:
            tmp.unlink(missing_ok=True)  # an unwritable cache: parse again next time
    types = KernelTypes(release, data)
    _LOADED[sha256] = types
    return types


def build_full_index(vmlinux: Path, sha256: str) -> dict:
    """The BTF index plus which struct lays out each tracepoint's record,
    found in the image's data (tpclasses)."""
    from . import tpclasses

    image = vmlinux.read_bytes()
    data = {**build_index(btf_section(vmlinux, image)), "vmlinux_sha256": sha256}
    data["tp_records"] = tpclasses.record_structs(image, KernelTypes("", data))
    return data


def kernel_types(release: str) -> KernelTypes:
    """The types of the pinned kernel of `release` (a line in tables.KERNEL_LINES).

    The kernel image comes from the shared kernel cache (fetched when
    missing, checked by sha256); raises KernelDataError when it cannot be had."""
    from .vm import kernels  # the one owner of the kernel cache (download, sha256 checks)

    pin = kernels.KERNELS.get(release)
    if pin is not None and pin.vmlinux_sha256:
        if pin.vmlinux_sha256 in _LOADED:
            return _LOADED[pin.vmlinux_sha256]
        data = _cached(pin.vmlinux_sha256)
        if data is not None:  # no need to hash the 70 MB image again
            _LOADED[pin.vmlinux_sha256] = KernelTypes(release, data)
            return _LOADED[pin.vmlinux_sha256]
    try:
        kernel = kernels.resolve_version(release)
    except Exception as e:  # UsageError, ToolchainError, PinDropped, OSError, apt failures
        raise KernelDataError(
            f"the types of kernel {release} come from its pinned Debian package, which is not in the cache "
            f"and could not be downloaded ({e}); fetch it with `tatara-build kernels --fetch {release}`") from None
    pin = kernels.KERNELS[release]
    if kernel.image.name != "vmlinux" or not pin.vmlinux_sha256:
        raise KernelDataError(f"kernel {release}: no ELF vmlinux could be extracted from {pin.package}, "
                              "so its BTF cannot be read")
    return index_for(release, kernel.image, pin.vmlinux_sha256)


# --- resolving a core-read path and tracepoint fields ----------------------------------


@dataclass(frozen=True)
class Step:
    """One member along a path: `member` of composite `container`."""

    container: str  # composite key (a C name, or `(anon)<id>`)
    container_kind: str  # "struct" | "union"
    member: str
    offset_bits: int  # from the container's start (an array element's: the element's)
    type: str  # the member's type string
    index: int | None = None  # `member[index]`: an element of an integer array
    bits: int = 0  # a bitfield's width (offset_bits is then its first bit)

    @property
    def value(self) -> str:
        """The type of what is read here: the member, its element, or the
        unsigned integer that holds its bits."""
        if self.bits:
            return f"int:{next(n for n in (1, 2, 4, 8) if n * 8 >= self.bits)}:u"
        if self.index is None:
            return self.type
        size, _, sign = self.type.split(":")[1:]
        return f"int:{size}:{sign}"


@dataclass(frozen=True)
class Hop:
    """One read: from a pointer to `root`, through embedded members, to the
    value read (an integer, or a pointer the next hop follows)."""

    root: str
    steps: tuple[Step, ...]

    @property
    def offset(self) -> int:
        return sum(s.offset_bits for s in self.steps) // 8

    @property
    def bit(self) -> int:
        """Where a bitfield starts in its first byte (0 for whole bytes)."""
        return sum(s.offset_bits for s in self.steps) % 8

    @property
    def type(self) -> str:
        return self.steps[-1].value


class PathError(Exception):
    """A path that does not resolve: `index` is the field at fault (-1: the
    struct itself), `choices` what the kernel has there."""

    def __init__(self, message: str, index: int, choices: list[str] = ()):
        super().__init__(message)
        self.index = index
        self.choices = list(choices)


def value_type(member_type: str) -> str | None:
    """The IR type a read of this member gives (None: not readable)."""
    if member_type.startswith("int:"):
        _, size, sign = member_type.split(":")
        return f"{'i' if sign == 's' else 'u'}{int(size) * 8}" if size in ("1", "2", "4", "8") else None
    if member_type == "bool":
        return "u8"
    if member_type.startswith("ptr:"):
        return "u64"
    if member_type.startswith("enum:") and member_type[5:] in ("1", "2", "4", "8"):
        return f"u{int(member_type[5:]) * 8}"  # its size; the BTF of 5.10 does not say an enum's sign
    return None


def describe_type(member_type: str) -> str:
    kind, _, rest = member_type.partition(":")
    if kind == "comp":
        return f"an embedded struct/union ({rest})" if not rest.startswith("(anon)") else "an anonymous struct/union"
    if kind == "array":
        size, n = rest.split(":")[:2]
        return f"an array ({n} x {size} bytes)"
    if kind == "enum":
        return f"an enum ({rest} bytes)"
    if kind == "ptr":
        return f"a pointer to {rest or 'a non-struct'}"
    return {"bool": "a bool", "other": f"a {rest}"}.get(kind, member_type)


def nested_fields(types: KernelTypes, comp: Composite) -> list[str]:
    """Fields one embedded struct down, spelled as the path to them
    (`__sk_common :skc_prot`): where the kernel's own macros point
    (`#define sk_prot __sk_common.skc_prot`)."""
    out = []
    for member in comp.members.values():
        inner = types.named(member.type.removeprefix("comp:")) if member.type.startswith("comp:") else None
        if inner is not None:
            out += [f"{member.name} :{name}" for name in inner.members]
    return out


def _element(step: Step, fields: list, i: int, shown: str, where: str) -> Step:
    """`:member INDEX`: element INDEX of an integer array member, read last."""
    parts = step.type.split(":")
    index = fields[i + 1] if i + 1 < len(fields) else None
    if not isinstance(index, int) or len(parts) != 4:
        what = describe_type(step.type)
        raise PathError(f"`{shown}.{step.member}` is {what} on {where}: " + (
            f"read one element with its index after it, e.g. :{step.member} 0" if len(parts) == 4 else
            "core-read reads elements of integer arrays only"), i)
    size, n = int(parts[1]), int(parts[2])
    if not 0 <= index < n:
        raise PathError(f"index {index} is out of range: `{shown}.{step.member}` has {n} elements on {where}", i + 1)
    if i + 2 != len(fields):
        raise PathError(f"an array element is an integer: nothing can be read through `{step.member} {index}`", i + 2)
    return Step(step.container, step.container_kind, step.member, step.offset_bits + index * size * 8, step.type,
                index)


def resolve_path(types: KernelTypes, struct: str, fields: list) -> tuple[Hop, ...]:
    """The reads of `(core-read PTR struct :f1 :f2 …)` on this kernel (an
    integer after an array field: its element)."""
    where = f"kernel {types.release}"
    comp = types.named(struct)
    if comp is None:
        raise PathError(f"{where} has no struct or union `{struct}` in its BTF", -1, types.names())
    hops: list[Hop] = []
    root, steps = comp, []
    for i, name in enumerate(fields):
        member = comp.members.get(name)
        last = i == len(fields) - 1
        owner = "struct" if comp.kind == "struct" else "union"
        shown = comp.key if not comp.key.startswith("(anon)") else f"{root.key}.{'.'.join(s.member for s in steps)}"
        if member is None:
            raise PathError(f"{owner} `{shown}` on {where} has no field `{name}`", i,
                            list(comp.members) + nested_fields(types, comp))
        if member.bitfield and (not last or not member.type.startswith("int:")):
            raise PathError(f"`{shown}.{name}` is a {member.bitfield}-bit bitfield on {where}: it is read last, "
                            "and only an integer's", i)
        steps.append(Step(comp.key, comp.kind, name, member.offset_bits, member.type, bits=member.bitfield))
        kind, _, target = member.type.partition(":")
        if kind != "array" and not last and isinstance(fields[i + 1], int):
            raise PathError(f"`{shown}.{name}` is {describe_type(member.type)} on {where}, not an array: an index "
                            f"({fields[i + 1]}) goes after an array field", i + 1)
        if kind == "array":
            steps[-1] = _element(steps[-1], fields, i, shown, where)
            hops.append(Hop(root.key, tuple(steps)))
            break
        if kind == "comp":
            inner = types.named(target)
            if last or inner is None:
                raise PathError(f"`{shown}.{name}` is {describe_type(member.type)} on {where}: name one of its "
                                "fields after it", i, list(inner.members) if inner else [])
            comp = inner
            continue
        if last:
            if value_type(member.type) is None:
                raise PathError(f"`{shown}.{name}` is {describe_type(member.type)} on {where}: core-read reads "
                                "integers, enums and pointers", i)
            hops.append(Hop(root.key, tuple(steps)))
            break
        if kind != "ptr" or not target or target.startswith("(anon)") or types.named(target) is None:
            raise PathError(f"`{shown}.{name}` is {describe_type(member.type)} on {where}: there is nothing to "
                            f"read through it, so it must be the last field", i)
        hops.append(Hop(root.key, tuple(steps)))
        root = comp = types.named(target)
        steps = []
    return tuple(hops)


TP_RECORD = "trace_event_raw_{}"
SYSCALL_EXIT = re.compile(r"(raw_)?syscalls/sys_exit(_[a-z0-9_]+)?")
TP_HIDDEN = ("ent", "__data")  # the common header and the dynamic area


def tracepoint_record(types: KernelTypes, target: str) -> Composite | None:
    """The BTF struct describing a tracepoint's record: its event class's
    as the kernel's data names it (tpclasses: trace_event_raw_<name> for a
    TRACE_EVENT, the template's for a DEFINE_EVENT), else
    trace_event_raw_<name>; the shared trace_event_raw_sys_exit of syscall exits."""
    if SYSCALL_EXIT.fullmatch(target):
        return types.named(TP_RECORD.format("sys_exit"))
    return types.named(types.tp_records.get(target) or TP_RECORD.format(target.partition("/")[2]))


DATA_LOC = "__data_loc_"


def tracepoint_member(fields: dict[str, Member], name: str) -> str | None:
    """The member `tp-field` reads for `name`: the field itself, or the
    `__data_loc_<name>` word of a dynamic string (read as its address)."""
    if name in fields:
        return name
    return DATA_LOC + name if DATA_LOC + name in fields else None


def tracepoint_fields(record: Composite, target: str) -> dict[str, Member]:
    """The fields `tp-field` may read: not the common header or the dynamic
    area; of a syscall exit only `ret` (its id slot is the 4-byte syscall
    number in the record the kernel writes)."""
    fields = {n: m for n, m in record.members.items() if n not in TP_HIDDEN}
    if SYSCALL_EXIT.fullmatch(target):
        fields = {n: m for n, m in fields.items() if n == "ret"}
    return fields
