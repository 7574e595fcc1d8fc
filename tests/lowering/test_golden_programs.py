"""Default-schedule lowering is pinned: every corpus graph prints the committed program.

The golden files were written before lowering/ was rebuilt around Schedules; a schedule's
``default()`` must keep reproducing them byte for byte (source locations aside). See
golden/corpus.py for the cases and how to regenerate after an intended change.
"""
import pytest

from golden.corpus import CASES, PROGRAMS, program_text


@pytest.mark.parametrize("name", sorted(CASES))
def test_default_program_matches_golden(name):
    expected = (PROGRAMS / f"{name}.txt").read_text()
    assert program_text(CASES[name]()) == expected


def test_every_golden_file_has_a_case():
    assert sorted(p.stem for p in PROGRAMS.glob("*.txt")) == sorted(CASES)
