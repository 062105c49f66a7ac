"""tune's search strategies, built on the engine's kernel: the space (sample,
perturb, decode), population-based training, successive halving and the
cooldown probe that ranks members between rounds, and the rate test that
bounds the rate dimension before a search."""

from lrjax._search._population import (
    DEFAULT_SIZES,
    KINDS,
    METHODS,
    RESAMPLE_PROBABILITY,
    check_population_on_mesh,
    default_cooldown,
    keep_counts,
    round_draws,
    round_widths,
    run_search,
    search_steps,
    split_key,
    stratified,
)
from lrjax._search._rate import (
    RATE_NAMES,
    default_test_steps,
    find_rate,
    narrow,
    probe_grid,
    rate_test_points,
)
