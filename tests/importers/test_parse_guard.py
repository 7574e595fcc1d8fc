"""Untrusted StableHLO is parsed by jaxlib in a checking worker process, never first in ours
(issue 9: a convolution ``dim_numbers`` index of 2^31 made jaxlib's text parser allocate ~17 GB and
the process die). The pre-scan refuses dimension indices beyond any rank; a worker that dies or
overruns is a named error and is replaced; jax's own text (from_jax) keeps the in-process path."""
from __future__ import annotations

import os

import numpy as np
import pytest

import neuron
from lowering import StableHloImportError, parse_stablehlo
from lowering.importers import mlir_adapter, mlir_guard
from lowering.importers.mlir_guard import MAX_RANK, Worker, check_in_worker, prescan

CONV = """module @m {
  func.func public @main(%x: tensor<1x2x9xf32>, %k: tensor<3x2x3xf32>) -> tensor<1x3x9xf32> {
    %0 = stablehlo.convolution(%x, %k) dim_numbers = [b, f, DIM]x[o, i, 0]->[b, f, 0], window = {stride = [1], pad = [[1, 1]], lhs_dilate = [1], rhs_dilate = [1], reverse = [false]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x2x9xf32>, tensor<3x2x3xf32>) -> tensor<1x3x9xf32>
    return %0 : tensor<1x3x9xf32>
  }
}
"""

TRANSPOSE = """module @t {
  func.func public @main(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
    %0 = stablehlo.transpose %a, dims = [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32>
    return %0 : tensor<3x2xf32>
  }
}
"""


@pytest.fixture
def no_worker(monkeypatch):
    """Fail the test if anything asks the checking worker."""
    def refuse(*a, **k):
        raise AssertionError("the checking worker was asked")
    monkeypatch.setattr(mlir_adapter, "check_in_worker", refuse)


def test_dim_numbers_of_2_to_31_is_refused_before_jaxlib(no_worker):
    with pytest.raises(StableHloImportError) as info:
        parse_stablehlo(CONV.replace("DIM", str(2**31)))
    e = info.value
    assert e.line == 3
    assert "dimension index 2147483648 in 'dim_numbers'" in str(e)
    assert f"more than {MAX_RANK} dimensions" in str(e)


@pytest.mark.parametrize("fragment,key", [
    ("dims = [1, 300]", "dims"),
    ("contracting_dims = [1] x [70000]", "contracting_dims"),
    ("batching_dims = [0] x [-4294967296]", "batching_dims"),
    ("{dimension = 99999 : i64}", "dimension"),
    ("dimension_numbers = #stablehlo.gather<offset_dims = [1], index_vector_dim = 1000>",
     "dimension_numbers"),
    ("{permutation = array<i64: 0, 4096>}", "permutation"),
    ("{broadcast_dimensions = array<i64: 65536>}", "broadcast_dimensions"),
    ("#stablehlo.conv<raw input_batch_dimension = 0, input_spatial_dimensions = [2147483648]>",
     "input_spatial_dimensions"),
])
def test_prescan_refuses_every_spelling_of_a_dimension_index(fragment, key):
    with pytest.raises(StableHloImportError, match=f"dimension index -?\\d+ in '{key}'") as info:
        prescan(f"module {{\n  %0 = stablehlo.op {fragment} : tensor<f32>\n}}")
    assert info.value.line == 2


@pytest.mark.parametrize("fragment", [
    "window_dimensions = array<i64: 300, 1>",            # a window size, not a dimension index
    'loc("dims = [100000]")',                             # inside a string
    "dense<100000> : tensor<i64>",
    "dims = [1, 0] : (tensor<100000x3xf32>) -> tensor<3x100000xf32>",   # sizes after the value
    f"dims = [{MAX_RANK}]",
    "%dim = stablehlo.constant dense<100000> : tensor<i64>",   # an SSA name, not an attribute
    "%dim_0 = arith.constant 99999 : index",
])
def test_prescan_leaves_sizes_strings_and_in_range_indices_alone(fragment):
    prescan(f"%0 = stablehlo.op {fragment}")


def test_prescan_passes_every_jax_export():
    from tests.fuzz.seeds import seeds
    for name, text in seeds()["stablehlo"]:
        prescan(text)


# ---------------------------------------------------------------- the worker's plumbing
# A stand-in worker speaking the same protocol (no jax: fast), told what to do by the payload.
STAND_IN = r"""
import os, struct, sys, time
inp, out = sys.stdin.buffer, sys.stdout.buffer
out.write(b"R"); out.flush()
while True:
    head = inp.read(13)
    if len(head) < 13:
        break
    kind, n, seconds = struct.unpack("<cQI", head)
    data = inp.read(n)
    if data.startswith(b"abort"):
        sys.stderr.write("stand-in: giving up\n"); sys.stderr.flush(); os.abort()
    if data.startswith(b"exit"):
        sys.exit(7)
    if data.startswith(b"hang"):
        time.sleep(60)
    if data.startswith(b"bad"):
        msg = b'error: "-":4:2: nonsense'
        out.write(struct.pack("<cI", b"e", len(msg)) + msg); out.flush(); continue
    out.write(struct.pack("<cI", b"k", 0)); out.flush()
"""


