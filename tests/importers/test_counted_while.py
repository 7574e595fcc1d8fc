"""Counted while loops (lowering.lower.rules.counted): JAX's `t < N` loops become a fori_loop over
the induction register, match jax.jit, and the reference executor and the fast path agree."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import neuron  # noqa: E402
from device.fastpath import plan_for  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fastpath"))
from fastpath_helpers import check  # noqa: E402

CONDS = {
    "lt": lambda t, n: t < n,
    "gt_flipped": lambda t, n: n > t,
    "le": lambda t, n: t <= n - 1,
    "ne": lambda t, n: t != n,
}


def make_rnn(start, stop, cond):
    def rnn(x, wx, wh):
        def body(c):
            t, h = c
            return t + 1, jnp.tanh(x[t] @ wx + h @ wh)
        return jax.lax.while_loop(lambda c: CONDS[cond](c[0], stop), body,
                                  (start, jnp.zeros((x.shape[1], wh.shape[0]), x.dtype)))
    return rnn


def program_text(fn, args):
    return str(neuron.from_jax(fn).imported(*args).program())


@hsettings(max_examples=12, deadline=None)
@given(start=st.integers(0, 2), trips=st.integers(0, 4), b=st.integers(1, 8),
       d=st.sampled_from([8, 64]), h=st.sampled_from([16, 128]), cond=st.sampled_from(sorted(CONDS)),
       seed=st.integers(0, 9))
def test_counted_while_loops_match_jax_jit(start, trips, b, d, h, cond, seed):
    rng = np.random.default_rng(seed)
    steps = start + trips
    args = (rng.standard_normal((max(steps, 1), b, d)).astype(np.float32),
            (rng.standard_normal((d, h)) / np.sqrt(d)).astype(np.float32),
            (rng.standard_normal((h, h)) / np.sqrt(h)).astype(np.float32))
    fn = make_rnn(start, steps, cond)
    want = jax.jit(fn)(*args)
    got = neuron.from_jax(fn)(*args)
    assert int(np.asarray(got[0]).reshape(-1)[0]) == int(want[0]) == max(start, steps)
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=2e-5, atol=2e-5)
    text = program_text(fn, args)
    assert "while_loop" not in text
    assert ("fori_loop" in text) == (trips > 0)
    if trips:
        assert f"lower={start} upper={steps} step=1" in text
        assert "dyn=scalar" in text and "tensor_scalar" not in text   # no clamp arithmetic


def test_the_rnn_body_is_short_and_reference_and_fast_path_agree():
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((16, 8, 64)).astype(np.float32),
            rng.standard_normal((64, 128)).astype(np.float32) / 8,
            rng.standard_normal((128, 128)).astype(np.float32) / 11)
    prog = neuron.from_jax(make_rnn(0, 16, "lt")).imported(*args).program()
    loop = next(i for i in prog.instrs if i.op.name == "fori_loop")
    body = loop.args["body"]
    assert len(body) <= 10
    # x[t] straight into SBUF; both dots one PSUM group; tanh reads PSUM and writes h into the
    # SBUF tile the next trip transposes (h stays on chip: loaded before the loop, stored after)
    assert body[0].args["src"].dyn is not None and body[0].args["dst"].buffer.on_chip
    mms = [b for b in body if b.op.name == "nc_matmul"]
    assert len(mms) == 2 and mms[0].args["dst"].storage is mms[1].args["dst"].storage
    act = body[-1]
    assert act.op.name == "activation" and act.args["data"].storage is mms[0].args["dst"].storage
    h = act.args["dst"].storage
    assert h.buffer.on_chip and any(b.op.name == "nc_transpose" and b.args["data"].storage is h
                                    for b in body)
    at = prog.instrs.index(loop)
    assert prog.instrs[at - 1].args["dst"].storage is h
    assert prog.instrs[at + 1].args["src"].storage is h
    assert not any(b.args.get("dst") is not None and not b.args["dst"].buffer.on_chip
                   for b in body)                       # no HBM write in the trip
    assert plan_for(prog) is not None
    ref = check(prog, list(args), modes=("exact",))
    want = np.asarray(jax.jit(make_rnn(0, 16, "lt"))(*args)[1])
    np.testing.assert_allclose(ref[1], want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("case", ["step2", "data_dependent", "counter_written_twice"])
def test_loops_that_are_not_counted_keep_the_general_form(case):
    x = np.linspace(0.5, 1.5, 12, dtype=np.float32).reshape(3, 4)
    if case == "step2":
        def fn(x):
            return jax.lax.while_loop(lambda c: c[0] < 7, lambda c: (c[0] + 2, c[1] * 1.5),
                                      (0, x))
    elif case == "data_dependent":
        def fn(x):
            return jax.lax.while_loop(lambda c: c[1].sum() < 100.0,
                                      lambda c: (c[0] + 1, c[1] * 1.5 + 1), (0, x))
    else:
        def fn(x):
            return jax.lax.while_loop(lambda c: c[0] < 5,
                                      lambda c: (c[0] + 1 + (c[1].sum() > 1e9).astype(jnp.int32),
                                                 c[1] + 1), (0, x))
    want = jax.jit(fn)(x)
    got = neuron.from_jax(fn)(x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a).reshape(np.shape(b)), np.asarray(b), rtol=1e-6)
    text = program_text(fn, (x,))
    assert "while_loop" in text and "fori_loop" not in text


def test_new_state_is_stored_into_the_loop_state_without_a_copy():
    """The body's last write of a new state value goes straight into the loop state (no copy
    at the end of each trip), unless the old value is still read after it (in a swap, the
    state computed first: the other one's computation reads it later)."""
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)

    def swap(x):
        return jax.lax.fori_loop(0, 3, lambda i, c: (c[1] * 2.0, jnp.tanh(c[0]) + 1.0), (x, -x))

    def own(x):
        return jax.lax.fori_loop(0, 3, lambda i, c: (jnp.tanh(c[0]) * 2.0, c[1] * 3.0), (x, -x))

    for fn in (swap, own):
        f = neuron.from_jax(fn)
        got, want = f(x), jax.jit(fn)(x)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
        prog = f.imported(x).program()
        body = next(i for i in prog.instrs if i.op.name == "fori_loop").args["body"]
        states = {st.id for st in prog.storages if st.name == "loop_state"}
        # a copy between two HBM tensors ending the trip: one per state still copied
        copies = [b for b in body if b.op.name == "dma_copy" and b.args["dst"].storage.id in states
                  and not b.args["src"].storage.buffer.on_chip]
        assert len(copies) == (1 if fn is swap else 0), (fn.__name__, len(copies))
        ref = check(prog, [x], modes=("exact",))
        for a, b in zip(ref, want):
            np.testing.assert_allclose(np.asarray(a).reshape(np.shape(b)), np.asarray(b),
                                       rtol=1e-6, atol=1e-6)
