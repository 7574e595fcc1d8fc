"""Partition-dimension rules: the 128-partition limit, start-partition alignment, free-size limits,
out-of-bound indexing and element-wise shape agreement. One test per rule."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nki
import nki.isa as nisa
import nki.language as nl
from rules_helpers import expect_rule, marker_line, ones


@nki.jit
def too_many_partitions(a):
    t = nl.ndarray((256, 8), nl.float32, buffer=nl.sbuf, name="big")  # <- alloc
    return a


def test_partition_limit_on_allocation():
    expect_rule(lambda: too_many_partitions(ones(4, 4)), rule="partition-limit", operand="big",
                value=256, limit=128, where=marker_line(too_many_partitions, "alloc"),
                says=("256 partitions", "the limit is 128"))


@nki.jit
def placed_past_the_last_partition(a):
    t = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf, address=(64, 0), name="late")  # <- alloc
    return a


def test_partition_limit_with_address():
    expect_rule(lambda: placed_past_the_last_partition(ones(4, 4)), rule="partition-limit",
                operand="late", value=192, limit=128,
                where=marker_line(placed_past_the_last_partition, "alloc"),
                says=("partition 64", "reaches partition 191", "0-127"))


def start_kernel(lo, hi):
    @nki.jit
    def kernel(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.tensor_tensor(dst=t[lo:hi], data1=t[lo:hi], data2=t[lo:hi], op=nl.add)  # <- op
        nisa.dma_copy(dst=out, src=t)
        return out
    return kernel


def test_partition_start_over_64_partitions_must_start_at_0():
    k = start_kernel(32, 128)
    expect_rule(lambda: k(ones(128, 8)), rule="partition-start", operand="dst", value=32, limit=0,
                where=marker_line(k, "op"), says=("96 partitions starting at 32", "partition 0"))


def test_partition_start_33_to_64_partitions_start_at_0_or_64():
    k = start_kernel(32, 96)
    expect_rule(lambda: k(ones(128, 8)), rule="partition-start", operand="dst", value=32,
                limit="0 or 64", where=marker_line(k, "op"), says=("64 partitions starting at 32",))


def test_partition_start_up_to_32_partitions_start_on_a_quadrant():
    k = start_kernel(8, 16)
    expect_rule(lambda: k(ones(128, 8)), rule="partition-start", operand="dst", value=8,
                limit="0/32/64/96", where=marker_line(k, "op"), says=("0, 32, 64 or 96",))


def test_aligned_starts_and_dma_at_any_partition_are_accepted():
    @nki.jit
    def kernel(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.tensor_tensor(dst=t[64:128], data1=t[64:128], data2=t[64:128], op=nl.add)
        nisa.tensor_tensor(dst=t[96:128], data1=t[96:128], data2=t[96:128], op=nl.add)
        nisa.dma_copy(dst=out[5:6], src=t[5:6])            # DMA queues address any partition
        nisa.dma_copy(dst=out[0:5], src=t[0:5])
        nisa.dma_copy(dst=out[6:128], src=t[6:128])
        return out
    a = np.arange(128 * 8, dtype=np.float32).reshape(128, 8)
    want = a.copy()
    want[64:] *= 2
    want[96:] *= 2
    np.testing.assert_array_equal(kernel(a), want)


@nki.jit
def wide_psum_read(a):
    out = nl.ndarray((128, 5000), nl.bfloat16, buffer=nl.shared_hbm)
    p = nl.ndarray((128, 5000), nl.bfloat16, buffer=nl.psum)
    s = nl.ndarray((128, 5000), nl.bfloat16, buffer=nl.sbuf)
    nisa.tensor_copy(dst=s, src=p)  # <- copy
    nisa.dma_copy(dst=out, src=s)
    return out


def test_free_size_limit_in_psum():
    expect_rule(lambda: wide_psum_read(ones(4, 4)), rule="free-size-limit", operand="src",
                value=5000, limit=4096, where=marker_line(wide_psum_read, "copy"),
                says=("5000 elements per partition", "the limit is 4096"))


@nki.jit
def index_past_the_end(a):
    row = a[200]  # <- index
    return a


def test_access_out_of_bound():
    expect_rule(lambda: index_past_the_end(ones(128, 4)), rule="access-out-of-bound", operand="a",
                value=200, limit=128, where=marker_line(index_past_the_end, "index"),
                says=("index 200", "size 128"))


@nki.jit
def mismatched_elementwise(a):
    out = nl.ndarray((128, 8), nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
    y = nl.ndarray((128, 4), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=x, value=1.0)
    nisa.memset(dst=y, value=1.0)
    nisa.tensor_tensor(dst=x, data1=x, data2=y, op=nl.multiply)  # <- op
    nisa.dma_copy(dst=out, src=x)
    return out


def test_elementwise_shape_mismatch():
    expect_rule(lambda: mismatched_elementwise(ones(4, 4)), rule="shape-mismatch", operand="data2",
                value=[128, 4], limit=[128, 8], where=marker_line(mismatched_elementwise, "op"),
                says=("[128, 4]", "[128, 8]"))


def documented_start_ok(start, n):
    """trainium_inferentia2_arch.rst: the start partition allowed for an access of n partitions."""
    if n > 64:
        return start == 0
    if n > 32:
        return start in (0, 64)
    return start in (0, 32, 64, 96)


@given(n=st.integers(1, 128), data=st.data())
def test_start_partition_rule_matches_the_documented_table(n, data):
    start = data.draw(st.integers(0, 128 - n), label="start")
    k = start_kernel(start, start + n)
    if documented_start_ok(start, n):
        want = np.ones((128, 8), np.float32)
        want[start:start + n] = 2.0
        np.testing.assert_array_equal(k(np.ones((128, 8), np.float32)), want)
    else:
        expect_rule(lambda: k(np.ones((128, 8), np.float32)), rule="partition-start",
                    operand="dst", value=start, limit=(0 if n > 64 else "0 or 64" if n > 32
                                                       else "0/32/64/96"),
                    where=marker_line(k, "op"))


@nki.jit
def broadcast_psum_read(a):
    """A (128, 320) PSUM tile broadcast over 24 columns: 7680 reads of 320 distinct elements."""
    out = nl.ndarray((128, 320, 24), nl.float32, buffer=nl.shared_hbm)
    p = nl.ndarray((128, 320, 1), nl.float32, buffer=nl.psum)
    nisa.memset(dst=p, value=1.5)
    s = nl.ndarray((128, 320, 24), nl.float32, buffer=nl.sbuf)
    nisa.tensor_copy(dst=s, src=p.broadcast(2, 24))
    nisa.dma_copy(dst=out, src=s)
    return out


def test_free_size_limit_counts_distinct_psum_elements():
    out = broadcast_psum_read(ones(4, 4))
    np.testing.assert_array_equal(out, np.full((128, 320, 24), 1.5, np.float32))
