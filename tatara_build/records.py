"""`dataclass` and `field` for the modules `check` imports, without the
standard library's cost (issue 18): `dataclasses` imports `inspect` (and
with it `ast`, `dis`, `tokenize`), and compiles five or six functions per
class; the 16 classes of tables.py alone took a quarter of `check`'s start-up.

Here the methods are shared functions that read the class's field list, so
a class costs no compile. A class built very often (the reader's data) gets
a generated __init__ once it has built enough instances to repay it.

Supported, as the standard library does them: fields from annotations
(inheriting the base's first), defaults and `field(default=…,
default_factory=…)`, positional or keyword __init__, `__post_init__`,
`frozen`, `slots`, `eq`, `repr`, the hash a frozen (or unhashable)
dataclass has, and methods the class defines itself win.
`dataclasses.replace` and `dataclasses.is_dataclass` work on instances (a
`__dataclass_fields__` of the same shape)."""

from __future__ import annotations

from typing import Any

_MISSING = object()


class FrozenInstanceError(AttributeError):
    pass


class _Field:
    """What `dataclasses.replace` reads of a field."""

    __slots__ = ("name", "default", "default_factory")
    init = True
    _field_type = None  # neither a ClassVar nor an InitVar

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING):
        self.name = ""
        self.default, self.default_factory = default, default_factory


def field(*, default: Any = _MISSING, default_factory: Any = _MISSING) -> Any:
    return _Field(default, default_factory)


def dataclass(cls: type | None = None, /, *, frozen: bool = False, slots: bool = False, eq: bool = True,
              repr: bool = True):  # noqa: A002  (dataclass's own parameter name)
    def wrap(cls: type) -> type:
        return _process(cls, frozen, slots, eq, repr)

    return wrap if cls is None else wrap(cls)


def _process(cls: type, frozen: bool, slots: bool, eq: bool, want_repr: bool) -> type:
    fields: dict[str, _Field] = dict(getattr(cls, "__dataclass_fields__", {}))
    body = cls.__dict__
    for name in body.get("__annotations__", {}):
        value = body.get(name, _MISSING)
        made = value if isinstance(value, _Field) else _Field(default=value)
        made.name = name
        fields[name] = made
    if slots:
        cls = _with_slots(cls, [n for n in body.get("__annotations__", {}) if not _in_base_slots(cls, n)])
    for name, made in fields.items():
        if name in body.get("__annotations__", {}) and not slots:
            if made.default is _MISSING:
                if name in cls.__dict__:
                    delattr(cls, name)  # a default_factory field: no class attribute
            else:
                setattr(cls, name, made.default)
    cls.__dataclass_fields__ = fields
    cls._record_plan = tuple((n, f.default, f.default_factory) for n, f in fields.items())
    own = cls.__dict__
    if "__init__" not in own:
        cls.__init__ = _init
    if want_repr and "__repr__" not in own:
        cls.__repr__ = _repr
    if eq and "__eq__" not in own:
        cls.__eq__ = _eq
    explicit_hash = own.get("__hash__", None) is not None
    if not explicit_hash:
        if eq and frozen:
            cls.__hash__ = _hash
        elif eq:
            cls.__hash__ = None
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
    return cls


def _in_base_slots(cls: type, name: str) -> bool:
    return any(name in getattr(base, "__slots__", ()) for base in cls.__mro__[1:])


def _with_slots(cls: type, names: list[str]) -> type:
    """`cls` made again with __slots__ (a class's slots are fixed when it is made)."""
    body = {k: v for k, v in cls.__dict__.items() if k not in names and k not in ("__dict__", "__weakref__")}
    body["__slots__"] = tuple(names)
    body["__qualname__"] = cls.__qualname__
    return type(cls)(cls.__name__, cls.__bases__, body)


_BUILT: dict[type, int] = {}
_SPECIALISE_AFTER = 256


def _init(self, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    built = _BUILT.get(cls, 0) + 1
    _BUILT[cls] = built
    if built == _SPECIALISE_AFTER and cls.__init__ is _init:
        _specialise(cls)
    plan = cls._record_plan
    if len(args) > len(plan):
        raise TypeError(f"{cls.__name__}() takes {len(plan)} positional arguments but {len(args)} were given")
    put = object.__setattr__
    for i, (name, default, factory) in enumerate(plan):
        if i < len(args):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for argument '{name}'")
            put(self, name, args[i])
        elif name in kwargs:
            put(self, name, kwargs[name])
        elif default is not _MISSING:
            put(self, name, default)
        elif factory is not _MISSING:
            put(self, name, factory())
        else:
            raise TypeError(f"{cls.__name__}() missing required argument: '{name}'")
    if len(args) + len(kwargs) > len(plan) or any(k not in cls.__dataclass_fields__ for k in kwargs):
        unknown = sorted(k for k in kwargs if k not in cls.__dataclass_fields__)
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument '{unknown[0] if unknown else '?'}'")
    post = getattr(self, "__post_init__", None)
    if post is not None:
        post()


def _specialise(cls: type) -> None:
    """The __init__ the standard library would have generated, made once
    the class has shown it is built often."""
    import keyword

    plan = cls._record_plan
    if any(keyword.iskeyword(n) or n in ("self", "_put", "_D", "_F") for n, _, _ in plan):
        return
    params, lines, names = [], [], {"_put": object.__setattr__, "_M": _MISSING}
    seen_default = False
    frozen = cls.__setattr__ is _frozen_setattr
    for i, (name, default, factory) in enumerate(plan):
        if default is not _MISSING or factory is not _MISSING:
            seen_default = True
            names[f"_D{i}"], names[f"_F{i}"] = default, factory
            params.append(f"{name}=_M")
            fill = f"_D{i}" if default is not _MISSING else f"_F{i}()"
            value = f"{fill} if {name} is _M else {name}"
            lines.append(f"    _put(self, {name!r}, {value})" if frozen else f"    self.{name} = {value}")
        else:
            if seen_default:
                return  # a required field after a defaulted one: not a valid signature
            params.append(name)
            lines.append(f"    _put(self, {name!r}, {name})" if frozen else f"    self.{name} = {name}")
    if getattr(cls, "__post_init__", None) is not None:
        lines.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines or ["    pass"]) + "\n"
    exec(source, names)  # noqa: S102  (field names are our own identifiers)
    cls.__init__ = names["__init__"]


def _values(self) -> tuple:
    return tuple(getattr(self, name) for name, _, _ in type(self)._record_plan)


def _repr(self) -> str:
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name, _, _ in type(self)._record_plan)
    return f"{type(self).__qualname__}({inner})"


def _eq(self, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self) -> int:
    return hash(_values(self))


def _frozen_setattr(self, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field '{name}'")


def _frozen_delattr(self, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field '{name}'")
