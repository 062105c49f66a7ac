# ruff: noqa: E501  (the gallery entries are code strings shown verbatim)
"""The schedule gallery: one PNG per catalogue schedule and per mode/convention.

Every picture is drawn from the real schedule code by ``docs/build_pages.py``,
which commits the PNGs under ``docs/assets/gallery/`` with the page
``docs/gallery.md``; nothing here is drawn by hand. ``tests/test_docs.py`` checks that every
catalogue entry, every composition and every value of every static choice
(``mode``, ``convention``, ``decay_shape``, ...) has a picture.

Run it alone to look at the pictures::

    python docs/gen_gallery.py /tmp/gallery
"""

from __future__ import annotations

import functools
import io
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Entry:
    """One gallery picture: ``code`` is evaluated with ``lrjax`` in scope."""

    slug: str  # file name (without .png) and anchor
    family: str  # catalogue (or composition) name the entry belongs to
    code: str  # the lrjax expression, shown on the page and evaluated
    steps: int  # steps 0 .. steps-1 are plotted
    note: str = ""  # one line under the picture
    logy: bool = False


E = Entry
#: Every picture, in page order.
GALLERY: tuple[Entry, ...] = (
    # piecewise constant
    E("constant", "constant", "lrjax.constant(0.1)", 100),
    E("step_decay", "step_decay", "lrjax.step_decay(init_value=0.1, step_size=30, gamma=0.5)", 100),
    E(
        "multistep",
        "multistep",
        "lrjax.multistep(init_value=0.1, milestones=[30, 60, 80], gamma=0.3)",
        100,
    ),
    E(
        "piecewise_constant-new",
        "piecewise_constant",
        "lrjax.piecewise_constant(boundaries=[4, 8], values=[0.1, 0.05, 0.01])",
        12,
        'at_boundary="new" (default; Optax, PyTorch): step 4 already has the new value.',
    ),
    E(
        "piecewise_constant-old",
        "piecewise_constant",
        'lrjax.piecewise_constant(boundaries=[4, 8], values=[0.1, 0.05, 0.01], at_boundary="old")',
        12,
        'at_boundary="old" (Keras PiecewiseConstantDecay): the old value holds at step 4.',
    ),
    # decays
    E(
        "exponential",
        "exponential",
        "lrjax.exponential(init_value=0.1, decay_rate=0.5, decay_steps=20)",
        100,
    ),
    E(
        "exponential-staircase",
        "exponential",
        "lrjax.exponential(init_value=0.1, decay_rate=0.5, decay_steps=20, staircase=True)",
        100,
    ),
    E(
        "exponential-begin-end",
        "exponential",
        "lrjax.exponential(init_value=0.1, decay_rate=0.5, decay_steps=10, transition_begin=20, end_value=0.02)",
        100,
        "Held until transition_begin, floored at end_value.",
    ),
    E(
        "linear",
        "linear",
        "lrjax.linear(init_value=0.1, end_value=0.01, steps=80, transition_begin=10)",
        100,
    ),
    E(
        "polynomial",
        "polynomial",
        "lrjax.polynomial(init_value=0.1, end_value=0.001, steps=80, power=2.0)",
        100,
    ),
    E(
        "polynomial-cycle",
        "polynomial",
        "lrjax.polynomial(init_value=0.1, end_value=0.001, steps=30, power=2.0, cycle=True)",
        100,
        "cycle=True (Keras): the horizon grows to the next multiple of steps.",
    ),
    E(
        "inverse_time",
        "inverse_time",
        "lrjax.inverse_time(init_value=0.1, decay_rate=0.5, decay_steps=10)",
        100,
    ),
    E(
        "inverse_time-staircase",
        "inverse_time",
        "lrjax.inverse_time(init_value=0.1, decay_rate=0.5, decay_steps=10, staircase=True)",
        100,
    ),
    E("inverse_sqrt", "inverse_sqrt", "lrjax.inverse_sqrt(peak_value=0.1, warmup_steps=20)", 200),
    E("rex", "rex", "lrjax.rex(init_value=0.1, steps=100)", 110),
    # cosine family
    E("cosine", "cosine", "lrjax.cosine(init_value=0.1, steps=80, end_value=0.01)", 100),
    E(
        "cosine-exponent",
        "cosine",
        "lrjax.cosine(init_value=0.1, steps=80, end_value=0.01, exponent=3.0)",
        100,
    ),
    E(
        "cosine_restarts",
        "cosine_restarts",
        "lrjax.cosine_restarts(init_value=0.1, period=25)",
        100,
    ),
    E(
        "cosine_restarts-mult",
        "cosine_restarts",
        "lrjax.cosine_restarts(init_value=0.1, period=10, period_mult=2, decay=0.7, end_value=0.005)",
        150,
        "SGDR with period_mult=2: cycles of 10, 20, 40, 80 steps, each peak 0.7x the last.",
    ),
    E("flat_cos", "flat_cos", "lrjax.flat_cos(init_value=0.1, total_steps=100)", 100),
    # cyclical
    E(
        "cyclic-triangular",
        "cyclic",
        "lrjax.cyclic(base_value=0.01, max_value=0.1, step_size_up=20)",
        160,
    ),
    E(
        "cyclic-triangular2",
        "cyclic",
        'lrjax.cyclic(base_value=0.01, max_value=0.1, step_size_up=20, mode="triangular2")',
        160,
    ),
    E(
        "cyclic-exp_range",
        "cyclic",
        'lrjax.cyclic(base_value=0.01, max_value=0.1, step_size_up=20, mode="exp_range", gamma=0.99)',
        160,
    ),
    E(
        "cyclic-asymmetric",
        "cyclic",
        "lrjax.cyclic(base_value=0.01, max_value=0.1, step_size_up=10, step_size_down=30)",
        160,
    ),
    E("one_cycle", "one_cycle", "lrjax.one_cycle(max_value=0.1, total_steps=100)", 100),
    E(
        "one_cycle-torch",
        "one_cycle",
        'lrjax.one_cycle(max_value=0.1, total_steps=100, pct_start=0.3, final_div_factor=1e4, convention="torch")',
        100,
        'convention="torch": equals torch OneCycleLR for the same arguments.',
    ),
    E(
        "one_cycle-three_phase",
        "one_cycle",
        'lrjax.one_cycle(max_value=0.1, total_steps=100, pct_start=0.3, three_phase=True, convention="torch")',
        100,
    ),
    E(
        "one_cycle-linear",
        "one_cycle",
        'lrjax.one_cycle(max_value=0.1, total_steps=100, anneal="linear")',
        100,
    ),
    E(
        "one_cycle-log",
        "one_cycle",
        "lrjax.one_cycle(max_value=0.1, total_steps=100)",
        101,
        "The same default one-cycle on a log axis, to step 100: it ends at max_value / 1e5.",
        logy=True,
    ),
    E("one_cycle_momentum", "one_cycle_momentum", "lrjax.one_cycle_momentum(total_steps=100)", 100),
    E(
        "one_cycle_momentum-torch",
        "one_cycle_momentum",
        'lrjax.one_cycle_momentum(total_steps=100, pct_start=0.3, convention="torch")',
        100,
        'convention="torch": the momentum torch OneCycleLR sets, for the same arguments.',
    ),
    E(
        "one_cycle_momentum-three_phase",
        "one_cycle_momentum",
        'lrjax.one_cycle_momentum(total_steps=100, pct_start=0.3, three_phase=True, anneal="linear")',
        100,
    ),
    # warmup-stable-decay
    E(
        "wsd-linear",
        "wsd",
        "lrjax.wsd(peak_value=0.1, total_steps=100, warmup_steps=10, decay_fraction=0.3)",
        100,
    ),
    E(
        "wsd-sqrt",
        "wsd",
        'lrjax.wsd(peak_value=0.1, total_steps=100, warmup_steps=10, decay_fraction=0.3, decay_shape="sqrt")',
        100,
    ),
    E(
        "wsd-cosine",
        "wsd",
        'lrjax.wsd(peak_value=0.1, total_steps=100, warmup_steps=10, decay_fraction=0.3, decay_shape="cosine")',
        100,
    ),
    # compositions
    E("warmup", "warmup", "lrjax.warmup(lrjax.cosine(init_value=0.1, steps=90), steps=10)", 100),
    E(
        "join",
        "join",
        "lrjax.join([lrjax.constant(0.1), lrjax.cosine(init_value=0.1, steps=50), lrjax.constant(0.02)], boundaries=[30, 80])",
        100,
        "Each piece counts its steps from its own boundary, as optax.join_schedules.",
    ),
    E(
        "clip",
        "clip",
        "lrjax.clip(lrjax.exponential(init_value=0.1, decay_rate=0.9, decay_steps=5), lo=0.02)",
        100,
    ),
    E(
        "scale",
        "scale",
        "lrjax.cosine(init_value=1.0, steps=100) * 0.1",
        100,
        "s * c builds scale(s, c).",
    ),
    E(
        "add",
        "add",
        "lrjax.constant(0.01) + lrjax.cosine(init_value=0.09, steps=100)",
        100,
        "s1 + s2 builds add(s1, s2).",
    ),
    E(
        "product",
        "product",
        "lrjax.cosine(init_value=1.0, steps=200) * lrjax.cyclic(base_value=0.02, max_value=0.1, step_size_up=10)",
        200,
        "s1 * s2 builds product(s1, s2): a cyclical rate under a cosine envelope.",
    ),
)

#: Families whose curve is a staircase: drawn with steps, not slopes.
_STEPPED = {"constant", "step_decay", "multistep", "piecewise_constant"}


def build(entry: Entry):
    """Evaluates an entry's code: the real schedule object."""
    import lrjax

    return eval(entry.code, {"lrjax": lrjax})


def _stepped(entry: Entry, sched) -> bool:
    return entry.family in _STEPPED or bool(getattr(sched, "staircase", False))


@functools.cache
def _jitted():
    import jax

    return jax.jit(lambda schedule, steps: schedule(steps))


def _evaluate(schedule, steps: np.ndarray) -> np.ndarray:
    """The schedule at ``steps``, jitted as users run it (one compile per kind)."""
    return _jitted()(schedule, steps)


def figure(entry: Entry):
    """The matplotlib figure of one entry, drawn from the schedule's real values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sched = build(entry)
    xs = np.arange(entry.steps)
    ys = np.asarray(_evaluate(sched, xs))
    ylabel = "momentum" if entry.family == "one_cycle_momentum" else "learning rate"

    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=110, layout="constrained")
    style = {"color": "#3f51b5", "linewidth": 1.8}
    if _stepped(entry, sched):
        ax.step(xs, ys, where="post", **style)
    else:
        ax.plot(xs, ys, **style)
    if entry.steps <= 30:
        ax.plot(xs, ys, "o", color="#3f51b5", markersize=4)
        ax.set_xticks(xs)
    ax.set_xlim(xs[0] - 0.5 if entry.steps <= 30 else 0, xs[-1] + (0.5 if entry.steps <= 30 else 0))
    if entry.logy:
        ax.set_yscale("log")
    elif entry.family == "one_cycle_momentum":
        lo, hi = float(ys.min()), float(ys.max())
        pad = 0.1 * (hi - lo if hi > lo else 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    else:  # rates: from zero, so the eye reads ratios right
        lo = min(0.0, float(ys.min()))
        hi = float(ys.max())
        ax.set_ylim(lo, hi + 0.08 * (hi - lo if hi > lo else 1.0))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    title = "\n".join(textwrap.wrap(entry.code.replace("lrjax.", ""), 88))
    ax.set_title(title, fontsize=7.5, family="monospace", loc="left")
    return fig


def render(entry: Entry) -> bytes:
    """The PNG of one entry."""
    import matplotlib.pyplot as plt

    fig = figure(entry)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def render_all() -> dict[str, bytes]:
    """``{"gallery/<slug>.png": png bytes}`` for every entry."""
    return {f"gallery/{e.slug}.png": render(e) for e in GALLERY}


def markdown(image_dir: str = "assets/gallery") -> str:
    """The gallery page body: one section per family, one picture per entry.

    ``image_dir`` is where the PNGs are, relative to the page.
    """
    from lrjax import schedules

    classes = schedules.catalogue()
    out: list[str] = []
    seen: list[str] = []
    for e in GALLERY:
        if e.family not in seen:
            seen.append(e.family)
            doc = _markdown_text((classes[e.family].__doc__ or "").strip().splitlines()[0])
            out.append(f"## `{e.family}`\n\n{doc} [API](api/schedules.md{_anchor(e.family)})\n")
        out.append(f"```python\n{e.code}\n```\n")
        out.append(f"![{e.slug}]({image_dir}/{e.slug}.png)\n")
        if e.note:
            out.append(f"{e.note}\n")
    return "\n".join(out)


def _anchor(family: str) -> str:
    """``#section`` of the API page that documents the family, as GitHub and mkdocs
    name a heading (lower case, punctuation dropped, spaces to ``-``); ``""`` if none."""
    page = (Path(__file__).resolve().parent / "api" / "schedules.md").read_text(encoding="utf-8")
    heading = None
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("<!-- api: ") and f"lrjax.{family}" in line.split()[2:-1]:
            if heading is None:
                return ""
            slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
            return "#" + slug.replace(" ", "-")
    return ""


def _markdown_text(doc: str) -> str:
    """A docstring line as Markdown: reST roles (``:class:`x```) become code."""
    return re.sub(r":(?:py:)?\w+:`~?([^`]+)`", r"`\1`", doc)


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "gallery")
    for path, png in render_all().items():
        target = out / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    print(f"wrote {len(GALLERY)} pictures to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
