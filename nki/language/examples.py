"""Hand-written part of the ``nki.language`` docstrings: a one-line summary and a runnable example.

Math functions (``nl.exp``, ``nl.add``, ...) need no entry: their text is generated from the
ALU / activation tables (``nki.docs.math_meaning``). Fixture tiles are ``nki.docs.FIXTURES``.

name -> (summary, example[, minimum NeuronCore generation])
"""
from __future__ import annotations

_SHAPE = """
>>> y.shape, y.dtype
((128, 512), 'float32')
"""

NL = {
    "ndarray": ("Allocate a tensor in a buffer (``nl.sbuf``, ``nl.psum``, ``nl.shared_hbm``); its "
                "contents are undefined until written.", """
>>> t = nl.ndarray((128, 512), nl.bfloat16, buffer=nl.sbuf)
>>> o = nl.ndarray((128, 512), nl.float32, buffer=nl.shared_hbm)   # a kernel output
>>> t.shape, t.dtype
((128, 512), 'bfloat16')
"""),
    "full": ("A new tile filled with ``fill_value`` (a memset; in HBM, a constant).", """
>>> t = nl.full((128, 4), 2.5, nl.float32)
"""),
    "zeros": ("A new tile of zeros.", """
>>> acc = nl.zeros((128, 512), nl.float32, buffer=nl.psum)
"""),
    "ones": ("A new tile of ones.", """
>>> t = nl.ones((128, 1), nl.float32)
"""),
    "zeros_like": ("Zeros with the shape (and by default dtype and buffer) of ``x``.", """
>>> t = nl.zeros_like(a)
"""),
    "ones_like": ("Ones with the shape (and by default dtype and buffer) of ``x``.", """
>>> t = nl.ones_like(a, dtype=nl.bfloat16)
"""),
    "empty_like": ("An unwritten tensor with the shape (and by default dtype and buffer) of ``x``.",
                   """
>>> t = nl.empty_like(a)
"""),
    "shared_constant": ("A constant tensor in shared HBM from a NumPy array or a ``.npy`` path.", """
>>> c = nl.shared_constant(np.arange(512, dtype=np.float32).reshape(1, 512))
"""),
    "shared_identity_matrix": ("An n x n identity matrix in SBUF (one per dtype and size).", """
>>> eye = nl.shared_identity_matrix(128, dtype=nl.bfloat16)
"""),
    "rand": ("A new tile of uniform random values in [0, 1).", """
>>> r = nl.rand((128, 512), nl.float32)
"""),
    "affine_range": ("``range`` for kernel loops (NKI 0.6 unrolls every loop at trace time).", """
>>> for i in nl.affine_range(4):
...     nisa.tensor_scalar(dst=out[:, i * 128:(i + 1) * 128], data=a[:, i * 128:(i + 1) * 128],
...                        op0=nl.multiply, operand0=float(i))
<nisa.tensor_scalar on ...>
<nisa.tensor_scalar on ...>
<nisa.tensor_scalar on ...>
<nisa.tensor_scalar on ...>
"""),
    "sequential_range": ("``range`` for loops whose iterations depend on each other (unrolled).", """
>>> [i for i in nl.sequential_range(3)]
[0, 1, 2]
"""),
    "static_range": ("``range`` unrolled at trace time.", """
>>> list(nl.static_range(0, 8, 4))
[0, 4]
"""),
    "dynamic_range": ("Deprecated: unrolled like ``range``; use ``nl.fori_loop`` for device loops.",
                      """
>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     list(nl.dynamic_range(2))
[0, 1]
"""),
    "ds": ("Dynamic slice: ``t[nl.ds(start, size)]`` is ``t[start:start + size]``.", """
>>> a[:, nl.ds(128, 64)].shape
(128, 64)
"""),
    "par_dim": ("Marks the partition dimension of a shape (legacy spelling; returns ``n``).", """
>>> nl.par_dim(128)
128
"""),
    "program_id": ("This core's index in an SPMD launch ``kernel[n]`` (0 without a grid).", """
>>> nl.program_id(0)
0
"""),
    "num_programs": ("The number of cores in the launch (1 without a grid).", """
>>> nl.num_programs(0)
1
"""),
    "program_ndim": ("The number of launch-grid dimensions (0 without a grid).", """
>>> nl.program_ndim()
0
"""),
    "no_reorder": ("A block whose instructions keep program order (the emulator is in-order anyway).",
                   """
>>> with nl.no_reorder():
...     nisa.tensor_copy(dst=out, src=a)
<nisa.tensor_copy on ...>
"""),
    "device_print": ("Print a tensor's values, prefixed, when the kernel runs on the emulator.", """
>>> nl.device_print("first rows", col[0:2])
"""),
    "is_sbuf": ("True when a tensor (or buffer) is in SBUF.", """
>>> nl.is_sbuf(a), nl.is_sbuf(ps)
(True, False)
"""),
    "is_psum": ("True when a tensor (or buffer) is in PSUM.", """
>>> nl.is_psum(ps)
True
"""),
    "is_hbm": ("True when a tensor (or buffer) is in HBM.", """
>>> nl.is_hbm(hbm_in)
True
"""),
    "is_on_chip": ("True for SBUF and PSUM tensors.", """
>>> nl.is_on_chip(a), nl.is_on_chip(hbm_in)
(True, False)
"""),
    "where": ("Select element-wise: ``x`` where ``condition`` is 1, else ``y``; the way to branch "
              "on tile values.", """
>>> y = nl.where(nl.greater(a, 1.0), a, 0.0)         # relu around 1.0
""" + _SHAPE),
    "var": ("Population variance along free axes.", """
>>> v = nl.var(a, axis=1)
>>> v.shape
(128, 1)
"""),
    "softmax": ("Softmax along a free axis, computed in fp32.", """
>>> y = nl.softmax(a, axis=1)
""" + _SHAPE),
    "rms_norm": ("RMS normalisation ``x / sqrt(mean(x*x) + eps) * w`` along a free axis.", """
>>> wt = nl.ones((1, 512), nl.float32)
>>> y = nl.rms_norm(a, wt, axis=1, n=512)
""" + _SHAPE),
    "dropout": ("Zero each element with probability ``rate`` (no rescaling).", """
>>> y = nl.dropout(a, rate=0.1)
""" + _SHAPE),
    "load_transpose2d": ("Load an HBM ``[A, B]`` tensor as an SBUF ``[B, A]`` tile (one DMA).", """
>>> t = nl.load_transpose2d(hbm_in[:, 0:128])
>>> t.shape
(128, 128)
"""),
    "gather_flattened": ("Per partition, ``out[p, i] = data[p].flatten()[indices[p, i]]``.", """
>>> idx = nl.full((128, 16), 5, nl.uint32)
>>> g = nl.gather_flattened(a, idx)
>>> g.shape
(128, 16)
"""),
    "random_seed": ("Seed the generator behind ``nl.rand`` / ``nl.dropout`` from a [1, 1] tile.", """
>>> nl.random_seed(nl.full((1, 1), 7, nl.int32))
"""),
    "sum": ("Sum along free axes (``keepdims`` keeps them as size 1).", """
>>> s = nl.sum(a, axis=1, keepdims=True)
>>> s.shape
(128, 1)
"""),
    "max": ("Maximum along free axes.", """
>>> nl.max(a, axis=1).shape
(128, 1)
"""),
    "min": ("Minimum along free axes.", """
>>> nl.min(a, axis=1, keepdims=True).shape
(128, 1)
"""),
    "prod": ("Product along free axes.", """
>>> nl.prod(a[:, 0:8], axis=1, keepdims=True).shape
(128, 1)
"""),
    "all": ("1 where every element along the free axes is non-zero, else 0.", """
>>> nl.all(nl.greater(a, 0.0), axis=1).shape
(128, 1)
"""),
    "mean": ("Arithmetic mean along free axes.", """
>>> nl.mean(a, axis=1, keepdims=True).shape
(128, 1)
"""),
    "load": ("Copy an HBM tensor (or a slice of one) into a new SBUF tile.", """
>>> t = nl.load(hbm_in[0:128, 0:256])
>>> t.shape, t.buffer.name
((128, 256), 'sbuf')
"""),
    "store": ("Copy a tile into an HBM tensor (or a slice of one).", """
>>> nl.store(hbm_out, value=a)
"""),
    "matmul": ("Matrix product on TensorE (``transpose_x=True``: ``x`` is already transposed).",
               """
>>> p = nl.matmul(w, x, transpose_x=True)            # w.T @ x, fp32 in PSUM
>>> p.shape, p.buffer.name
((128, 512), 'psum')
"""),
    "transpose": ("Transpose a 2-D tile (partition <-> free) on TensorE.", """
>>> nl.transpose(w).shape
(128, 128)
"""),
    "broadcast_to": ("Broadcast a tile to a larger shape (a partition broadcast copies data).", """
>>> nl.broadcast_to(col, (128, 512)).shape
(128, 512)
"""),
    "expand_dims": ("Insert a size-1 axis (a view, no data movement).", """
>>> nl.expand_dims(a, 1).shape
(128, 1, 512)
"""),
    "promote": ("The result dtype of mixing two dtypes (NKI's promotion rules).", """
>>> nl.promote(nl.bfloat16, nl.float32)
'float32'
"""),
    "fori_loop": ("A loop that runs on the device; bounds may be registers (known only at run "
                  "time).", """
>>> def body(i):
...     nisa.tensor_tensor(dst=out, data1=a, data2=b, op=nl.add)
>>> nl.fori_loop(0, 4, body)
"""),
    "while_loop": ("``r = init; while r != 0: r = body(r)`` on the device.", """
>>> def body(r):
...     nisa.register_move(r, 0)                         # stop after one iteration
...     return r
>>> nl.while_loop(1, body)
"""),
    "copy": ("A copy of a tile (optionally converting its dtype); also the ``op=nl.copy`` token.",
             """
>>> y = nl.copy(a)
""" + _SHAPE),
}

# tokens used only as ``op=`` arguments of ISA calls
TOKEN_ONLY = {
    "prelu": """
>>> nisa.activation(dst=out, op=nl.prelu, data=a)
<nisa.activation on ACT>
""",
    "bypass": """
>>> nisa.tensor_scalar(dst=out, data=a, op0=nl.bypass, operand0=0.0)
<nisa.tensor_scalar on DVE>
""",
    "average": """
>>> row = nl.ndarray((128, 1), nl.float32, buffer=nl.sbuf)
>>> nisa.tensor_reduce(dst=row, op=nl.average, data=a, axis=1, keepdims=True)
<nisa.tensor_reduce on DVE>
""",
}

# integer-only math (the fixture ``n`` is an int32 tile)
INT_OPS = {"bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift", "invert"}

CLASSES = {
    "MemoryRegion": "Buffer names as attributes: ``sbuf``, ``psum``, ``private_hbm``, ``shared_hbm``.",
}
