"""What each endpoint of the Stripe fake accepts, read from the ``stripe`` package's typed
request parameters (``stripe.params``: TypedDicts generated from Stripe's OpenAPI spec;
derived here from stripe-python 16.1.0, API version ``2026-10-28.endive``), offline.

``schema(cls)`` turns one ``…Params`` TypedDict into a tree of :class:`Spec`; ``check``
walks the parsed form body against it and raises Stripe's errors: ``parameter_unknown``
("Received unknown parameter: line_items[0][pricee]") for a name the endpoint does not
take, and "Invalid mode: must be one of payment, setup, or subscription" for a value
outside an enum. The SDK's own annotations read ``Literal[…] | str`` (it lets new values
through for forward compatibility); the server accepts only the listed ones.
"""

from __future__ import annotations

import sys
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from stripe._request_options import RequestOptions
from typing_extensions import is_typeddict

_CLIENT_OPTIONS = frozenset(RequestOptions.__annotations__)
"""``api_key``, ``idempotency_key``, ``stripe_version``…: options of the client, not
parameters on the wire (the Params classes inherit them)."""


@dataclass
class Spec:
    """One parameter: an object (``fields``), a list (``item``), an enum (``values``),
    a free map (``metadata``), or a scalar (none of these)."""

    fields: dict[str, Spec] | None = None
    item: Spec | None = None
    values: frozenset[str] | None = None
    free_map: bool = False
    scalar: bool = False
    alternatives: list[Spec] = field(default_factory=list)


class ParamError(Exception):
    """A request Stripe refuses: the message, the offending param and Stripe's code."""

    def __init__(self, message: str, param: str, code: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _resolve(annotation: Any, module: types.ModuleType) -> Any:
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        namespace = {**typing.__dict__, **vars(module)}
        return eval(annotation, namespace)  # noqa: S307 - the stripe package's annotations
    return annotation


def _spec(annotation: Any, module: types.ModuleType) -> Spec:
    annotation = _resolve(annotation, module)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        spec = Spec()
        for arg in typing.get_args(annotation):
            spec.alternatives.append(_spec(arg, module))
        return _merge(spec)
    if origin is typing.Literal or str(origin).endswith("Literal"):
        return Spec(values=frozenset(str(v) for v in typing.get_args(annotation)))
    if getattr(annotation, "__name__", "") in ("NotRequired", "Required") or str(origin).endswith(
        ("NotRequired", "Required")
    ):
        return _spec(typing.get_args(annotation)[0], module)
    if origin in (list, typing.List):  # noqa: UP006
        return Spec(item=_spec(typing.get_args(annotation)[0], module))
    if origin in (dict, typing.Dict):  # noqa: UP006
        return Spec(free_map=True)
    if is_typeddict(annotation):
        return _object(annotation)
    return Spec(scalar=True)


def _merge(union: Spec) -> Spec:
    """A union: the object, list and enum branches combined; ``Literal[""]`` (unset a
    field) and a bare ``str`` beside a Literal (the SDK's forward compatibility) drop out."""
    merged = Spec()
    has_enum = any(a.values for a in union.alternatives)
    for alt in union.alternatives:
        if alt.fields is not None:
            merged.fields = {**(merged.fields or {}), **alt.fields}
        elif alt.item is not None:
            merged.item = alt.item
        elif alt.values is not None:
            values = alt.values - {""}
            if values:
                merged.values = (merged.values or frozenset()) | values
        elif alt.free_map:
            merged.free_map = True
        elif alt.scalar and not has_enum:
            merged.scalar = True
    if merged.scalar:
        merged.values = None  # a plain value of another type is allowed too
    return merged


@cache
def _object(cls: type) -> Spec:
    module = sys.modules[cls.__module__]
    fields: dict[str, Spec] = {}
    spec = Spec(fields=fields)
    for klass in reversed(cls.__mro__):
        for name, annotation in getattr(klass, "__annotations__", {}).items():
            if klass is RequestOptions or name in _CLIENT_OPTIONS:
                continue
            fields[name] = _spec(annotation, module)
    return spec


def schema(cls: type) -> Spec:
    """The accepted parameters of one endpoint, from its ``stripe.params`` class."""
    return _object(cls)


def check(spec: Spec, value: Any, path: str = "") -> None:
    """Raise :class:`ParamError` for the first parameter Stripe would refuse."""
    if spec.free_map or (spec.scalar and spec.fields is None and spec.item is None):
        return
    if spec.fields is not None and isinstance(value, dict):
        for name, child in value.items():
            where = f"{path}[{name}]" if path else name
            if name not in spec.fields:
                raise ParamError(f"Received unknown parameter: {where}", where, "parameter_unknown")
            check(spec.fields[name], child, where)
        return
    if spec.item is not None and isinstance(value, list):
        for index, child in enumerate(value):
            check(spec.item, child, f"{path}[{index}]")
        return
    if spec.values is not None and isinstance(value, str) and value not in spec.values | {""}:
        choices = sorted(spec.values)
        if len(choices) == 1:
            listed = choices[0]
        else:
            last = ", or " if len(choices) > 2 else " or "
            listed = ", ".join(choices[:-1]) + last + choices[-1]
        raise ParamError(f"Invalid {path}: must be one of {listed}", path, None)
