"""Legacy ``neuronxcc.nki.compiler``: directives are no-ops and the manual allocators
(``sbuf.mod_alloc``/``psum.mod_alloc``/``.alloc``) hand back the plain buffer, since the emulator
places every tile itself."""
from device.tensor import PSUM, SBUF

from ..compiler import (enable_stack_allocator, force_auto_alloc, options,  # noqa: F401
                        skip_middle_end_transformations)


class _Allocators:
    def __init__(self, buffer):
        self._buffer = buffer

    def mod_alloc(self, *_args, **_kw):
        return self._buffer

    alloc = auto_alloc = mod_alloc


sbuf, psum = _Allocators(SBUF), _Allocators(PSUM)


def no_reorder(*_args, **_kw):
    """A loop directive (``directives=nki.compiler.no_reorder()``): ignored, the emulator is in order."""
    return None
