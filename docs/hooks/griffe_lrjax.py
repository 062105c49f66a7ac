"""A griffe extension for the API pages (used by mkdocstrings, see mkdocs.yml).

lrjax's schedules are dataclasses made by the ``@register(...)`` decorator, which
griffe's static analysis does not recognise as ``@dataclass``. This extension gives
those classes the ``__init__`` signature the dataclass really has (their annotated
fields, in order, with defaults) and drops the fields from the member list, where
they would only repeat the signature.

It also reads a Google-style ``Example:`` heading as ``Examples:`` so that
doctest examples render as code (griffe only knows the plural form), and turns
the reStructuredText left in the docstrings into Markdown: a role such as
``:class:`Foo``` becomes the code ``Foo``, and a paragraph ending in ``::``
(which introduces the indented code block after it) ends in ``:``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj):`~?([^`]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _is_registered_schedule(cls: griffe.Class) -> bool:
    for dec in cls.decorators:
        value = dec.value
        func = getattr(value, "function", None)  # an ExprCall: register("name", ...)
        if func is not None and str(func).split(".")[-1] == "register":
            return True
    return False


class LrjaxGriffe(griffe.Extension):
    """Dataclass signatures for ``@register`` schedules; Markdown-ready docstrings."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            value = _ROLE.sub(r"``\1``", value)
            obj.docstring.value = _LITERAL_MARKER.sub(":", value)

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if not _is_registered_schedule(cls):
            return
        params = [
            griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
        ]
        fields = []
        for name, member in list(cls.members.items()):
            if not member.is_attribute or name.startswith("_") or member.annotation is None:
                continue
            if "instance-attribute" not in member.labels:
                continue  # a ClassVar
            fields.append(name)
            params.append(
                griffe.Parameter(
                    name,
                    annotation=member.annotation,
                    kind=griffe.ParameterKind.positional_or_keyword,
                    default=member.value,
                )
            )
        init = griffe.Function(
            "__init__",
            lineno=cls.lineno,
            endlineno=cls.lineno,
            parent=cls,
            parameters=griffe.Parameters(*params),
            returns="None",
        )
        cls.set_member("__init__", init)
        cls.labels.add("dataclass")
        for name in fields:
            cls.del_member(name)
