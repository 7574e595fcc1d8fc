"""Untrusted StableHLO meets jaxlib's C++ parser in a worker process first, never in ours.

jaxlib's MLIR text parser and bytecode deserializer are not hardened against hostile input: a
convolution ``dim_numbers`` index of 2^31 makes the text parser allocate a vector of that many
elements (17 GB, then the process is killed), and one corrupted bytecode artifact segfaults the
deserializer. So, as trusted parsers do with untrusted input, the caller never runs them on text
or bytes it did not make itself:

1. :func:`prescan` (in-process, microseconds): every integer in an attribute that names tensor
   dimensions (``dim_numbers``, ``dims``, ``dimension``, ``*_dimensions``, ``permutation``...)
   must be at most :data:`MAX_RANK`; anything larger is refused with its line before jaxlib
   sees it.
2. :func:`check_in_worker`: the text (or artifact) is parsed, and CHLO legalized, by a
   persistent worker process (one per importing process, started on first use, about a second)
   under an address-space cap of NEURON_EMU_HOST_MEMORY and a deadline of
   NEURON_EMU_PARSE_SECONDS. A parse error comes back as the diagnostic; a worker that dies
   (signal, exit code) or overruns is a :class:`StableHloImportError` naming what happened, and
   the next call starts a fresh worker. Inputs the worker accepted are remembered by digest, so
   the in-process parse that follows (and any later import of the same module) costs nothing
   extra.

What is trusted (parsed in-process directly): a ``jax.stages.Lowered`` or ``ir.Module`` (jaxlib
objects this process already holds), and text passed with ``trusted=True`` -- which
``neuron.from_jax`` does for the module jax has just printed in this same process. Text given as
a ``str`` or read from a file, and every bytecode artifact, are untrusted.

    >>> prescan('%0 = stablehlo.transpose %a, dims = [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32>')
    >>> prescan("dim_numbers = [b, f, 2147483648]x[o, i, 0]->[b, f, 0]")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lowering.importers.mlir_guard.StableHloImportError: dimension index 2147483648 in 'dim_numbers' ...
"""
from __future__ import annotations

import atexit
import collections
import hashlib
import os
import re
import selectors
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref

from .hlo_syntax import HloImportError

# More dimensions than any tensor has: dimension indices above this are refused unparsed.
MAX_RANK = 256
# Below this address-space cap jaxlib cannot even create a context; the host budget may be lower.
_MIN_WORKER_BYTES = 256 << 20
_SCAN_CHARS = 4096            # the longest attribute value the pre-scan reads


class StableHloImportError(HloImportError):
    """StableHLO we cannot read: malformed, or an op/attribute we do not support."""


def _error(message, line=None):
    return StableHloImportError(message, line)


# ---------------------------------------------------------------- 1. the pre-scan

# attribute names whose integers are dimension indices (not sizes: window_dimensions is excluded);
# not SSA values or symbols such as %dim (MLIR names tensor.dim results so)
_DIM_KEY = re.compile(r"(?<![\w.%$#@^!])((?:\w*_)?(?:dim|dims|dimension|dimensions|dim_numbers|"
                      r"dimension_numbers)|permutation)\s*=\s*")
_NOT_INDICES = {"window_dimensions"}
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_INT = re.compile(r"(?<![\w.])[-+]?\d+(?![\w.])")
_OPEN, _CLOSE = "[(<{", "])>}"


def _value_end(text: str, start: int) -> int:
    """Where the attribute value starting at ``start`` ends: a top-level ``,`` ``:`` ``}`` or
    ``)``, or a newline (``->`` inside ``dim_numbers`` is not a bracket)."""
    depth, i, stop = 0, start, min(len(text), start + _SCAN_CHARS)
    while i < stop:
        c = text[i]
        if c == "\n":
            return i
        if c == "-" and text.startswith("->", i):
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            if depth == 0:
                return i
            depth -= 1
        elif c in ",:" and depth == 0:
            return i
        i += 1
    return i


