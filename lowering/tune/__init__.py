"""The autotuner: schedules searched per fusion group against the timing model, verified on the
emulator, cached in SQLite, evaluated through any ``concurrent.futures.Executor``.

    >>> from lowering.tune import tune, TuningDB, price_fast, price_full
"""
from .db import TuningDB, TuningDBWarning, default_path
from .groups import Standalone, standalone, tunable
from .pricer import Estimate, matmul_estimate, price_fast, price_full
from .tuner import SPACE_VERSION, TIMING_MODEL_VERSION, GroupResult, TunedPlan, cache_key, tune
from .verify import Verdict, verify

__all__ = ["Estimate", "GroupResult", "SPACE_VERSION", "Standalone", "TIMING_MODEL_VERSION",
           "TunedPlan", "TuningDB", "TuningDBWarning", "Verdict", "cache_key", "default_path",
           "matmul_estimate", "price_fast", "price_full", "standalone", "tunable", "tune",
           "verify"]
