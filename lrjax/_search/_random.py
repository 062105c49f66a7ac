"""Random search: the population trained side by side in one round, the best kept.

The members are the search's initial draws (a Latin hypercube over the
space); nothing changes between rounds because there is one. 16 members cost
what the other methods' defaults cost (``P x num_steps``): the baseline the
tune benchmark compares every method with.
"""

from __future__ import annotations

from lrjax._search._method import Method, every_member, unchanged

RANDOM = Method(
    name="random",
    population=16,
    rounds=1,
    min_population=1,
    training=every_member,
    change=unchanged,
    fixed_rounds=1,
)
