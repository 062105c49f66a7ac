"""tune's searches, built on the engine: the space (:mod:`._space`), one module
per method (:mod:`._pbt`, :mod:`._halving`, :mod:`._random`, each a
:class:`Method`), the cooldown probe (:mod:`._probe`), the rate test that bounds
the rate dimension (:mod:`._rate`) and the method-agnostic rounds
(:mod:`._round`).

A new method is one module holding a :class:`Method` and one line in
:data:`METHODS`.
"""

from lrjax._search._halving import HALVING, keep_counts
from lrjax._search._method import Between, Changed, Method, rank_scores
from lrjax._search._pbt import PBT
from lrjax._search._probe import default_cooldown
from lrjax._search._random import RANDOM
from lrjax._search._rate import (
    RATE_NAMES,
    default_test_steps,
    find_rate,
    narrow,
    probe_grid,
    rate_test_points,
)
from lrjax._search._round import (
    Round,
    SearchResult,
    round_widths,
    run_search,
    search_steps,
)
from lrjax._search._space import (
    KINDS,
    PERTURB_FACTORS,
    RESAMPLE_PROBABILITY,
    Draws,
    centre,
    check_space,
    corners,
    perturb,
    round_draws,
    sample,
    split_key,
    stratified,
)

#: The search methods by name (``tune(method=...)``).
METHODS: dict[str, Method] = {m.name: m for m in (HALVING, PBT, RANDOM)}
