"""The private engine shared by ``range_test``, ``lr_find``, ``sweep`` and ``tune``.

It trains copies of one model side by side and knows nothing about learning
rates: a copy's optimizer is built from its hyperparameters ``h`` by a
``make_tx(h, step)`` the front gives it.

- :func:`prepare` checks and normalises the user's model (``_models``: one
  module per framework behind a ``Behaviour`` protocol), data (``_data``) and
  randomness;
- the runner (``_runner``) plans a run, places its inputs (``_placement``) and
  hands it to an execution strategy (``_strategies``: one module each):
  :func:`run` trains chunks of independent copies (range test, ramp, sweep),
  :func:`run_rounds` a program in rounds with a step between them (tune's
  searches); both stream data, report progress and copy results back;
- the compiled kernel (``_kernel``) trains copies side by side.

``lrjax._search`` builds tune's programs from the kernel's per-copy functions
(:func:`init_copies`, :func:`train_copies`, ...), exported here.
"""

from lrjax._engine._kernel import (
    Carry,
    Spec,
    copy_keys,
    evaluate_copies,
    init_copies,
    nan_where,
    over_copies,
    replicate,
    train_copies,
)
from lrjax._engine._memory import per_copy_bytes, program_bytes
from lrjax._engine._models import is_model_object, make_model, random_args
from lrjax._engine._placement import Placement, to_host
from lrjax._engine._prepare import Prepared, prepare, prepare_data, step_flops
from lrjax._engine._progress import ProgressBar, progress_enabled
from lrjax._engine._runner import (
    EngineResult,
    RoundsProgram,
    RunOptions,
    check_run_options,
    compile_program,
    make_spec,
    run,
    run_rounds,
)
from lrjax._engine._static import KwargsOptimizer, Static
from lrjax._engine._strategies import Stage, Strategy, choose_strategy
