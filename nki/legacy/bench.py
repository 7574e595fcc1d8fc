"""Legacy ``nki.benchmark`` / ``nki.baremetal`` / ``nki.profile`` decorators over a legacy kernel.

``nki.benchmark(warmup=5, iters=10)(kernel)[grid](*args)`` prices the kernel on the timing model
(see ``nki.benchmark``: latencies are MODELLED, every percentile the same number). Legacy test
suites index the benchmarked kernel with a launch grid, so ``[...]`` is forwarded to the kernel.
Every result is also appended to ``RESULTS`` (kernel, grid, target, latency in us) so a test
runner can list the modelled latencies next to the suite's budgets.
"""
from __future__ import annotations

from ..benchmark import Benchmarked
from . import report

RESULTS: list = []


class LegacyBenchmarked(Benchmarked):
    """A benchmarked legacy kernel; ``[grid]`` gives the same benchmark over a launch grid."""

    def __getitem__(self, grid):
        b = LegacyBenchmarked(self.kernel[grid], self.warmup, self.iters,
                              save_trace_name=self.save_trace_name, target=self.target,
                              execute=self.execute, quiet=self.quiet)
        return b

    def __call__(self, *args, **kwargs):
        out = super().__call__(*args, **kwargs)
        r = self.benchmark_result
        RESULTS.append({"kernel": r.report.kernel, "grid": list(getattr(self.kernel, "grid", ())),
                        "target": r.report.target, "latency_us": r.nc_latency.latency_us})
        return out


def benchmark(kernel=None, warmup=10, iters=100, save_neff_name=None, save_trace_name=None,
              additional_compile_opt=None, **options):
    """Legacy ``nki.benchmark(kernel, ...)`` / ``@nki.benchmark(warmup=..., iters=...)``."""
    from . import jit

    def wrap(k):
        report.note("benchmark")
        return LegacyBenchmarked(jit(k), warmup, iters, save_neff_name, save_trace_name,
                                 additional_compile_opt, **options)
    return wrap(kernel) if kernel is not None else wrap
