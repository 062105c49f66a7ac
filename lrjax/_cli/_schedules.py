"""``lrjax plot`` and ``lrjax list``: schedules given as ``name(k=v, ...)`` or JSON."""

from __future__ import annotations

import argparse
import ast
import json
import re
from typing import Any

from lrjax._cli._errors import UsageError, save_figure

# ------------------------------------------------------------------ spec parsing


def parse_spec(spec: str):
    """Builds a schedule from JSON (``to_dict`` form) or ``name(key=value, ...)``.

    Calls may nest: ``warmup(cosine(init_value=0.1, steps=1000), steps=100)``.

    Example:
      >>> parse_spec("cosine(init_value=0.1, steps=100)")
      cosine(init_value=0.1, steps=100, end_value=0.0, exponent=1.0)
    """
    from lrjax.schedules import from_dict

    text = spec.strip()
    if not text:
        raise UsageError("empty schedule spec; try e.g. 'cosine(init_value=0.1, steps=1000)'")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"schedule spec is not valid JSON: {e}") from None
        return _build(lambda: from_dict(data))
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise UsageError(
            f"cannot parse schedule spec {spec!r}; expected name(key=value, ...) or JSON"
        ) from None
    return _build(lambda: _eval_call(tree, spec))


def _build(make):
    try:
        return make()
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _eval_call(node: ast.AST, spec: str):
    from lrjax.schedules import catalogue

    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise UsageError(f"schedule spec {spec!r} must be a call like name(key=value, ...)")
    name = node.func.id
    known = catalogue()
    if name not in known:
        raise UsageError(f"unknown schedule {name!r}; run 'lrjax list' (known: {sorted(known)})")
    args = [_eval_value(a, spec) for a in node.args]
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise UsageError(f"'**' is not allowed in schedule spec {spec!r}")
        kwargs[kw.arg] = _eval_value(kw.value, spec)
    try:
        return known[name](*args, **kwargs)
    except TypeError as e:
        raise UsageError(f"{name}: {e}") from None


def _eval_value(node: ast.AST, spec: str) -> Any:
    if isinstance(node, ast.Call):
        return _eval_call(node, spec)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval_value(e, spec) for e in node.elts]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise UsageError(
            f"schedule spec {spec!r}: {ast.unparse(node)!r} is not a number, string or list"
        ) from None


# -------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    from lrjax.schedules import CATALOGUE, COMPOSITIONS, catalogue

    width = max(len(n) for n in catalogue())
    for name, cls in CATALOGUE.items():
        print(f"{name:<{width}}  {plain_text(_first_line(cls))}")
    print()
    print("compositions: " + ", ".join(COMPOSITIONS) + " (and s * c, s1 + s2)")
    return 0


def _first_line(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]


_ROLE = re.compile(r":(?:[\w-]+:)+`([^`]*)`")  # :class:`x`, :py:func:`x`
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")  # `x`, `link`_


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1).strip()
    if "<" in text and text.endswith(">"):  # :func:`the text <pkg.target>`
        return text[: text.index("<")].strip()
    text = text.lstrip("!")
    return text[1:].rsplit(".", 1)[-1] if text.startswith("~") else text


def plain_text(rest: str) -> str:
    """A line of reStructuredText as plain text: roles and literals lose their markup.

    Example:
      >>> plain_text("The momentum of :class:`~lrjax.one_cycle`, ``1/sqrt(t)`` decay.")
      'The momentum of one_cycle, 1/sqrt(t) decay.'
      >>> plain_text("See :func:`the schedule <lrjax.cosine>` and `optax`_.")
      'See the schedule and optax.'
    """
    text = _ROLE.sub(_role_text, rest)
    text = _LITERAL.sub(r"\1", text)
    return _INTERPRETED.sub(r"\1", text)


def cmd_plot(args: argparse.Namespace) -> int:
    from lrjax import plotting

    sched = parse_spec(args.spec)
    top = 2**31  # steps 0 .. 2**31 - 1, the int32 range schedules are defined on
    if args.steps is not None and not 1 <= args.steps <= top:
        raise UsageError(f"--steps must be between 1 and {top}, got {args.steps}")
    steps = args.steps if args.steps is not None else min(_default_steps(sched), top)
    ax = plotting.agg_figure((6, 3.5), layout="constrained").add_subplot()  # no pyplot
    fig = plotting.plot_schedule(sched, steps, ax=ax, logy=args.logy)
    save_figure(fig, args.out)
    print(f"wrote {args.out}")
    return 0


def _default_steps(sched) -> int:
    """A horizon that shows the schedule's whole shape: 1.2x its longest step count."""
    import dataclasses

    from lrjax.schedules import Schedule

    counts: list[int] = []

    def visit(s) -> None:
        for f in dataclasses.fields(s):
            v = getattr(s, f.name)
            if isinstance(v, Schedule):
                visit(v)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    if isinstance(x, Schedule):
                        visit(x)
                    elif isinstance(x, int) and not isinstance(x, bool):
                        counts.append(x)
            elif isinstance(v, int) and not isinstance(v, bool) and f.name != "period_mult":
                counts.append(v)

    visit(sched)
    if isinstance(sched, Schedule) and sched.name == "cosine_restarts":
        return int(sched.period * (1 + sched.period_mult + sched.period_mult**2))
    if isinstance(sched, Schedule) and sched.name == "cyclic":
        return 4 * (sched.step_size_up + (sched.step_size_down or sched.step_size_up))
    return max(10, int(1.2 * max(counts))) if counts else 1000