@pytest.fixture
def stand_in():
    w = Worker(STAND_IN)
    yield w
    w.close()


def _fresh(word: str) -> str:
    return f"{word} {os.urandom(8).hex()}"      # never in the accepted-digest cache


def test_worker_is_reused_and_replaced_after_a_crash(stand_in):
    check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)
    pid = stand_in.proc.pid
    check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)
    assert stand_in.proc.pid == pid                          # persistent
    with pytest.raises(StableHloImportError) as info:
        check_in_worker(_fresh("abort"), bytecode=False, worker=stand_in)
    text = str(info.value)
    assert "StableHLO text is malformed" in text and "died on this input" in text
    assert f"signal {int(__import__('signal').SIGABRT)}" in text
    assert "stand-in: giving up" in text                     # the child's last word
    assert stand_in.proc is None
    check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)   # a fresh worker
    assert stand_in.proc.pid != pid


def test_worker_exit_code_is_named(stand_in):
    with pytest.raises(StableHloImportError, match=r"StableHLO artifact is malformed: .*"
                                                   r"\(exit code 7\)"):
        check_in_worker(_fresh("exit").encode(), bytecode=True, worker=stand_in)


def test_worker_past_its_deadline_is_killed(stand_in, monkeypatch):
    monkeypatch.setenv("NEURON_EMU_PARSE_SECONDS", "1")
    with pytest.raises(StableHloImportError, match="did not parse the StableHLO text within 1 s"
                                                   ".*NEURON_EMU_PARSE_SECONDS"):
        check_in_worker(_fresh("hang"), bytecode=False, worker=stand_in)
    assert stand_in.proc is None
    check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)


def test_parse_errors_come_back_with_their_line(stand_in):
    with pytest.raises(StableHloImportError, match="cannot parse StableHLO: .*nonsense") as info:
        check_in_worker(_fresh("bad"), bytecode=False, worker=stand_in)
    assert info.value.line == 4


def test_accepted_inputs_are_remembered(stand_in):
    text = _fresh("ok")
    check_in_worker(text, bytecode=False, worker=stand_in)
    stand_in.close()
    stand_in.code = "raise SystemExit(5)"                    # any new worker would fail
    check_in_worker(text, bytecode=False, worker=stand_in)   # no worker needed
    with pytest.raises(StableHloImportError, match="while starting"):
        check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)


def test_threads_share_one_worker(stand_in):
    from concurrent.futures import ThreadPoolExecutor
    texts = [_fresh("ok") for _ in range(16)] + [_fresh("bad") for _ in range(4)]

    def check(t):
        try:
            check_in_worker(t, bytecode=False, worker=stand_in)
            return "ok"
        except StableHloImportError as e:
            return "bad" if e.line == 4 else str(e)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(check, texts))
    assert got == [t.split()[0] for t in texts]


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")   # the child touches no jax
def test_a_forked_child_gets_its_own_worker(stand_in):
    check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)
    parent_worker = stand_in.proc.pid
    pid = os.fork()
    if pid == 0:                                            # the child: never share the pipes
        code = 1
        try:
            assert stand_in.proc is None
            check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)
            code = 0 if stand_in.proc.pid != parent_worker else 2
            stand_in.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    check_in_worker(_fresh("ok"), bytecode=False, worker=stand_in)   # ours still answers
    assert stand_in.proc.pid == parent_worker


# ---------------------------------------------------------------- the real worker
def test_real_worker_refuses_an_oversize_parse_within_the_memory_budget(monkeypatch):
    """The seed-2 crash, past the pre-scan: jaxlib asks for ~17 GB; under the worker's
    address-space cap that fails at once and is reported, and the caller lives on."""
    monkeypatch.setenv("NEURON_EMU_HOST_MEMORY", "300M")
    w = Worker()
    try:
        with pytest.raises(StableHloImportError,
                           match="host-memory budget of 300 MiB|parser process died"):
            check_in_worker(CONV.replace("DIM", str(2**31)), bytecode=False, worker=w)
        check_in_worker(CONV.replace("DIM", "0"), bytecode=False, worker=w)
    finally:
        w.close()


def test_untrusted_text_errors_carry_the_line():
    with pytest.raises(StableHloImportError, match="cannot parse StableHLO") as info:
        neuron.load_stablehlo(TRANSPOSE.replace("dims = [1, 0]", "dims = [1, 0"))
    assert info.value.line == 3


def test_str_and_bytes_go_through_the_worker_and_jax_text_does_not(no_worker):
    import jax
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(AssertionError, match="worker was asked"):
        neuron.load_stablehlo(TRANSPOSE)
    with pytest.raises(AssertionError, match="worker was asked"):
        neuron.load_stablehlo(b"ML\xefR" + b"\0" * 16)
    f = neuron.from_jax(lambda a: a.T * 2)                   # jax printed it here: trusted
    np.testing.assert_array_equal(f(x), x.T * 2)
    lowered = jax.jit(lambda a: a.T).lower(x)                # a jaxlib object: trusted
    np.testing.assert_array_equal(neuron.load_stablehlo(lowered)(x), x.T)
    g = parse_stablehlo(TRANSPOSE, trusted=True)
    assert [o.opcode for o in g.ops][-1] == "transpose"

