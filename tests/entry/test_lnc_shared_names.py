"""LNC=2: kernel-level ``shared_hbm`` scratch tensors are linked across the two cores by NAME.

The NKI docs (``nki.language.ndarray``, ``name``): "the compiler uses the name to link non-IO
shared_hbm tensors among PNCs ... shared_hbm tensors will point to the same underlying memory as
long as they have the same name, even if the tensors appear in different control flow". A kernel
that splits blocks between the cores and names its per-block scratch ``f"blk_{b}"`` therefore has
one scratch per block, not one per allocation slot: linking by allocation order made core 1's
block 1 overwrite core 0's block 0 (the nki-library MXFP8 MoE forward gave cosine 0.73).
"""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError

A = np.arange(4 * 128 * 8, dtype=np.float32).reshape(4 * 128, 8)


@nki.jit
def blocks_through_named_scratch(a):
    """Each core handles blocks pid, pid+2, ...; every block goes through its own named scratch
    tensor in shared HBM, written and read back by the same core."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid, n = nl.program_id(0), nl.num_programs()
    for b in range(pid, a.shape[0] // 128, n):
        scratch = nl.ndarray((128, a.shape[1]), a.dtype, buffer=nl.shared_hbm, name=f"blk_{b}")
        t = nl.ndarray((128, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[b * 128:(b + 1) * 128])
        nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=float(b + 1))
        nisa.dma_copy(dst=scratch, src=t)
        u = nl.ndarray((128, a.shape[1]), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=u, src=scratch)
        nisa.dma_copy(dst=out[b * 128:(b + 1) * 128], src=u)
    return out


def _want():
    return A + np.repeat(np.arange(1, 5, dtype=np.float32), 128)[:, None]


@pytest.mark.parametrize("lnc", [1, 2])
def test_per_block_named_scratch_is_one_tensor_per_name(lnc):
    k = blocks_through_named_scratch if lnc == 1 else blocks_through_named_scratch[lnc]
    np.testing.assert_array_equal(k(A), _want())


def test_per_block_names_give_each_core_its_own_storage():
    prog = blocks_through_named_scratch[2].trace(A)
    names = {}
    for c, (lo, hi) in enumerate(prog.info.core_ranges):
        for ins in prog.instrs[lo:hi]:
            for v in ins.writes():
                if v.storage.name.startswith("blk_"):
                    names.setdefault(v.storage.name, set()).add((c, v.storage.id))
    assert sorted(names) == ["blk_0", "blk_1", "blk_2", "blk_3"]
    assert all(len(s) == 1 for s in names.values())                 # one storage per name
    assert {c for s in names.values() for c, _ in s} == {0, 1}
    assert len({i for s in names.values() for _, i in s}) == 4


def one_name_on_both_cores(a):
    """Core 0 fills a named scratch; after a barrier core 1 reads it back: one tensor, one name,
    allocated at different places in the two cores' control flow."""
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    pid = nl.program_id(0)
    if pid == 0:
        box = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm, name="box")
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=3.0)
        nisa.dma_copy(dst=box, src=t)
        nisa.core_barrier(box, (0, 1))
    else:
        other = nl.ndarray((1, 1), a.dtype, buffer=nl.sbuf)          # a different path before
        nisa.memset(other, value=0.0)
        box = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm, name="box")
        nisa.core_barrier(box, (0, 1))
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=box)
        nisa.dma_copy(dst=out, src=t)
    return out


def test_same_name_is_the_same_tensor_across_control_flow():
    a = A[:128]
    k = nki.jit(one_name_on_both_cores, target="trn2")[2]          # core_barrier needs v3+
    np.testing.assert_array_equal(k(a), 3 * a)


@nki.jit
def name_with_two_shapes(a):
    pid = nl.program_id(0)
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    rows = 128 if pid == 0 else 64
    nl.ndarray((rows, a.shape[1]), a.dtype, buffer=nl.shared_hbm, name="scratch")
    t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=a)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_one_name_with_two_shapes_is_an_error_naming_both_cores():
    with pytest.raises(UserKernelError, match=r"core 1 allocated 'scratch' as \[64, 8\] float32 "
                                              r"but core 0 allocated it as \[128, 8\] float32"):
        name_with_two_shapes[2](A[:128])
