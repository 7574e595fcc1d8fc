"""A suite of real models built from library code (Equinox, jax.nn, torch.nn; random weights
made here, nothing downloaded), each imported through its route and compared with its framework:
import OK, max error vs the framework, emulator wall time, modelled trn1 time, MFU and the
roofline bound (the larger of model FLOPs at the PE's peak and the bytes that must cross HBM
once -- inputs, weights, outputs -- at the HBM share).

    python benchmarks/models.py --suite [--only gpt2]
"""
from __future__ import annotations

import math
import time
import traceback

import numpy as np


def _jax_models():
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    key = jax.random.PRNGKey(0)
    ks = iter(jax.random.split(key, 64))
    rng = np.random.default_rng(0)
    out = {}

    mlp = eqx.nn.MLP(256, 64, 512, depth=2, activation=jax.nn.gelu, key=next(ks))
    out["eqx MLP 256-512-512-64 (x128)"] = (lambda x: jax.vmap(mlp)(x),
                                            [rng.standard_normal((128, 256), np.float32)])

    c1 = eqx.nn.Conv2d(3, 16, 3, padding=1, key=next(ks))
    c2 = eqx.nn.Conv2d(16, 16, 3, padding=1, key=next(ks))
    ln = eqx.nn.LayerNorm((16, 16, 16))
    cnn = lambda x: jax.vmap(lambda im: jax.nn.relu(c2(jax.nn.relu(ln(c1(im))))).mean((1, 2)))(x)
    out["eqx CNN conv-ln-conv 3x16x16 (x4)"] = (cnn, [rng.standard_normal((4, 3, 16, 16),
                                                                         np.float32)])

    mha = eqx.nn.MultiheadAttention(4, 128, key=next(ks))
    out["eqx MultiheadAttention 4x128, seq 128"] = (
        lambda x: mha(x, x, x), [rng.standard_normal((128, 128), np.float32)])

    lstm = eqx.nn.LSTMCell(32, 64, key=next(ks))

    def run_lstm(xs):
        def step(c, x):
            h = lstm(x, c)
            return h, h[0]
        return jax.lax.scan(step, (jnp.zeros(64), jnp.zeros(64)), xs)[1]
    out["eqx LSTMCell scan T=16"] = (run_lstm, [rng.standard_normal((16, 32), np.float32)])

    gru = eqx.nn.GRUCell(32, 64, key=next(ks))
    run_gru = lambda xs: jax.lax.scan(lambda h, x: (gru(x, h),) * 2, jnp.zeros(64), xs)[1]
    out["eqx GRUCell scan T=16"] = (run_gru, [rng.standard_normal((16, 32), np.float32)])

    out["GPT-2-small block (jax.nn) seq 512 d 768 bf16"] = _gpt2(rng)
    out["transformer block + NKI flash-attention kernel"] = _kernel_block(rng)
    return out


def _gpt2(rng):
    import jax
    import jax.numpy as jnp
    S, E, H, F = 512, 768, 12, 3072
    D, bf = E // H, jnp.bfloat16

    def ln(x, g, b):
        x32 = x.astype(jnp.float32)
        mu = x32.mean(-1, keepdims=True)
        var = ((x32 - mu) ** 2).mean(-1, keepdims=True)
        return ((x32 - mu) * jax.lax.rsqrt(var + 1e-5) * g + b).astype(x.dtype)

    def block(x, wqkv, wo, w1, w2, g1, b1, g2, b2):
        q, k, v = jnp.split(ln(x, g1, b1) @ wqkv, 3, axis=-1)
        q, k, v = (t.reshape(S, H, D).transpose(1, 0, 2) for t in (q, k, v))
        s = (q @ k.transpose(0, 2, 1)).astype(jnp.float32) / np.sqrt(D)
        s = jnp.where(jnp.tril(jnp.ones((S, S), bool)), s, -1e9)
        o = (jax.nn.softmax(s, -1).astype(bf) @ v).transpose(1, 0, 2).reshape(S, E)
        x = x + o @ wo
        return x + jax.nn.gelu(ln(x, g2, b2) @ w1) @ w2
    w = lambda *s: (rng.standard_normal(s) * 0.02).astype(bf)
    args = [rng.standard_normal((S, E)).astype(bf), w(E, 3 * E), w(E, E), w(E, F), w(F, E)] + \
        [np.ones(E, np.float32), np.zeros(E, np.float32)] * 2
    return block, args


