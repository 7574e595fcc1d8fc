"""``nki.dtype`` carries the packed MX dtype names too: the nki-library's MXFP8 kernels write
``from nki.dtype import float8_e4m3fn_x4`` and compare configs against it."""
import nki.dtype as nd
import nki.language as nl


def test_x4_names_are_the_language_strings():
    assert (nd.float8_e4m3fn_x4, nd.float8_e5m2_x4, nd.float4_e2m1fn_x4) == (
        nl.float8_e4m3fn_x4, nl.float8_e5m2_x4, nl.float4_e2m1fn_x4)
    assert nd.float8_e4m3fn_x4 == "float8_e4m3fn_x4"
