"""Plain, slotted record classes with the slice of pydantic's model API the
IR uses (issue 18): building the IR's ~70 pydantic models and importing
pydantic took most of `check`'s start-up, and `check` never validates.

    class Int(Node):              # fields from the class annotations, in
        value: int                # declaration order after the base's;
        form: Literal["int"] = "int"   # defaults copied per instance when mutable

Instances are built from keyword arguments without validation (the
frontend checked the values), compare field by field, and dump with
`model_dump` / `model_copy` as pydantic's would. Validation of data from
outside (`model_validate`, `model_validate_json`) and `model_json_schema`
go through pydantic models mirrored from these classes on first use
(model_mirror.py), so the JSON and the schema stay pydantic's."""

from __future__ import annotations

import sys
from typing import Any

from .types import Type

_REQUIRED = object()  # the default of a field without one
_MUTABLE = (list, dict, set)
_CLASSES: list[type] = []  # every model class, in definition order (model_mirror.py)


class FieldInfo:
    """What `cls.model_fields[name]` says of a field; the annotation is
    evaluated when asked for (the classes' annotations are strings)."""

    __slots__ = ("owner", "name", "default")

    def __init__(self, owner: type, name: str, default: Any):
        self.owner, self.name, self.default = owner, name, default

    def is_required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def annotation(self) -> Any:
        source, module = self.owner._annotations[self.name]
        return eval(source, vars(sys.modules[module]))  # noqa: S307  (our own class annotations)


class _ModelMeta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any], frozen: bool = False, **config: Any):
        inherited = dict(getattr(bases[0], "_annotations", {})) if bases else {}
        defaults = dict(getattr(bases[0], "_defaults", {})) if bases else {}
        own = ns.get("__annotations__", {})
        for field, source in own.items():
            inherited[field] = (source, ns.get("__module__", ""))
            if field in ns:
                defaults[field] = ns.pop(field)
            else:
                defaults.pop(field, None)
        ns["__slots__"] = tuple(f for f in own if not any(hasattr(b, "_annotations") and f in b._annotations for b in bases))
        if frozen:
            ns["__setattr__"] = _refuse
        # every class its own __init__, so that one class's specialised
        # __init__ (_specialise) is never inherited by another
        ns.setdefault("__init__", _generic_init)
        cls = super().__new__(mcs, name, bases, ns)
        cls._annotations = inherited
        cls._defaults = defaults
        cls._fields = tuple(inherited)
        cls._frozen = frozen or getattr(cls, "_frozen", False)
        cls._config = {**getattr(cls, "_config", {}), **config, **({"frozen": True} if frozen else {})}
        # each slot's own setter: __init__ skips __setattr__ (which a frozen class refuses)
        cls._plan = tuple(
            (f, defaults.get(f, _REQUIRED), isinstance(defaults.get(f), _MUTABLE), _slot(cls, f).__set__)
            for f in cls._fields
        )
        cls._model_fields = None
        if cls._fields or own:
            _CLASSES.append(cls)
        return cls

    @property
    def model_fields(cls) -> dict[str, FieldInfo]:
        if cls._model_fields is None:
            cls._model_fields = {f: FieldInfo(cls, f, cls._defaults.get(f, _REQUIRED)) for f in cls._fields}
        return cls._model_fields


def _slot(cls: type, field: str):
    for klass in cls.__mro__:
        if field in klass.__dict__.get("__slots__", ()):
            return klass.__dict__[field]
    raise TypeError(f"{cls.__name__}.{field} has no slot")


def _refuse(self, name: str, value: Any) -> None:
    raise TypeError(f"{type(self).__name__} is frozen: `{name}` cannot be set")


def _restore(cls: type, values: tuple) -> Any:
    """An instance from its field values in order (copies, pickling)."""
    obj = object.__new__(cls)
    for (_, _, _, setter), value in zip(cls._plan, values):
        setter(obj, value)
    return obj


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, Model):
        out = {}
        for field in value._fields:
            item = getattr(value, field)
            if item is None and exclude_none:
                continue
            out[field] = _dump(item, exclude_none)
        return out
    if isinstance(value, (list, tuple)):
        return [_dump(item, exclude_none) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item, exclude_none) for key, item in value.items()}
    if isinstance(value, Type):
        return value.spell()  # a checker type is its spelling in JSON (types.py)
    return value