def prescan(text: str) -> None:
    """Refuse dimension indices beyond :data:`MAX_RANK` (with their line) before jaxlib parses
    ``text``; quoted strings are ignored."""
    if "dim" not in text and "permutation" not in text:
        return
    # blank out string literals (keeping offsets, hence line numbers)
    masked = _STRING.sub(lambda m: '"' + "_" * (len(m.group(0)) - 2) + '"', text)
    for m in _DIM_KEY.finditer(masked):
        key = m.group(1)
        if key in _NOT_INDICES:
            continue
        end = _value_end(masked, m.end())
        for tok in _INT.finditer(masked, m.end(), end):
            v = int(tok.group(0))
            if abs(v) > MAX_RANK:
                line = masked.count("\n", 0, tok.start()) + 1
                raise _error(f"dimension index {v} in '{key}' is out of range: no tensor has "
                             f"more than {MAX_RANK} dimensions (refused before jaxlib parses "
                             f"the text: its parsers may allocate by this value)", line)


# ---------------------------------------------------------------- 2. the worker process

_WORKER_CODE = r"""
import os, signal, struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
sys.stdout = sys.stderr                      # nothing but replies on the pipe
from jax.extend.mlir import ir, passmanager
from jax.extend.mlir.dialects import stablehlo
from jax.interpreters import mlir
budget = int(sys.argv[1])
try:                                         # cap the address space: a huge allocation fails here
    import resource
    with open("/proc/self/statm") as f:
        base = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (base + budget, resource.getrlimit(resource.RLIMIT_AS)[1]))
except (ImportError, OSError, ValueError):
    pass                                     # no /proc or no rlimit: the deadline still holds
out.write(b"R"); out.flush()
while True:
    head = inp.read(13)
    if len(head) < 13:
        break
    kind, n, seconds = struct.unpack("<cQI", head)
    data = inp.read(n)
    signal.alarm(seconds)                    # SIGALRM's default action ends even a stuck parse
    try:
        with mlir.make_ir_context() as ctx:
            if kind == b"b":
                module = stablehlo.deserialize_portable_artifact(ctx, data)
            else:
                module = ir.Module.parse(data.decode("utf-8"))
            stablehlo.register_stablehlo_passes()
            passmanager.PassManager.parse(
                "builtin.module(func.func(chlo-legalize-to-stablehlo))").run(module.operation)
            del module
        status, msg = b"k", ""
    except MemoryError:
        status, msg = b"m", ""
    except Exception as e:
        status, msg = b"e", str(e).strip()[:2000]
    signal.alarm(0)
    m = msg.encode("utf-8", "replace")
    out.write(struct.pack("<cI", status, len(m)) + m)
    out.flush()
"""


class Worker:
    """One persistent checking process; used under a lock, restarted after a death or overrun."""

    def __init__(self, code: str = _WORKER_CODE):
        self.code = code             # the worker's program (tests give a stand-in)
        self.proc = None
        self.err = None
        self.lock = threading.Lock()
        self.started = 0.0           # seconds the last start took (reported by benchmarks)
        self.budget, self.ready, self.t0 = None, False, 0.0
        if hasattr(os, "register_at_fork"):          # a forked child must not share our pipes
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: me() is not None and me().forget())

    def spawn(self, budget: int):
        """Start the worker if none runs (or its memory cap differs); do not wait for it, so the
        caller can import jax meanwhile."""
        with self.lock:
            self._spawn(budget)

    def _spawn(self, budget: int):
        if self.proc is not None and self.proc.poll() is None and self.budget == budget:
            return
        self._stop()
        self.t0, self.budget, self.ready = time.monotonic(), budget, False
        if self.err is not None:
            self.err.close()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", self.code, str(budget)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err)

    def _wait_ready(self, timeout: float):
        if self.ready:
            return
        try:
            ok = self._read(1, max(timeout, 120.0)) == b"R"     # a cold jax import is slow
        except TimeoutError:
            self._stop()
            raise RuntimeError("did not start within its deadline") from None
        if not ok:
            raise self._died("while starting")
        self.ready, self.started = True, time.monotonic() - self.t0

    def _read(self, n: int, timeout: float):
        """Exactly ``n`` bytes from the worker, None on EOF; TimeoutError past ``timeout``."""
        fd, buf = self.proc.stdout.fileno(), b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError
                chunk = os.read(fd, n - len(buf))
                if not chunk:
                    return None
                buf += chunk
        return buf

    def _stop(self):
        self.ready = False
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self.proc = None

    def _died(self, when: str):
        code = self.proc.wait()
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        tail = ""
        if self.err is not None:
            self.err.seek(max(0, self.err.seek(0, os.SEEK_END) - 4096))     # its last words
            lines = self.err.read().decode(errors="replace").strip().splitlines()
            self.err.close()
            self.err = None
            tail = f"; it said: {lines[-1][:300]}" if lines else ""
        self._stop()
        return RuntimeError(f"died {when} ({how}{tail})")

    def request(self, kind: bytes, data: bytes, budget: int, timeout: float):
        """('ok'|'error'|'memory', message); RuntimeError when the worker died, TimeoutError
        when it overran (the worker is gone either way)."""
        with self.lock:
            self._spawn(budget)
            self._wait_ready(timeout)
            try:
                self.proc.stdin.write(struct.pack("<cQI", kind, len(data), int(timeout) + 5)
                                      + data)
                self.proc.stdin.flush()
                head = self._read(5, timeout)
            except TimeoutError:
                self._stop()
                raise
            except (BrokenPipeError, ConnectionResetError):
                head = None
            if head is None:
                raise self._died("on this input")
            status, n = struct.unpack("<cI", head)
            msg = self._read(n, timeout) if n else b""
            return {b"k": "ok", b"e": "error", b"m": "memory"}[status], \
                (msg or b"").decode("utf-8", "replace")

    def close(self):
        with self.lock:
            self._stop()
            if self.err is not None:
                self.err.close()
                self.err = None

    def forget(self):
        """In a forked child: the worker (and maybe the lock) belong to the parent; drop our
        copies of its pipes without touching it, and start afresh on the next request."""
        self.lock = threading.Lock()
        if self.proc is not None:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self.proc, self.ready = None, False


