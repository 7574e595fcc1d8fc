"""An unknown keyword argument is an error (NKI 0.3+); legacy masks are refused, mask=None is not."""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl


def _run(body):
    @nki.jit
    def k(a):
        t = nl.load(a)
        body(t)
        return a
    return k(np.ones((4, 8), np.float32))


@pytest.mark.parametrize("call, text", [
    (lambda t: nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.add, bogus=1),
     "nisa.tensor_tensor() got an unexpected keyword argument 'bogus'"),
    (lambda t: nisa.memset(dst=t, value=0.0, fill=2), "nisa.memset() got an unexpected keyword"),
    (lambda t: nl.exp(t, out=t), "nl.exp() got an unexpected keyword argument 'out'"),
    (lambda t: nl.add(t, t, where=t), "nl.add() got an unexpected keyword argument 'where'"),
    (lambda t: nl.sum(t, axis=1, initial=0), "nl.sum() got an unexpected keyword argument 'initial'"),
    (lambda t: nl.zeros((4, 8), nl.float32, fill=1), "nl.zeros() got an unexpected keyword"),
    (lambda t: nisa.tensor_copy(dst=t, src=t, mask=t), "masks were removed in NKI 0.2"),
])
def test_unknown_keyword_is_refused(call, text):
    with pytest.raises(TypeError, match=text.replace("(", r"\(").replace(")", r"\)")):
        _run(call)


def test_mask_none_and_legacy_dtype_are_accepted():
    _run(lambda t: nisa.tensor_copy(dst=t, src=t, mask=None, dtype=nl.float32))
    _run(lambda t: nl.exp(t, dtype=nl.float32, mask=None))


@pytest.mark.parametrize("call, text", [
    (lambda t: nisa.scalar_tensor_tensor(dst=t, data1=t, op0=nl.add, operand0=1.0, op1=nl.add,
                                         operand1=t),
     "nisa.scalar_tensor_tensor() got an unexpected keyword argument 'data1'; did you mean "
     "'data'? (valid: dst, data, op0, operand0, op1, operand1, reverse0, reverse1, name)"),
    (lambda t: nisa.tensor_tensor(dst=t, data1=t, data_2=t, op=nl.add),
     "unexpected keyword argument 'data_2'; did you mean 'data2'?"),
    (lambda t: nl.exp(t, dtyp=nl.float32), "nl.exp() got an unexpected keyword argument 'dtyp'; "
                                          "did you mean 'dtype'?"),
    (lambda t: nl.zeros_like(t, dtpye=nl.float32), "nl.zeros_like() got an unexpected keyword "
                                                   "argument 'dtpye'; did you mean 'dtype'?"),
    (lambda t: nl.sum(t, axes=1), "nl.sum() got an unexpected keyword argument 'axes'; did you "
                                  "mean 'axis'?"),
])
def test_unknown_keyword_suggests_the_closest_valid_one(call, text):
    with pytest.raises(TypeError) as e:
        _run(call)
    assert text in str(e.value)
