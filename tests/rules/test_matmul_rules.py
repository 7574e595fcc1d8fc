"""TensorE rules: matmul sizes (K, M, N), contraction agreement, one PSUM bank per output, and
the transpose size limit. One test per rule."""
import nki
import nki.isa as nisa
import nki.language as nl
from rules_helpers import expect_rule, marker_line, ones


def matmul_kernel(K, M, N, Kmov=None, dst_cols=None, dst_slice=None):
    """A kernel whose single nc_matmul has these sizes (the marked line is the matmul)."""
    @nki.jit
    def kernel(a):
        out = nl.ndarray((4, 4), nl.float32, buffer=nl.shared_hbm)
        st = nl.ndarray((K, M), nl.bfloat16, buffer=nl.sbuf)
        mv = nl.ndarray((Kmov or K, N), nl.bfloat16, buffer=nl.sbuf)
        ps = nl.ndarray((min(M, 128), dst_cols or N), nl.float32, buffer=nl.psum)
        dst = ps if dst_slice is None else ps[:, dst_slice[0]:dst_slice[1]]
        nisa.memset(dst=st, value=1.0)
        nisa.memset(dst=mv, value=1.0)
        nisa.nc_matmul(dst=dst, stationary=st, moving=mv)  # <- mm
        return out
    return kernel


def test_matmul_stationary_free_size_is_at_most_128():
    k = matmul_kernel(128, 256, 64)
    expect_rule(lambda: k(ones(4, 4)), rule="matmul-size", operand="stationary", value=256,
                limit=128, where=marker_line(k, "mm"), says=("M=256", "gemm_stationary_fmax 128"))


def test_matmul_moving_free_size_is_at_most_512():
    k = matmul_kernel(128, 64, 1024)
    expect_rule(lambda: k(ones(4, 4)), rule="matmul-size", operand="moving", value=1024, limit=512,
                where=marker_line(k, "mm"), says=("N=1024", "gemm_moving_fmax 512"))


def test_matmul_contraction_sizes_must_match():
    k = matmul_kernel(128, 64, 64, Kmov=64)
    expect_rule(lambda: k(ones(4, 4)), rule="matmul-contraction", operand="moving", value=64,
                limit=128, where=marker_line(k, "mm"), says=("K=128", "has 64"))


def test_matmul_output_must_fit_one_psum_bank():
    # 512 fp32 columns starting at column 256 straddle the boundary between banks 0 and 1
    k = matmul_kernel(128, 64, 512, dst_cols=1024, dst_slice=(256, 768))
    expect_rule(lambda: k(ones(4, 4)), rule="psum-bank", operand="dst", value=2048, limit=2048,
                where=marker_line(k, "mm"), says=("banks 0-1", "one 2048-byte PSUM bank"))


def test_matmul_within_one_bank_of_a_wide_psum_tile_is_accepted():
    k = matmul_kernel(128, 64, 512, dst_cols=1024, dst_slice=(512, 1024))
    k(ones(4, 4))


@nki.jit
def big_vector_transpose(a):
    out = nl.ndarray((4, 4), nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray((64, 64), nl.float32, buffer=nl.sbuf)
    y = nl.ndarray((64, 64), nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=x, value=0.0)
    nisa.nc_transpose(dst=y, data=x)  # <- transpose
    return out


def test_vector_engine_transpose_is_at_most_32x32():
    expect_rule(lambda: big_vector_transpose(ones(4, 4)), rule="transpose-size", operand="data",
                value=[64, 64], limit=[32, 32], where=marker_line(big_vector_transpose, "transpose"),
                says=("[64, 64]", "32x32"))
