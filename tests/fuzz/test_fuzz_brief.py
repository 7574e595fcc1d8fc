"""The fuzzer, briefly, in CI (derandomised ``ci`` profile): mutants of our own exports fail
only with our errors, and grammar-made valid modules agree with the graph reference. The long
run is ``python -m tests.fuzz`` (see tests/fuzz/README.md)."""
from __future__ import annotations

import contextlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from .grammar import generate_hlo
from .harness import FUZZ_ENV, run_case
from .mutate import DrawChooser, mutate_bytes, mutate_text
from .seeds import seeds

CLEAN = ("ok", "refused")        # 'unvalidated' (an importer's catch-all) is a missing check


@contextlib.contextmanager
def fuzz_env():
    old = {k: os.environ.get(k) for k in FUZZ_ENV}
    os.environ.update(FUZZ_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@settings(max_examples=25)
@given(st.data())
def test_mutated_hlo_fails_only_with_our_errors(data):
    c = DrawChooser(data)
    name, text = c.choice(seeds()["hlo"])
    with fuzz_env():
        r = run_case("hlo", mutate_text(text, c), 0)
    assert r["status"] in CLEAN, (name, r)


@settings(max_examples=12)
@given(st.data())
def test_mutated_stablehlo_fails_only_with_our_errors(data):
    c = DrawChooser(data)
    name, text = c.choice(seeds()["stablehlo"])
    with fuzz_env():
        r = run_case("stablehlo", mutate_text(text, c, stable=True), 0)
    assert r["status"] in CLEAN, (name, r)


@settings(max_examples=3)
@given(st.data())
def test_corrupted_bytecode_fails_only_with_our_errors(data):
    c = DrawChooser(data)
    name, art = c.choice(seeds()["bytecode"])
    with fuzz_env():
        r = run_case("stablehlo", mutate_bytes(art, c), 0)
    assert r["status"] in CLEAN, (name, r)


@settings(max_examples=15)
@given(st.data())
def test_grammar_modules_match_the_reference(data):
    text = generate_hlo(DrawChooser(data))
    with fuzz_env():
        r = run_case("hlo", text, data.draw(st.integers(0, 2**16)))
    assert r["status"] == "ok", (text, r)