def _kernel_block(rng):
    import jax
    import neuron
    from benchmarks.kernels.flash_attention import flash_attention
    attn = neuron.jax_kernel(flash_attention)
    S, H, D = 256, 4, 64
    E = H * D

    def block(x, wq, wk, wv, wo):
        q, k, v = ((x @ w).reshape(S, H, D).transpose(1, 0, 2) for w in (wq, wk, wv))
        o = attn(q.transpose(0, 2, 1), k.transpose(0, 2, 1), v)
        return x + jax.nn.gelu(o.transpose(1, 0, 2).reshape(S, E) @ wo)
    args = [rng.standard_normal((S, E), np.float32)] + \
        [(rng.standard_normal((E, E)) / np.sqrt(E)).astype(np.float32) for _ in range(4)]
    return block, args


def _torch_models():
    import torch
    import torch.nn as nn
    torch.manual_seed(0)

    class BasicBlock(nn.Module):
        def __init__(self, c=32):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))

    out = {
        "torch MLP 256-1024-256 GELU (x128)": (
            nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256)),
            torch.randn(128, 256)),
        "torch TransformerEncoderLayer d128 h4 seq 64": (
            nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True),
            torch.randn(1, 64, 128)),
        "torch CNN conv-bn-relu-pool-linear": (
            nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 10)),
            torch.randn(4, 3, 16, 16)),
        "torch ResNet BasicBlock c32 16x16": (BasicBlock(), torch.randn(2, 32, 16, 16)),
    }
    for m, _ in out.values():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
        m.eval()
    return out


def _roofline_us(prog, report, arch):
    size = lambda s: math.prod(s.shape) * np.dtype(_np(s.dtype)).itemsize
    must = sum(size(s) for s in prog.storages if s.kind in ("input", "const")) + \
        sum(size(s) for s in prog.outputs)
    return max(report.model_flops / (arch.peak_bf16_tflops * 1e3),
               must / arch.hbm_share_bytes_per_ns) / 1e3


def _np(dt):
    from device import dtypes
    return dtypes.to_numpy(dt)


def _measure(name, imported, call, want):
    from device.arch import get_arch
    t0 = time.perf_counter()
    got = call()
    wall = time.perf_counter() - t0
    got, want = (g if isinstance(g, (tuple, list)) else (g,) for g in (got, want))
    err = max(float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))
              for a, b in zip(got, want))
    arch = get_arch("trn1")
    prog = imported.program("trn1")
    rep = imported.profile(target="trn1")
    return dict(model=name, ok="yes", err=err, wall=wall, us=rep.total_ns / 1e3,
                mfu=rep.mfu_pct, roof=_roofline_us(prog, rep, arch))


def run_suite(only=None):
    import jax
    import torch
    import neuron
    rows = []
    jm, tm = _jax_models(), _torch_models()
    for name, (fn, args) in jm.items():
        if only and only not in name:
            continue
        try:
            f = neuron.from_jax(fn)
            imp = f.imported(*args)
            rows.append(_measure(name, imp, lambda: imp(*args),
                                 jax.jit(fn)(*args)))
        except Exception as e:                          # noqa: BLE001 - reported, not hidden
            rows.append(dict(model=name, ok=f"FAILED: {type(e).__name__}: {str(e)[:80]}"))
            traceback.print_exc()
    for name, (m, x) in tm.items():
        if only and only not in name:
            continue
        try:
            f = neuron.from_torch(m, x)
            imp = f.imported(x)
            with torch.no_grad():
                want = m(x).numpy()
            rows.append(_measure(name, imp, lambda: f(x), want))
        except Exception as e:                          # noqa: BLE001
            rows.append(dict(model=name, ok=f"FAILED: {type(e).__name__}: {str(e)[:80]}"))
            traceback.print_exc()
    print(f"\n{'model':50s} {'import':>6s} {'max err':>9s} {'emu wall':>9s} {'trn1 model':>11s} "
          f"{'MFU':>6s} {'roofline':>10s} {'x roof':>7s}")
    for r in rows:
        if r["ok"] != "yes":
            print(f"{r['model']:50s} {r['ok']}")
            continue
        print(f"{r['model']:50s} {r['ok']:>6s} {r['err']:9.2e} {r['wall']:8.2f}s "
              f"{r['us']:9.1f}us {r['mfu']:5.1f}% {r['roof']:8.1f}us {r['us'] / r['roof']:6.1f}x")
    return rows
