"""``nki.compiler``: compiler directives. The emulator has no compiler passes to steer, so each
directive is accepted and is a no-op (a decorator returns the function unchanged).

    @nki.compiler.skip_middle_end_transformations
    @nki.jit
    def kernel(...): ...
"""


def _passthrough(fn=None, **_options):
    if fn is None:
        return lambda f: f
    return fn


skip_middle_end_transformations = _passthrough
enable_stack_allocator = _passthrough
force_auto_alloc = _passthrough


class _Options:
    """``nki.compiler.options``-style attribute bag: any attribute reads as None."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


options = _Options()
