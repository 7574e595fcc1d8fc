"""Engine random number generators (SPEC 3.2: rng, set_rng_seed, rand2, rand_set_state,
rand_get_state).

Each engine lane holds XORWOW state (Marsaglia 2003: five xorshift words and a Weyl counter, 6
uint32 words). GpSimd keeps one generator per lane (6 words); VectorE keeps four (24 words), and
element f of a lane draws from generator f % 4. The state lives on the Memory of one run
(``mem.rng_state``), so sequences carry from one instruction to the next in program order; an
engine that was never seeded starts from ``seed_state(0)``.

Seeding from one 32-bit value (set_rng_seed) spreads it over lanes and words with splitmix32, a
choice of this emulator: the hardware's expansion is undocumented, so only "same seed, same
sequence" is promised. rand_set_state/rand_get_state move raw state words and round-trip exactly.

    >>> s = seed_state(7, 2, 1)
    >>> bits, s2 = xorwow(s, 3)
    >>> bits.shape, bits.dtype
    ((2, 3), dtype('uint32'))
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..tensor import View
from . import defop
from .accum import check_generation, lanes, read_column
from .costs import stream_cost
from .rules import check_dtype, check_onchip_operand, fail, scalar_or_column, view_arg, write2d

LANES = 128
WORDS = {"POOL": 6, "DVE": 24}          # state words per lane (rand_set_state docs)
WEYL = np.uint32(362437)
RNG_INTS = ("int8", "int16", "int32", "uint8", "uint16", "uint32")
RAND2_OUT = ("float8_e4m3", "float8_e5m2", "float16", "bfloat16", "float32", "tfloat32", "int8",
             "int16", "int32", "uint8", "uint16", "uint32")


def _splitmix32(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint32(0x9E3779B9)).astype(np.uint32)
    z = x.copy()
    z = ((z ^ (z >> np.uint32(16))) * np.uint32(0x85EBCA6B)).astype(np.uint32)
    z = ((z ^ (z >> np.uint32(13))) * np.uint32(0xC2B2AE35)).astype(np.uint32)
    return (z ^ (z >> np.uint32(16))).astype(np.uint32)


def seed_state(seed: int, lanes_: int = LANES, gens: int = 1) -> np.ndarray:
    """(lanes, 6 * gens) uint32 XORWOW state derived from one 32-bit seed."""
    idx = np.arange(lanes_ * gens * 6, dtype=np.uint32)
    with np.errstate(over="ignore"):
        st = _splitmix32(np.uint32(seed & 0xFFFFFFFF) * np.uint32(0x01000193) + idx)
    return st.reshape(lanes_, gens * 6)


def xorwow(state: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` 32-bit values per lane from (lanes, 6*g) state; element f uses generator f % g.

    Returns (bits (lanes, n) uint32, new state). Per generator: t = x ^ (x >> 2); shift the words
    (x, y, z, w) <- (y, z, w, v); v = (v ^ (v << 4)) ^ (t ^ (t << 1)); d += 362437; out = v + d.
    """
    L, W = state.shape
    g = W // 6
    s = state.reshape(L, g, 6).astype(np.uint32).copy()
    out = np.empty((L, n), np.uint32)
    with np.errstate(over="ignore"):
        for step in range(-(-n // g)):
            k = min(g, n - step * g)             # only the generators that produce an element
            c = s[:, :k]
            x, v = c[:, :, 0], c[:, :, 4]
            t = x ^ (x >> np.uint32(2))
            c[:, :, 0:4] = c[:, :, 1:5]
            v = (v ^ (v << np.uint32(4))) ^ (t ^ (t << np.uint32(1)))
            c[:, :, 4] = v
            c[:, :, 5] = c[:, :, 5] + WEYL
            out[:, step * g:step * g + k] = v + c[:, :, 5]
    return out, s.reshape(L, W)


def _state(mem, engine: str) -> np.ndarray:
    d = mem.__dict__.setdefault("rng_state", {})
    s = d.get(engine)
    if s is None:
        s = d[engine] = seed_state(0, LANES, WORDS[engine] // 6)
    return s


def draw(mem, engine: str, v: View) -> np.ndarray:
    """(P, free) uint32 random words for the lanes of ``v``, advancing those lanes' state."""
    s = _state(mem, engine)
    ln = lanes(v)
    bits, s[ln] = xorwow(s[ln], v.free_size)
    return bits


def _engine_rule(i, arch, allowed_by_gen, what):
    """Engine availability per generation: ``allowed_by_gen`` maps min generation -> engines."""
    ok = set()
    for g, engs in allowed_by_gen.items():
        if arch.gen >= g:
            ok |= set(engs)
    if i.engine not in ok:
        names = {"DVE": "Vector", "POOL": "GpSimd", "ACT": "Scalar", "PE": "Tensor"}
        fail(i, "engine", f"{what} runs on {' or '.join(sorted(names[e] for e in ok))} on "
             f"{arch.name} (NeuronCore-v{arch.gen}), not {names.get(i.engine, i.engine)}",
             "engine", names.get(i.engine, i.engine), sorted(names[e] for e in ok))


@defop("rng", engine="DVE", inputs=())
class Rng:
    """dst = 32 random bits per element, truncated to dst's integer width (the low bits)."""

    def check(i, arch):
        dst = view_arg(i, "dst")
        _engine_rule(i, arch, {2: ("DVE",), 3: ("POOL",)}, "rng")
        check_onchip_operand(i, arch, "dst", dst)
        check_dtype(i, "dst", dst, RNG_INTS, "rng writes integer dtypes")

    def run(i, mem):
        dst = i.args["dst"]
        bits = draw(mem, i.engine, dst)
        # keep the least significant bits, reinterpreted in dst's (possibly signed) type
        raw = bits.astype(f"uint{8 * dst.itemsize}").view(dtypes.to_numpy(dst.dtype))
        mem.write(dst, raw.reshape(dst.shape), rounded=True)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"])


@defop("set_rng_seed", engine="DVE", outputs=(), inputs=("src_seeds",))
class SetRngSeed:
    """Seed every VectorE lane's generator from one [1, 1] 32-bit value."""

    def check(i, arch):
        src = view_arg(i, "src_seeds")
        check_onchip_operand(i, arch, "src_seeds", src)
        if src.size != 1:
            fail(i, "shape-mismatch", f"src_seeds must be a [1, 1] tensor, got "
                 f"{list(src.shape)}", "src_seeds", list(src.shape), [1, 1])
        if src.itemsize != 4:
            fail(i, "dtype", f"src_seeds must hold a 32-bit value, got {src.dtype}", "src_seeds",
                 src.dtype, "32-bit dtype")

    def run(i, mem):
        raw = np.ascontiguousarray(mem.read(i.args["src_seeds"], i.loc)).reshape(-1)[:1]
        seed = int(raw.view(np.uint32)[0])
        mem.__dict__.setdefault("rng_state", {})["DVE"] = seed_state(seed, LANES, 4)

    def cost(i, arch):
        return stream_cost(i, arch, 1)


def _check_state_tile(i, arch, name, v, engine):
    check_onchip_operand(i, arch, name, v, ("sbuf",) if arch.gen < 4 else ("sbuf", "psum"))
    check_dtype(i, name, v, ("uint32",), "XORWOW state words are")
    want = WORDS[engine]
    if v.free_size != want:
        fail(i, "shape-mismatch", f"operand '{name}' must hold {want} uint32 state words per "
             f"partition for the {'GpSimd' if engine == 'POOL' else 'Vector'} XORWOW generator, got "
             f"{v.free_size}", name, v.free_size, want)


@defop("rand_set_state", engine="POOL", outputs=(), inputs=("src_seeds",))
class RandSetState:
    """Load raw XORWOW state: partition p of src_seeds seeds lane p of the engine."""

    def check(i, arch):
        check_generation(i, arch, 3)
        _engine_rule(i, arch, {3: ("POOL",), 4: ("DVE",)}, "rand_set_state")
        src = view_arg(i, "src_seeds")
        check_onchip_operand(i, arch, "src_seeds", src, ("sbuf",))
        _check_state_tile(i, arch, "src_seeds", src, i.engine)

    def run(i, mem):
        src = i.args["src_seeds"]
        _state(mem, i.engine)[lanes(src)] = mem.read(src, i.loc).reshape(src.shape[0], -1)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["src_seeds"].free_size, i.args["src_seeds"])


@defop("rand_get_state", engine="POOL", inputs=())
class RandGetState:
    """Store raw XORWOW state: lane p of the engine to partition p of dst."""

    def check(i, arch):
        check_generation(i, arch, 3)
        _engine_rule(i, arch, {3: ("POOL",), 4: ("DVE",)}, "rand_get_state")
        _check_state_tile(i, arch, "dst", view_arg(i, "dst"), i.engine)

    def run(i, mem):
        dst = i.args["dst"]
        mem.write(dst, _state(mem, i.engine)[lanes(dst)].reshape(dst.shape), rounded=True)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"])


@defop("rand2", engine="DVE", inputs=("min", "max"))
class Rand2:
    """dst = uniform fp32 values in [min, max) from the VectorE XORWOW generator (v4+)."""

    def check(i, arch):
        check_generation(i, arch, 4)
        dst = view_arg(i, "dst")
        check_onchip_operand(i, arch, "dst", dst)
        check_dtype(i, "dst", dst, RAND2_OUT, "rand2 writes")
        for n in ("min", "max"):
            scalar_or_column(i, arch, n)
            v = i.args[n]
            if isinstance(v, View) and v.shape[0] != dst.shape[0]:
                fail(i, "shape-mismatch", f"operand '{n}' has {v.shape[0]} partitions but dst has "
                     f"{dst.shape[0]}", n, v.shape[0], dst.shape[0])
        lo, hi = i.args["min"], i.args["max"]
        if not isinstance(lo, View) and not isinstance(hi, View) and not float(lo) < float(hi):
            fail(i, "rand-range", f"needs min < max, got min={lo}, max={hi}", "max", hi,
                 f"> {lo}")

    def run(i, mem):
        dst = i.args["dst"]
        P = dst.shape[0]
        bits = draw(mem, "DVE", dst)
        u = (bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)   # [0, 1), 24 bits
        lo, hi = read_column(mem, i, "min", P), read_column(mem, i, "max", P)
        with np.errstate(all="ignore"):
            y = (lo + u * (hi - lo)).astype(np.float32)
        write2d(mem, dst, y)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"])