_WORKER = Worker()
atexit.register(_WORKER.close)
_ACCEPTED: collections.OrderedDict = collections.OrderedDict()   # digests, most recent last
_ACCEPTED_MAX = 1024
_ACCEPTED_LOCK = threading.Lock()


def _diagnostic_line(msg: str):
    m = re.search(r":(\d+):\d+:", msg)
    return int(m.group(1)) if m else None


def check_in_worker(data, *, bytecode: bool, worker: Worker | None = None) -> None:
    """Parse ``data`` (text or a portable artifact) in the checking worker; return if it parses,
    else raise StableHloImportError: the parser's diagnostic (with its line), or how the worker
    died or that it overran NEURON_EMU_PARSE_SECONDS."""
    from device.settings import settings
    worker = worker or _WORKER
    raw = data if bytecode else data.encode("utf-8", "surrogatepass")
    key = hashlib.sha256(raw).digest()
    with _ACCEPTED_LOCK:
        if key in _ACCEPTED:
            _ACCEPTED.move_to_end(key)
            return
    s = settings()
    what = "StableHLO artifact" if bytecode else "StableHLO text"
    budget = max(s.host_memory_bytes, _MIN_WORKER_BYTES)
    try:
        status, msg = worker.request(b"b" if bytecode else b"t", raw, budget, s.parse_seconds)
    except TimeoutError:
        raise _error(f"jaxlib did not parse the {what} within {s.parse_seconds:g} s in the "
                     f"checking worker process; refusing it (raise NEURON_EMU_PARSE_SECONDS=<s> "
                     f"if the module is really that large)") from None
    except RuntimeError as e:
        raise _error(f"the {what} is malformed: jaxlib's parser process {e}; refusing it") \
            from None
    if status == "memory":
        raise _error(f"parsing the {what} needs more than the host-memory budget of "
                     f"{budget >> 20} MiB in jaxlib's parser; refusing it (raise it with "
                     f"NEURON_EMU_HOST_MEMORY=<n>)")
    if status == "error":
        if bytecode:
            raise _error(f"cannot deserialize the StableHLO artifact: {msg[:600]}")
        raise _error(f"cannot parse StableHLO: {msg[:600]}", _diagnostic_line(msg))
    with _ACCEPTED_LOCK:
        _ACCEPTED[key] = True
        if len(_ACCEPTED) > _ACCEPTED_MAX:
            _ACCEPTED.popitem(last=False)


def warm_up() -> None:
    """Start the checking worker now without waiting for it (its jax import then overlaps the
    caller's own)."""
    from device.settings import settings
    _WORKER.spawn(max(settings().host_memory_bytes, _MIN_WORKER_BYTES))


def worker_start_seconds() -> float:
    """How long the last start of the checking worker took (0 before the first)."""
    return _WORKER.started
