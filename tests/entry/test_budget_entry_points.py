"""The newer entry points refuse oversize requests before allocating, like the ones in
test_resource_budgets.py: ``neuron.from_torch``, ``neuron.jax_kernel``, ``.autotune()`` (models,
imported modules, tile kernels) and ``neuron tune``; and a StableHLO file that crashed jaxlib's
parser is a short error from the CLI, not a dead process."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import neuron
import nki
import nki.language as nl
from device.errors import UserKernelError
from device.limits import ResourceLimitError

SMALL = 64 << 20          # 64 MiB: every refusal below must stay under this

HUGE_BROADCAST = """HloModule big
ENTRY e {
  p = f32[] parameter(0)
  ROOT b = f32[131072,131072] broadcast(p), dimensions={}
}
"""


class peak_memory:
    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False


def test_imported_module_autotune_refused_by_hbm_capacity():
    f = neuron.load_hlo(HUGE_BROADCAST)
    with peak_memory() as p, pytest.raises(ResourceLimitError,
                                           match=r"hbm-capacity: .*64.0 GiB.*16.0 GiB"):
        f.autotune(db=False)
    assert p.peak < SMALL and not f._plans


def test_neuron_tune_command_refuses_briefly(tmp_path, capsys):
    from neuron.cli import main
    path = tmp_path / "big.hlo"
    path.write_text(HUGE_BROADCAST)
    with peak_memory() as p:
        assert main(["tune", str(path), "--db", str(tmp_path / "t.db")]) == 1
    err = capsys.readouterr().err
    assert "hbm-capacity" in err and "Traceback" not in err and p.peak < SMALL


def test_model_autotune_refused_before_tracing_work():
    f = neuron.jit(lambda x, w: nl.matmul(x, w))
    specs = (nki.ArraySpec((128, 2**33), "float32"), nki.ArraySpec((2**33, 128), "float32"))
    with peak_memory() as p, pytest.raises(ResourceLimitError, match="hbm-capacity: HBM tensor"):
        f.autotune(*specs, db=False)
    assert p.peak < SMALL


def test_tile_kernel_autotune_refuses_every_oversize_configuration():
    @neuron.autotune(configs=[{"T": 1}, {"T": 2}])
    @nki.jit
    def copy(a, T=1):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.load(a))
        return out
    with peak_memory() as p, pytest.raises(UserKernelError,
                                           match=r"every configuration failed.*hbm-capacity"):
        copy.tune(nki.ArraySpec((128, 2**33), "float32"))
    assert p.peak < SMALL


@nki.jit
def _one_tib_output(a):
    out = nl.ndarray((128, 2**31), a.dtype, buffer=nl.shared_hbm)
    return out


def test_jax_kernel_refused_when_jax_asks_for_its_shape():
    import jax
    k = neuron.jax_kernel(_one_tib_output)
    x = np.zeros((128, 4), np.float32)
    with peak_memory() as p, pytest.raises(ResourceLimitError, match=r"hbm-capacity: .*1.0 TiB"):
        jax.eval_shape(k, x)
    with pytest.raises(ResourceLimitError, match="hbm-capacity"):
        jax.jit(k)(x)
    with pytest.raises(ResourceLimitError, match="hbm-capacity"):
        neuron.from_jax(lambda a: k(a))(x)
    assert p.peak < SMALL


def test_from_torch_refused_before_allocation():
    import torch

    class Spread(torch.nn.Module):
        def forward(self, x):
            return x.expand(100000, 100000) + 1          # 37 GiB of float32

    f = neuron.from_torch(Spread(), torch.ones(1, 1))
    with peak_memory() as p, pytest.raises(ResourceLimitError, match=r"hbm-capacity: .*37.3 GiB"):
        f(np.ones((1, 1), np.float32))
    assert p.peak < SMALL


def test_cli_refuses_the_stablehlo_that_crashed_jaxlib(tmp_path, capsys):
    from neuron.cli import main
    path = tmp_path / "conv.mlir"
    path.write_text("""module @m {
  func.func public @main(%x: tensor<1x2x9xf32>, %k: tensor<3x2x3xf32>) -> tensor<1x3x9xf32> {
    %0 = stablehlo.convolution(%x, %k) dim_numbers = [b, f, 2147483648]x[o, i, 0]->[b, f, 0], window = {stride = [1], pad = [[1, 1]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x2x9xf32>, tensor<3x2x3xf32>) -> tensor<1x3x9xf32>
    return %0 : tensor<1x3x9xf32>
  }
}
""")
    for command in (["import", str(path)], ["tune", str(path), "--db", str(tmp_path / "t.db")]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "dimension index 2147483648 in 'dim_numbers'" in err and "line 3" in err, err
