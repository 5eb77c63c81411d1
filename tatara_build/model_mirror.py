"""pydantic models mirrored from model.py's classes: same names, fields,
defaults, docstrings and configuration, so that validating data from
outside and the published JSON Schema are exactly what they were when the
IR's classes were pydantic models. Built once, on first use: only `ir`'s
readers of JSON and `tatara-build schema` need them."""

from __future__ import annotations

import functools
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema
from pydantic import Field as PydanticField

from . import model
from .model import Model
from .types import Type, parse


def _read_type(value: Any) -> Type:
    if not isinstance(value, str):
        raise ValueError("a type is written as its spelling, e.g. \"u32\"")
    return parse(value)


def mirror(cls: type[Model]) -> type[BaseModel]:
    return _mirrors()[0][cls]


def validate(cls: type[Model], data: Any) -> Any:
    return plain(mirror(cls).model_validate(data))


def validate_json(cls: type[Model], text: str | bytes) -> Any:
    return plain(mirror(cls).model_validate_json(text))


def plain(value: Any) -> Any:
    """A validated mirror instance as the model.py instance it stands for."""
    cls = _mirrors()[1].get(type(value))
    if cls is not None:
        return model._restore(cls, tuple(plain(getattr(value, f)) for f in cls._fields))
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


@functools.cache
def _mirrors() -> tuple[dict[type, type[BaseModel]], dict[type, type]]:
    """({class: its mirror}, {mirror: class}). The mirrors are made first
    with placeholder annotations, then rebuilt with the real types, which
    may name any mirror (the IR is recursive: If holds Expr holds If)."""
    mirrors: dict[type, type[BaseModel]] = {}
    types_ns: dict[str, Any] = {}
    for n, cls in enumerate(model._CLASSES):
        annotations, body = {}, {}
        for field in cls._fields:
            annotations[field] = placeholder = f"T{n}_{field}"
            types_ns[placeholder] = (cls, field)
            if field in cls._defaults:
                body[field] = cls._defaults[field]
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__,
                     "__annotations__": annotations, "model_config": ConfigDict(defer_build=True, **cls._config), **body}
        mirrors[cls] = type(cls.__name__, (BaseModel,), namespace)
    for placeholder, (cls, field) in types_ns.items():
        types_ns[placeholder] = _translate(cls.model_fields[field].annotation, mirrors)
    for made in mirrors.values():
        made.model_rebuild(force=True, _types_namespace=types_ns)
    return mirrors, {made: cls for cls, made in mirrors.items()}


def _translate(tp: Any, mirrors: dict[type, type[BaseModel]]) -> Any:
    """`tp` with every model.py class replaced by its mirror and every
    model.Field by pydantic's."""
    if isinstance(tp, type) and issubclass(tp, Model):
        return mirrors[tp]
    if tp is Type:  # a checker type: its spelling in JSON and the schema
        return Annotated[Any, PlainValidator(_read_type), WithJsonSchema({"type": "string"})]
    origin = get_origin(tp)
    if origin is None or origin is Literal:
        return tp
    args = get_args(tp)
    if origin is Annotated:
        meta = [PydanticField(**m.kwargs) if isinstance(m, model.Field) else m for m in args[1:]]
        return Annotated[(_translate(args[0], mirrors), *meta)]
    args = tuple(_translate(arg, mirrors) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[args]
    return origin[args]
