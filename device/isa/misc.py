"""GpSimd and miscellaneous instructions: iota (SPEC 3.2)."""
from __future__ import annotations

import numpy as np

from . import defop
from .costs import stream_cost
from .rules import check_onchip_operand, fail, view_arg


@defop("iota", engine="POOL", inputs=())
class Iota:
    """dst[p, i...] = offset + channel_multiplier * p + sum(stride_k * i_k) over ``pattern``."""

    def check(i, arch):
        dst = view_arg(i, "dst")
        check_onchip_operand(i, arch, "dst", dst, ("sbuf",))
        pat = i.args.get("pattern")
        if pat and len(pat) > 4:
            fail(i, "access-pattern", f"pattern has {len(pat)} [step, num] pairs; the hardware "
                 f"generates at most 4 free dimensions", "pattern", len(pat), 4)
        n = int(np.prod([c for _, c in pat])) if pat else 1
        if n != dst.free_size:
            fail(i, "shape-mismatch", f"pattern {pat} generates {n} elements per partition but dst "
                 f"has {dst.free_size}", "pattern", n, dst.free_size)

    def run(i, mem):
        dst = i.args["dst"]
        pat = i.args.get("pattern") or [[0, 1]]
        P = dst.shape[0]
        vals = np.zeros([c for _, c in pat], np.float64)
        for k, (s, c) in enumerate(pat):
            shape = [1] * len(pat)
            shape[k] = c
            vals = vals + s * np.arange(c).reshape(shape)
        vals = vals.reshape(1, -1) + i.args.get("offset", 0) + \
            i.args.get("channel_multiplier", 0) * np.arange(P).reshape(P, 1)
        mem.write(dst, vals.reshape(dst.shape))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"])


@defop("device_print", engine="SP", outputs=(), inputs=("src",))
class DevicePrint:
    """Print a tensor's contents when the program runs (nl.device_print)."""

    def run(i, mem):
        print(i.args.get("prefix", ""), mem.read(i.args["src"], i.loc))

    def cost(i, arch):
        return 0.0


@defop("random_uniform", engine="POOL", inputs=())
class RandomUniform:
    """dst = uniform [0, 1) random values (nl.rand); the emulator's generator is seeded per run."""

    def check(i, arch):
        check_onchip_operand(i, arch, "dst", view_arg(i, "dst"))

    def run(i, mem):
        rng = getattr(mem, "rng", None)
        if rng is None:
            rng = mem.rng = np.random.default_rng(0)
        dst = i.args["dst"]
        mem.write(dst, rng.random(dst.shape, dtype=np.float32))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"])
