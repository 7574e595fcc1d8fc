"""Drop-in ``nki.language`` (NKI 0.6): dtypes, buffers, tile_size, creation, math, reductions.

    import nki.language as nl
    t = nl.load(a_hbm); nl.store(out_hbm, nl.exp(t))
"""
from .core import *  # noqa: F401,F403
from .core import (bool_, device_print, ds, dynamic_range, no_reorder, num_programs, program_id,
                   program_ndim, tile_size)
from .ops import (OpToken, TOKENS, broadcast_to, copy, expand_dims, load, matmul, max, mean, min,
                  prod, promote, store, sum, transpose)
from .ops import all  # noqa: A004
from .extra import *  # noqa: F401,F403
from .control import VirtualRegister, fori_loop, while_loop  # noqa: F401
from .core import DType, NKIObject, NkiTensor  # noqa: F401
del dtypes, limits, loopcut   # the device modules core.py uses: not NKI names  # noqa: F821
from . import assign  # noqa: F401,E402  (installs t[...] = x; nl.assign as before)

globals().update({k: v for k, v in TOKENS.items() if k not in ("copy",)})
copy = TOKENS["copy"]

from ..strictness import strict  # noqa: E402

# an unknown keyword argument is an error (NKI 0.3+), not silently ignored
for _n, _v in list(globals().items()):
    if not _n.startswith("_") and callable(_v) and getattr(_v, "__module__", "").startswith(
            "nki.language") and type(_v).__name__ == "function":
        globals()[_n] = strict(_v, "nl.")
del _n, _v, strict

from ..docs import document_nl  # noqa: E402
from . import examples  # noqa: E402  (nl.examples as before: importing a submodule binds it)
from .ops import BINARY  # noqa: E402

document_nl(globals(), examples.NL, examples.TOKEN_ONLY, BINARY, examples.INT_OPS,
            examples.CLASSES)
del document_nl, BINARY     # keep nl's namespace the NKI one
