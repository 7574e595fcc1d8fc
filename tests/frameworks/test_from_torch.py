"""neuron.from_torch: torch.export -> torchax -> StableHLO -> the emulator, compared with eager
PyTorch (CPU wheel, the [torch] extra). Weights are random, generated here."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import neuron


class ResBlock(nn.Module):
    """A torchvision BasicBlock written with torch.nn: conv-bn-relu-conv-bn + identity."""

    def __init__(self, c=8):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


def _randomise_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


MODELS = {
    "mlp": lambda: (nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4)),
                    (torch.randn(2, 16),)),
    "transformer_encoder_layer": lambda: (
        nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True),
        (torch.randn(2, 8, 32),)),
    "cnn_batchnorm": lambda: (
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10)),
        (torch.randn(2, 3, 8, 8),)),
    "resnet_block": lambda: (ResBlock(), (torch.randn(1, 8, 6, 6),)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_from_torch_matches_eager_pytorch(name):
    torch.manual_seed(0)
    module, example = MODELS[name]()
    module = _randomise_bn(module)
    f = neuron.from_torch(module, *example)
    x = [torch.randn_like(e) for e in example]        # new inputs, same shapes
    with torch.no_grad():
        want = module(*x).numpy()
    got = f(*x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(f(*[t.numpy() for t in x]), want, rtol=1e-5, atol=2e-5)


def test_from_torch_takes_an_exported_program():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(8, 8), nn.Tanh()).eval()
    x = torch.randn(3, 8)
    ep = torch.export.export(m, (x,))
    with torch.no_grad():
        want = m(x).numpy()
    np.testing.assert_allclose(neuron.from_torch(ep)(x), want, rtol=1e-5, atol=1e-6)


def test_from_torch_errors_name_what_is_wrong():
    with pytest.raises(TypeError, match="torch.nn.Module or a torch.export.ExportedProgram"):
        neuron.from_torch(lambda x: x, torch.ones(2))
    with pytest.raises(TypeError, match="give example inputs"):
        neuron.from_torch(nn.Linear(2, 2))
