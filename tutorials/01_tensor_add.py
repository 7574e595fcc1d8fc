"""Tutorial 1: adding two tensors, tile by tile.

What you learn
--------------
* A NeuronCore computes on *tiles* that live in on-chip SBUF: at most 128 rows (the partition
  dimension, axis 0) by a free dimension. Kernel inputs and outputs live in HBM.
* A kernel moves a tile HBM -> SBUF, computes on it, and moves the result SBUF -> HBM.
* The same kernel written with the convenience API (``nl.load`` / ``nl.add`` / ``nl.store``) and with
  the ISA API (``nisa.dma_copy`` / ``nisa.tensor_tensor``, destination first).
* Running on two NeuronCores with ``kernel[2](...)`` (LNC=2): each core takes half of the rows.

Run it:  ``python tutorials/01_tensor_add.py``
"""
import numpy as np

import nki
import nki.isa as nisa
import nki.language as nl

# ## Step 1: one tile at a time with the convenience API
#
# ``nl.ndarray(..., buffer=nl.shared_hbm)`` allocates the output in HBM; a kernel returns it.
# Python loops run while the kernel is traced, so the loops below are fully unrolled: each
# iteration appends a load, an add and a store to the device program.
#
# The tile is 128 partitions (``nl.tile_size.pmax``) by 512 elements. Both bounds are hardware
# rules: a 256-row tile is refused with a ``partition-limit`` error that names your line.


@nki.jit
def add_tiles(a, b):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    rows, cols = a.shape
    P, F = nl.tile_size.pmax, 512
    for i in range(rows // P):
        for j in range(cols // F):
            x = nl.load(a[i * P:(i + 1) * P, j * F:(j + 1) * F])      # HBM -> SBUF
            y = nl.load(b[i * P:(i + 1) * P, j * F:(j + 1) * F])
            nl.store(out[i * P:(i + 1) * P, j * F:(j + 1) * F], nl.add(x, y))
    return out


# ## Step 2: the same kernel with ISA instructions
#
# ``nki.isa`` exposes the instructions themselves. Every instruction writes a destination you
# allocated (``dst`` comes first), and the destination's dtype is the output dtype. Here the add
# runs on the Vector engine; ``nl.add`` above emitted exactly this instruction.


@nki.jit
def add_tiles_isa(a, b):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    rows, cols = a.shape
    P, F = 128, 512
    for i in range(rows // P):
        for j in range(cols // F):
            x = nl.ndarray((P, F), a.dtype, buffer=nl.sbuf)
            y = nl.ndarray((P, F), a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=x, src=a[i * P:(i + 1) * P, j * F:(j + 1) * F])
            nisa.dma_copy(dst=y, src=b[i * P:(i + 1) * P, j * F:(j + 1) * F])
            nisa.tensor_tensor(dst=x, data1=x, data2=y, op=nl.add)
            nisa.dma_copy(dst=out[i * P:(i + 1) * P, j * F:(j + 1) * F], src=x)
    return out


# ## Step 3: two NeuronCores (LNC=2)
#
# ``kernel[2](...)`` runs the body once per core. ``nl.program_id(0)`` is 0 or 1 and
# ``nl.num_programs()`` is 2. The output, allocated in ``shared_hbm``, is one tensor seen by both
# cores, so each core writes its own half of the rows.


@nki.jit
def add_split_rows(a, b):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    rows, cols = a.shape
    half = rows // nl.num_programs()
    first = nl.program_id(0) * half
    P, F = 128, 512
    for i in range(half // P):
        r = slice(first + i * P, first + (i + 1) * P)
        for j in range(cols // F):
            c = slice(j * F, (j + 1) * F)
            nl.store(out[r, c], nl.add(nl.load(a[r, c]), nl.load(b[r, c])))
    return out


def main():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 1024)).astype(np.float32)
    b = rng.standard_normal((256, 1024)).astype(np.float32)
    want = a + b
    results = {
        "nl API": add_tiles(a, b),
        "ISA API": add_tiles_isa(a, b),
        "LNC=2": add_split_rows[2](a, b),
        "nki.simulate": nki.simulate(add_tiles)(a, b),
    }
    for name, got in results.items():
        np.testing.assert_allclose(got, want, rtol=1e-6)
        print(f"{name:>13}: matches NumPy (max |err| = {np.abs(got - want).max():.1e})")
    # The traced program is printable: one line per instruction, with the kernel line it came from.
    program = add_tiles.trace(a, b)
    print(f"add_tiles traced to {len(program.instrs)} instructions; the first three:")
    for ins in program.instrs[:3]:
        print("   ", ins)
    return results


if __name__ == "__main__":
    main()
