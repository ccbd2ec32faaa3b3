"""What a class or function takes and says: constructor parameters along the MRO (what
the argument checks accept), its own docstring and its `Args:` entries, and the plain data
behind `list-*`."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kinit_cli.registry.catalog import Entry


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any = inspect.Parameter.empty
    annotation: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


_ARGS_HEADING = re.compile(r"^(Args|Arguments):\s*$", re.MULTILINE)
_ARG_LINE = re.compile(r"(\w+)(?:\s*\([^)]*\))?:\s*(.*)")

# Keras's Layer.__init__ takes these from **kwargs besides its named parameters.
_LAYER_EXTRA_KWARGS = ("input_dim", "input_shape")


def parameters(obj: Any) -> tuple[list[Parameter], bool]:
    """Constructor (or function) parameters along the MRO, and whether any others are accepted.

    A class whose `__init__` takes `**kwargs` passes them up to its base, so the walk goes
    on to the base's `__init__` until one has no `**kwargs`: that set is what Keras accepts.
    """
    if not inspect.isclass(obj):
        return _own_parameters(obj)
    seen: dict[str, Parameter] = {}
    last: type | None = None
    for klass in obj.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:
            # Keras's own base classes (Optimizer, Loss, ...) take **kwargs only to reject
            # unknown ones with their own message: what they name is the whole set.
            keras_root = last is not None and last.__module__.split(".")[0] == "keras"
            return list(seen.values()), not keras_root
        params, open_kwargs = _own_parameters(klass.__init__, skip_first=True)
        for p in params:
            # A base's required parameter (BaseConv's `rank`) is the subclass's to supply.
            seen.setdefault(
                p.name,
                p if last is None or not p.required else Parameter(p.name, None, p.annotation),
            )
        if klass.__name__ == "Layer" and klass.__module__.startswith("keras"):
            for extra in _LAYER_EXTRA_KWARGS:
                seen.setdefault(extra, Parameter(extra, None))
            return list(seen.values()), False
        if not open_kwargs:
            return list(seen.values()), False
        last = klass
    return list(seen.values()), True


def _own_parameters(fn: Any, skip_first: bool = False) -> tuple[list[Parameter], bool]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], True
    out, open_kwargs = [], False
    items = list(sig.parameters.values())[1 if skip_first else 0 :]
    for p in items:
        if p.kind is p.VAR_KEYWORD:
            open_kwargs = True
        elif p.kind is not p.VAR_POSITIONAL:
            out.append(Parameter(p.name, p.default, p.annotation))
    return out, open_kwargs


# The brackets of a Callable[...] hint.
_CALLABLE_ARGS = re.compile(r"callable\[(?:[^\[\]]|\[[^\[\]]*\])*\]")
# An Args entry that opens by calling the argument a function: "A function that takes an
# epoch index ..." (LearningRateScheduler.schedule), "The function to be evaluated" (Lambda).
# Not one that offers a function among other things ("A float value ..., or a callable"),
# names one ("A function name") or qualifies it ("The activation function to use", which a
# class may look up by name): text may be what those take.
_FUNCTION_DOC = re.compile(
    r"(?:an?|the)\s+(?:python\s+)?(?:function|callable)"
    r"(?:\s+(?:that|which|to|taking|called|applied|returning|mapping)\b|\s*[.,:;(]|\s*$)",
    re.IGNORECASE,
)


def takes_function(param: Parameter, doc: str = "", callback: bool = False) -> bool:
    """Whether an argument can only be a Python function, which no config value is: its
    annotation says Callable (and not str), its default is a function, its Args entry
    opens by calling it one, or it is a callback's `on_*` hook (LambdaCallback's)."""
    if param.annotation is not inspect.Parameter.empty:
        # Callable[[str], str] names str as its argument: what the whole hint allows is
        # what stands outside the Callable's brackets.
        hint = _CALLABLE_ARGS.sub("callable", str(param.annotation).lower())
        if "callable" in hint and "str" not in hint:
            return True
    if inspect.isroutine(param.default):
        return True
    if callback and param.name.startswith("on_"):
        return True
    return _FUNCTION_DOC.match(doc) is not None


def own_parameters(obj: Any) -> list[Parameter]:
    """The parameters a class's own constructor names (what a catalog shows first)."""
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            if "__init__" in vars(klass) and klass is not object:
                return _own_parameters(klass.__init__, skip_first=True)[0]
        return []
    return _own_parameters(obj)[0]


def own_doc(obj: Any) -> str:
    """The docstring a class or function itself has: a plugin class without one would
    otherwise show its Keras base class's (all 100 lines of Layer's)."""
    if inspect.isclass(obj):
        return inspect.cleandoc(vars(obj).get("__doc__") or "")
    return inspect.getdoc(obj) or ""


def summary(obj: Any) -> str:
    """First line of the docstring."""
    doc = own_doc(obj)
    return doc.strip().splitlines()[0] if doc.strip() else ""


def argument_docs(cls: type) -> dict[str, str]:
    """Parameter name -> its Args entry, one line, from the first class along the MRO that
    documents it (Keras documents Layer's own arguments once, on its base)."""
    out: dict[str, str] = {}
    for klass in cls.__mro__:
        doc = inspect.cleandoc(vars(klass).get("__doc__") or "")
        for name, text in _args_section(doc).items():
            out.setdefault(name, text)
    return out


def _args_section(doc: str) -> dict[str, str]:
    heading = _ARGS_HEADING.search(doc)
    if heading is None:
        return {}
    out: dict[str, str] = {}
    indent: int | None = None
    current: str | None = None
    for line in doc[heading.end() :].splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        match = _ARG_LINE.fullmatch(line.strip()) if depth == indent else None
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current is not None and depth > indent:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def describe(entry: Entry) -> dict[str, Any]:
    """Plain data about an entry, for `list-*` tables and their `--json`."""
    params = []
    for p in own_parameters(entry.obj):
        item: dict[str, Any] = {"name": p.name, "required": p.required}
        if not p.required:
            item["default"] = _jsonable(p.default)
        params.append(item)
    wrapped = getattr(entry.obj, "wrapped_function", None) if inspect.isclass(entry.obj) else None
    doc = own_doc(wrapped if wrapped is not None else entry.obj)
    text = summary(wrapped if wrapped is not None else entry.obj)
    if getattr(entry.obj, "factory", None) is not None:
        text = (
            f"Factory: {wrapped.__name__}() is called once and the initializer it returns "
            f"is used. {text}"
        ).strip()
    return {
        "name": entry.name,
        "kind": entry.kind,
        "qualified_name": entry.qualified,
        "aliases": list(entry.aliases),
        "source": entry.source
        + (f"; shadowed by {entry.shadowed_by}" if entry.shadowed_by else ""),
        "summary": text,
        "parameters": params,
        "doc": doc,
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
