"""``nki.benchmark``: the legacy benchmarking decorator, answered by the timing model.

Old scripts (NKI before 0.2, nki-spec section 6) wrote::

    @nki.benchmark(warmup=5, iters=10)
    @nki.jit
    def kernel(a, b): ...

    kernel(a, b)
    p99 = kernel.benchmark_result.nc_latency.get_latency_percentile(99)   # microseconds

Here there is no device: calling the decorated kernel traces it and prices the program on the
timing model. The latencies are MODELLED (``benchmark_result.modelled is True`` and a note is
printed); the model is deterministic, so every percentile is the same number. As on hardware,
input values are ignored and the kernel's outputs are undefined (``None``) unless
``execute=True`` asks the emulator to run it too.
"""
from __future__ import annotations

import functools

from device.errors import UserKernelError

PERCENTILES = (0, 1, 10, 25, 50, 90, 99, 100)


class LatencyStats:
    """Per-percentile latencies in microseconds (all equal: the timing model is deterministic)."""
    modelled = True

    def __init__(self, latency_us: float, iters: int):
        self.latency_us = float(latency_us)
        self.iters = int(iters)

    def get_latency_percentile(self, p) -> float:
        if not 0 <= p <= 100:
            raise UserKernelError(f"get_latency_percentile({p}): the percentile must be in "
                                  f"[0, 100]; the legacy API documents {PERCENTILES}")
        return self.latency_us

    def __repr__(self):
        return f"LatencyStats({self.latency_us:.3f} us, modelled)"


class BenchmarkResult:
    """What ``kernel.benchmark_result`` holds after a call: ``nc_latency`` and the full report."""
    modelled = True

    def __init__(self, report, warmup: int, iters: int):
        self.report = report
        self.warmup, self.iters = warmup, iters
        self.nc_latency = LatencyStats(report.total_us, iters)

    def __repr__(self):
        return (f"BenchmarkResult(modelled latency {self.nc_latency.latency_us:.3f} us on "
                f"{self.report.target}, warmup={self.warmup}, iters={self.iters})")


class Benchmarked:
    """A kernel wrapped by ``nki.benchmark``; calling it prices (and optionally runs) the kernel."""

    def __init__(self, kernel, warmup=10, iters=100, save_neff_name=None, save_trace_name=None,
                 additional_compile_opt=None, target=None, execute=False, quiet=False):
        from .tracing import Kernel
        self.kernel = kernel if isinstance(kernel, Kernel) else Kernel(kernel)
        self.warmup, self.iters = int(warmup), int(iters)
        self.save_trace_name = save_trace_name
        self.target, self.execute, self.quiet = target, execute, quiet
        self.benchmark_result = None
        functools.update_wrapper(self, self.kernel.fn)

    def __call__(self, *args, **kwargs):
        report = self.kernel.profile(*args, target=self.target, **kwargs)
        self.benchmark_result = BenchmarkResult(report, self.warmup, self.iters)
        if self.save_trace_name:
            report.save_trace(self.save_trace_name)
        if not self.quiet:
            print(f"nki.benchmark: {report.kernel} on {report.target}: "
                  f"{report.total_us:.2f} us (MODELLED by the timing model; no hardware ran; "
                  f"warmup={self.warmup} iters={self.iters} do not change a modelled latency)")
        if self.execute:
            return self.kernel(*args, **kwargs)
        return None

    def __getattr__(self, name):            # .trace/.profile/.lower of the wrapped kernel
        return getattr(self.kernel, name)


def benchmark(kernel=None, warmup=10, iters=100, save_neff_name=None, save_trace_name=None,
              additional_compile_opt=None, **options):
    """``nki.benchmark(kernel, ...)`` or ``@nki.benchmark(warmup=..., iters=...)``.

    Extra keywords: ``target=`` (trn1/inf2/trn2...), ``execute=True`` (also run the kernel on the
    emulator and return its outputs), ``quiet=True`` (no printed note).
    """
    def wrap(k):
        return Benchmarked(k, warmup, iters, save_neff_name, save_trace_name,
                           additional_compile_opt, **options)
    return wrap(kernel) if kernel is not None else wrap