_BUILT: dict[type, int] = {}  # instances built per class by the generic __init__
_SPECIALISE_AFTER = 64


def _generic_init(self, **values: Any) -> None:
    cls = type(self)
    built = _BUILT.get(cls, 0) + 1
    _BUILT[cls] = built
    if built == _SPECIALISE_AFTER:
        _specialise(cls)
    used = 0
    for field, default, mutable, setter in cls._plan:
        if field in values:
            setter(self, values[field])
            used += 1
        elif default is _REQUIRED:
            _missing(cls, field)
        else:
            setter(self, default.copy() if mutable else default)
    if used != len(values):
        _unknown(cls, values)


def _specialise(cls: type) -> None:
    """Give a class that builds many instances an __init__ of its own, with
    its fields as keyword parameters: 2-3x faster than the generic loop,
    which a large file (hundreds of thousands of nodes) notices; the code is
    made only then, so a small file pays no compile."""
    import keyword

    if any(keyword.iskeyword(f) or f in ("self", "cls", "extra") or f[0] in "_SD" for f in cls._fields):
        return  # a name the generated code could not use as a parameter
    params, body, names = [], [], {"_R": _REQUIRED, "_missing": _missing, "_unknown": _unknown, "cls": cls}
    for n, (field, default, mutable, setter) in enumerate(cls._plan):
        names[f"S{n}"], names[f"D{n}"] = setter, default
        params.append(f"{field}=D{n}")
        if default is _REQUIRED:
            body.append(f"    if {field} is _R: _missing(cls, {field!r})")
        value = f"(D{n}.copy() if {field} is D{n} else {field})" if mutable else field
        body.append(f"    S{n}(self, {value})")
    source = f"def __init__(self, *, {', '.join(params)}, **extra):\n" + "\n".join(body) + "\n    if extra: _unknown(cls, extra)\n"
    exec(source, names)  # noqa: S102  (field names are our own identifiers)
    cls.__init__ = names["__init__"]


def _missing(cls: type, field: str) -> None:
    raise TypeError(f"{cls.__name__}: missing field `{field}`")


def _unknown(cls: type, values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(cls._fields)) or sorted(values)
    raise TypeError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")


class Model(metaclass=_ModelMeta):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        if not self._frozen:
            raise TypeError(f"unhashable type: '{type(self).__name__}'")
        return hash((type(self), *(getattr(self, f) for f in self._fields)))

    def __reduce__(self):
        return _restore, (type(self), tuple(getattr(self, f) for f in self._fields))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__repr_str__(', ')})"

    def __str__(self) -> str:
        return self.__repr_str__(" ")

    def __repr_str__(self, sep: str) -> str:
        return sep.join(f"{f}={getattr(self, f)!r}" for f in self._fields)

    @property
    def model_fields_set(self) -> set[str]:
        """Every field: an instance always holds a value for each."""
        return set(self._fields)

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False) -> dict[str, Any]:
        # the IR holds only JSON's own types, so both modes give the same
        return _dump(self, exclude_none)

    def model_dump_json(self, *, indent: int | None = None, exclude_none: bool = False) -> str:
        import json

        return json.dumps(_dump(self, exclude_none), indent=indent)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        values = {f: getattr(self, f) for f in self._fields}
        if deep:
            import copy

            values = copy.deepcopy(values)
        values.update(update or {})
        return _restore(type(self), tuple(values[f] for f in self._fields))

    @classmethod
    def model_validate(cls, data: Any):
        from .model_mirror import validate

        return validate(cls, data)

    @classmethod
    def model_validate_json(cls, text: str | bytes):
        from .model_mirror import validate_json

        return validate_json(cls, text)

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        from .model_mirror import mirror

        return mirror(cls).model_json_schema()


class Field:
    """`Annotated[str, Field(pattern=…)]`: arguments of pydantic's `Field`,
    which the mirrored models apply (validation, schema)."""

    __slots__ = ("kwargs",)

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs
