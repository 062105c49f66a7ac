"""Plots of schedules, and matplotlib helpers (imported lazily: ``pip install lrjax[demo]``).

Every picture lrjax draws lives in one private module; this is its public face:
:func:`plot_schedule` draws schedules against the step, :func:`agg_figure`
makes a figure without pyplot (for files from scripts and servers).
"""

from lrjax._results import (
    MAX_POINTS,
    agg_figure,
    figure_and_axes,
    image_formats,
    plot_schedule,
    require_matplotlib,
)

__all__ = [
    "MAX_POINTS",
    "agg_figure",
    "figure_and_axes",
    "image_formats",
    "plot_schedule",
    "require_matplotlib",
]
