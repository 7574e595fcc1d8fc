"""pytest plugin that runs a legacy (``neuronxcc.nki``) test suite unmodified on the emulator.

    pytest -p nki.legacy.pytest_plugin path/to/legacy/tests

Test modules do ``import neuronxcc.nki`` at import time, so the alias must exist before pytest
collects them: loading this plugin calls ``nki.legacy.install()`` (also in every xdist worker,
which loads the same ``-p`` plugins). Set ``NEURON_EMU_LEGACY_REPORT=1`` for the migration report.
"""
from . import install

install()
