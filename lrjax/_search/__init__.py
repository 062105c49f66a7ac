"""tune's search strategies, built on the engine's kernel: the space (sample,
perturb, decode), population-based training, successive halving and the
cooldown probe that ranks members between rounds."""

from lrjax._search._population import (
    KINDS,
    METHODS,
    RESAMPLE_PROBABILITY,
    check_population_on_mesh,
    default_cooldown,
    keep_counts,
    round_draws,
    round_widths,
    run_search,
    split_key,
)
