"""NeuronCore hardware tables, one frozen record per generation.

Every number carries its source tag from ../shared/reference/neuroncore-cost-model.md (CM) or
nki-spec.md (SPEC): ``D:`` = documented, ``E`` = our estimate (a calibration knob).

    >>> from device.arch import get_arch
    >>> get_arch("trn1").pe_clock_ghz
    2.8
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

KiB = 1024


@dataclass(frozen=True)
class Arch:
    name: str                      # SPEC: canonical target name (NKI's platform names)
    gen: int                       # D:A2,A3,A4 NeuronCore version: 2, 3, 4
    # --- memories (CM 1.2, SPEC 4.1) ---
    partitions: int = 128                      # D:A2
    sbuf_bytes_per_partition: int = 192 * KiB  # D:A2 (v2 192 KiB)
    sbuf_usable_bytes_per_partition: int = 176 * KiB  # SPEC 2.3: 192-16 KiB allocator range
    psum_bytes_per_partition: int = 16 * KiB   # D:A2
    # HBM one NeuronCore can address: the chip's HBM over its cores (CM 1.3 "HBM per chip":
    # 32 GiB on a trn1/inf2 chip of 2 NeuronCore-v2, D:A2; the split per core is E). A kernel's
    # HBM tensors (inputs, outputs, private/shared HBM allocations) must fit (limits.check_hbm).
    hbm_bytes_per_core: int = 16 * KiB ** 3    # E: 32 GiB / 2 cores
    psum_banks: int = 8                        # D:A2
    psum_bank_bytes: int = 2 * KiB             # D:A2 (512 fp32)
    sbuf_max_free_elems: int = 64 * 1024       # D:A2 max free size per instruction, SBUF
    psum_max_free_elems: int = 4 * 1024        # D:A2 max free size per instruction, PSUM
    # --- TensorE (CM 2.2) ---
    pe_rows: int = 128                         # D:A2
    pe_cols: int = 128                         # D:A2
    gemm_stationary_fmax: int = 128            # SPEC 2.3
    gemm_moving_fmax: int = 512                # SPEC 2.3 (v2/v3)
    pe_tile_rows: tuple = (64, 128)            # D:ISA row tiling 2x64 on v2
    # D:ISA nc_matmul: accumulate=None "auto-detect[s] based on whether this PSUM location was
    # previously written"; accumulating onto a non-matmul write is undefined on v2/v3 only. True:
    # a memset or in-place rescale of a PSUM accumulator keeps it accumulating (Memory).
    psum_write_keeps_accumulating: bool = False
    # A tile_size that is no generation's tile (not 32/64/128) occupies the smallest tile that
    # holds it (device/isa/pe.py). E: the docs list only 32/64/128, but nki-library gdn_cte
    # (2.31+) passes (16, 16) and output_projection_tkg (2.32) its contraction size, e.g.
    # (65, 64), in their own simulation tests.
    bn_stats_fmax: int = 512                   # SPEC 2.3
    vector_transpose_max: int = 32             # SPEC 3.2 (V handles 32x32)
    # --- clocks in GHz (CM 1.1) ---
    pe_clock_ghz: float = 2.8                  # D:A2
    dve_clock_ghz: float = 1.12                # D:A2
    act_clock_ghz: float = 1.4                 # D:A2
    pool_clock_ghz: float = 1.4                # D:A2
    sp_clock_ghz: float = 1.4                  # E: sequencer, same clock as ACT
    # --- elements per cycle per lane (CM 1.1, 2.3) ---
    dve_elems_per_cycle_16bit: float = 1.0     # D:A2 (128 elem/cycle over 128 lanes)
    dve_elems_per_cycle_32bit: float = 1.0     # D:A2
    dve_perf_mode: bool = False                # D:A3 NC-v3+ VectorE perf mode (conditions in isa/costs)
    act_elems_per_cycle: float = 1.0           # D:A2
    pool_elems_per_cycle: float = 1.0          # E
    # Passes over the data of a two-input VectorE op (tensor_tensor) whose inputs are both in SBUF
    # and not all 16-bit. CM 2.3 says "roughly 2N" (reads two streams; D:A2, Dh:ISAh), but the
    # measured trn1 runs say less for large tiles: mamba_v2 at seq 8192 keeps VectorE 58.93%
    # active for 53.33 ms (MB), i.e. 8.4N cycles per state for 4 tensor_tensor + 1 scan (2N), so
    # ~1.6 passes; the MB scaling table (v2 at seq 1024-4096, 1.35x v3) gives ~1.8. Fitted with
    # the other knobs to all trn1 anchors (benchmarks/calibrate.py): 1.77, between the two (E).
    dve_two_input_passes: float = 1.77         # E: fitted, see above (documented rough value 2)
    # ... and one pass only while every input holds at most this many bytes per partition: the
    # Mamba tutorial's trn1 runs with 512-element fp32 tiles (v2 seq 512 at 1.61 ms with VectorE
    # 99.6% active, and v3 at every seq_len) are only reachable at ~N per tensor_tensor, while v2
    # without seq tiling costs a steady 1.35x v3 from seq 1024 (tiles of 1024 elements and more)
    # up: the two input streams overlap only for small tiles. 2 KiB = 512 fp32, the same
    # free-size block as a PSUM bank and the moving-tile limit (CM 1.2) (E).
    dve_dual_stream_bytes: int = 2 * KiB       # E: see above
    # --- instruction overheads in engine cycles (CM 2.3, 2.4) ---
    min_ii_cycles: int = 64                    # Dh:ISAh, D:SH
    # Static overhead an instruction pays when it reads the result of the instruction just before
    # it on its engine: "~100 cycles when back-to-back instructions are tiny or each depends on
    # the previous" (D:A2). Fitted (benchmarks/calibrate.py): the DVE-bound mamba_v3 runs (VectorE
    # ~95% active, MB) leave room for far less than 100 per dependent pass (E).
    static_overhead_cycles: float = 44.5       # D:A2 ~100; E: refitted, bounds 5-150
    access_setup_cycles: int = 60              # D:A2 SBUF/PSUM access request
    pool_start_cycles: int = 150               # Dh:ISAh
    mm_init_cycles: int = 64                   # D:A2 MM_INIT_LATENCY
    pe_fill_cycles: int = 256                  # E: PE array fill/drain latency
    engine_latency_cycles: float = 31.8        # E: DVE/POOL pipeline depth (CM 2.1 guess 64; fitted)
    # ScalarE's pipeline is deeper (activation tables, accumulator read-back): dependent 1-element
    # ACT instructions take 189 ns = 264 ACT cycles each on trn1 (D:PG), i.e. MIN_II (64) plus the
    # static overhead plus this latency (E: fitted to that observation, bounds 64-264).
    act_latency_cycles: float = 156.0          # E: fitted to the PG 189 ns chain, see above
    sem_latency_ns: float = 68.0               # E: compute-to-compute semaphore hand-off (CM 2.4: ~50-100; fitted)
    fp32_matmul_factor: int = 4                # D:A2 FP32 ~4x slower on PE
    stride_penalty_bytes: int = 16             # D:A2 innermost stride > 16 B halves bandwidth
    v2_shared_ports: bool = True               # D:A2 DVE/POOL share SBUF port, DVE/ACT share PSUM
    # --- DMA (CM 1.3, 2.6) ---
    dma_engines: int = 16                      # D:A2,DO
    dma_queues: int = 16                       # D:DO
    dma_engine_bytes_per_ns: float = 17.0      # D:BW,DO table peak (v2)
    dma_fixed_ns: float = 1300.0               # D:BW semaphore-to-start
    dma_issue_ns: float = 0.0                  # D:A3 HW DGE issue cost (v3: 600 ns)
    # Fraction of an engine's peak reached with rows of b contiguous bytes per partition: the CM 2.6
    # curve read off the DO figure (E). ``dma_curve_scale`` shifts it to smaller rows: on v2 the
    # tutorial's tiled matmul moves 256-B lhsT rows at the same ~100 GB/s as 1-KiB rhs rows (MMh,
    # CM 4.1), which the unshifted curve (0.10 at 256 B) would make 4x slower; x4 fits, and the
    # all-anchor fit (benchmarks/calibrate.py) lands at x3.9 (E).
    dma_curve: tuple = ((32, 0.01), (64, 0.03), (128, 0.05), (256, 0.10), (512, 0.21), (1024, 0.42),
                        (2048, 0.81), (4096, 0.97), (8192, 0.98), (16384, 0.99), (32768, 1.0))
    dma_curve_scale: float = 3.9               # E: calibrated on the MMh tiled stage (see above)
    # HBM: the documented peak of one core's share, used for the roofline and the ridge point
    # (92 TFLOPS / 410 GB/s = 222 FLOP/B, the MM tutorial's own figure).
    hbm_peak_bytes_per_ns: float = 410.0       # E: 820 GB/s per chip (D:A2) / 2 cores; MM ridge 222 F/B implies 413
    # Sustained rate of the DMA streams an NKI kernel issues, a cap on all transfers together.
    # The peak above is not reached by dma_copy streams: every memory-bound NKI tutorial run on
    # trn1 moves 100-116 GB/s whatever its row size (matmul tiled/hoisted/blocked 104/102/102 GB/s
    # with 256 B-4 KiB rows (MMh); mamba v1 with 4K channels ~116 GB/s (MB)). Row-size-independent,
    # so it is not the packet-rate mechanism of the DMA guide (BW), which the row curve models;
    # bounded below by the fastest published stream (116) and above by the DMA-table peak 16 x 17
    # B/ns = 272 GB/s (D:BW) (E). Refitted by benchmarks/calibrate.py (leave-one-out).
    hbm_share_bytes_per_ns: float = 107.7      # E: fitted, bounds 100-116 GB/s, see above
    # Compiler spills and SBUF pressure (CM 3 rules 16-19, SPEC 4.2 item 10).
    # ``sbuf_alloc_fraction``: share of the usable SBUF the allocator hands to automatic tiles
    # before it spills. MB speaks of fragmentation, but a share below 1 is ruled out: mamba_v3 at
    # seq 8192 keeps 96 KiB of whole-sequence tiles plus ~20 KiB of seq tiles live and does not
    # spill (MB), and 0.8 already makes the matmul "blocked M,N" stage 26% slow (MMh). So 1 (E).
    sbuf_alloc_fraction: float = 1.0           # E: see above
    # HBM bandwidth of spill traffic: compiler-generated whole-tile transfers (one 24-32 KiB row
    # per partition, own queues qSyncSpillReload/qVectorSpillReload in MB's profile) run at the DMA
    # table peak 16 x 17 B/ns (D:BW,DO), not at the ~106 GB/s that NKI dma_copy streams reach.
    # With the cost-weighted spill plan (device/passes.py), at 108 mamba_v2 is 1.36x its
    # published 53.33 ms at seq 8192 and 1.24x at seq 7168; at 272 it is within 3% and 1% (E).
    # Above 272 nothing changes: the 16 DMA engines, not HBM, bound whole-tile transfers.
    spill_bytes_per_ns: float = 272.0          # E: see above
    launch_overhead_ns: float = 3843.0         # E: fitted; NEFF start-up/tear-down in measured latencies
                                               # (MB: "every NEFF execution involves certain start-up
                                               # and tear-down overhead"); fits mamba v1 172.93 us
    dma_transpose_factor: float = 4.0          # E: v2 load_transpose2d ~x1/0.25
    # --- peaks for utilisation (CM 1.1) ---
    peak_bf16_tflops: float = 92.0             # D:A2
    peak_fp8_tflops: float = 92.0              # D:A2 (= bf16 on v2)
    peak_fp32_tflops: float = 23.0             # D:A2
    # --- features ---
    dtypes_extra: tuple = field(default_factory=tuple)   # SPEC: extra dtypes of the generation
    # How far the table is calibrated (printed by the profile report): which published timings
    # fitted its estimate (E) constants, or that it has none (SPEC: a statement, not a number).
    calibration: str = ("calibrated: E constants fitted to trn1 device latencies (MMh, MB, PG), "
                        "leave-one-out checked by benchmarks/calibrate.py")  # SPEC: see above

    @property
    def sbuf_bytes(self) -> int:
        return self.partitions * self.sbuf_bytes_per_partition

    def latency_cycles(self, engine: str) -> float:
        """Pipeline latency from an instruction's last issue to its result being visible."""
        if engine == "PE":
            return self.pe_fill_cycles
        return self.act_latency_cycles if engine == "ACT" else self.engine_latency_cycles

    def sbuf_account(self) -> str:
        """The one account of SBUF capacity every message uses (physical, usable, reserved)."""
        phys, use = self.sbuf_bytes_per_partition, self.sbuf_usable_bytes_per_partition
        return (f"{self.name} SBUF: {phys // KiB} KiB per partition, of which {use // KiB} KiB "
                f"({use} bytes) are usable by kernels and {(phys - use) // KiB} KiB are reserved")

    def clock_ghz(self, engine: str) -> float:
        return {"PE": self.pe_clock_ghz, "DVE": self.dve_clock_ghz, "ACT": self.act_clock_ghz,
                "POOL": self.pool_clock_ghz, "SP": self.sp_clock_ghz}[engine]


# NC-v2: Trainium1 / Inferentia2 (D:A2). Calibrated: the E knobs above were fitted on trn1 anchors
# (benchmarks/calibrate.py prints in-sample and leave-one-out errors).
TRN1 = Arch(name="trn1", gen=2)
INF2 = Arch(name="inf2", gen=2)   # the same NeuronCore-v2 as trn1 (D:A2)

# NC-v3: Trainium2 (D:A3). SBUF usable per partition on v3 is undocumented (SPEC 7.4): 224-16 KiB [E].
TRN2 = Arch(
    name="trn2", gen=3,                        # D:A3 NeuronCore-v3
    hbm_bytes_per_core=12 * KiB ** 3,          # E: 96 GiB per chip (D:A3) / 8 physical cores
    sbuf_bytes_per_partition=224 * KiB, sbuf_usable_bytes_per_partition=208 * KiB,  # D:A3; E usable
    pe_tile_rows=(32, 64, 128),                # D:ISA 4x32 on v3+
    pe_clock_ghz=2.4, dve_clock_ghz=0.96, act_clock_ghz=1.2, pool_clock_ghz=1.2, sp_clock_ghz=1.2,  # D:A3
    dve_elems_per_cycle_16bit=4.0,             # D:A3 512 elem/cycle BF16/FP16 (perf mode)
    dve_elems_per_cycle_32bit=2.0,             # D:A3 256 elem/cycle other types
    dve_perf_mode=True,                        # D:A3 automatic perf mode (2x/4x), see isa/costs
    v2_shared_ports=False,                     # D:A3 lifts v2 port sharing
    dma_engine_bytes_per_ns=23.0,              # D:BW,DO
    spill_bytes_per_ns=368.0,                  # E: 16 x 23 B/ns, as for v2
    dma_issue_ns=600.0,                        # D:A3,DGE
    hbm_peak_bytes_per_ns=375.0,               # E: 3 TB/s per chip (D:A3) / 8 cores
    # KO's tiled/hoisted fp32 stages on trn2 stream >= 335 / >= 311 GB/s (TensorE 87.28% / 99.85%
    # active over 27.96 ms of fp32 matmuls), so the v2 gap to the table peak is gone (E).
    hbm_share_bytes_per_ns=368.0,              # E: DMA-table peak 16 x 23 B/ns (D:BW); KO >= 335
    # The DO curve needs the same 4x shift on v3 as on v2: KO's fp32 tiled matmul on trn2 keeps
    # TensorE 87.28% active while moving 512 B lhsT rows and 2 KiB rhs rows, i.e. >= 335 GB/s;
    # the curve as drawn (0.21 at 512 B) would leave TensorE ~49% active, x4 gives ~90% (E).
    dma_curve_scale=4.0,                       # E: fitted to KO (trn2) as above; v2 has the same
    dma_transpose_factor=1 / 0.9,              # D:A3 90% of copy BW
    peak_bf16_tflops=79.0, peak_fp8_tflops=158.0, peak_fp32_tflops=20.0,  # D:A3
    calibration=("partly calibrated: documented NC-v3 figures; DMA curve and stream rate checked "
                 "against KO engine-active % and the DO single-engine transfer; compute "
                 "latencies/overheads are the trn1 fit (E); no trn2 latency anchor"),  # SPEC
)

# NC-v4: Trainium3 (D:A4), for reference; usable SBUF undocumented [E].
TRN3 = Arch(
    name="trn3", gen=4,                        # D:A4 NeuronCore-v4
    psum_write_keeps_accumulating=True,        # D:ISA nc_matmul accumulate=None (v4)
    hbm_bytes_per_core=18 * KiB ** 3,          # E: 144 GiB per chip (D:A4) / 8 physical cores
    sbuf_bytes_per_partition=256 * KiB, sbuf_usable_bytes_per_partition=240 * KiB,  # D:A4; E usable
    pe_tile_rows=(32, 64, 128),                # D:ISA 4x32 on v3+
    pe_clock_ghz=2.4, dve_clock_ghz=1.2, act_clock_ghz=1.2, pool_clock_ghz=1.2, sp_clock_ghz=1.2,  # D:A4
    dve_elems_per_cycle_16bit=4.0, dve_elems_per_cycle_32bit=2.0,  # D:A4 512 BF16 / 256 other
    dve_perf_mode=True,                        # E: as v3 (D:A3)
    v2_shared_ports=False,                     # D:A4 (as v3)
    dma_engine_bytes_per_ns=33.0, dma_issue_ns=600.0,  # D:BW,DO 33 B/ns; D:A3,DGE HW DGE issue
    hbm_peak_bytes_per_ns=590.0,               # E: 4.7 TB/s per chip (D:A4) / 8 cores
    hbm_share_bytes_per_ns=528.0,              # E: not calibrated; DMA-table peak 16 x 33 B/ns (D:BW)
    dma_curve_scale=4.0,                       # E: as v2 and v3 (no v4 data)
    spill_bytes_per_ns=528.0,                  # E: 16 x 33 B/ns, as for v2
    dma_transpose_factor=1 / 0.9,              # E: assume v3's 90% (D:A3)
    peak_bf16_tflops=79.0, peak_fp8_tflops=315.0, peak_fp32_tflops=20.0,  # D:A4
    calibration=("uncalibrated: documented NC-v4 figures, estimates carried over from "
                 "trn1/trn2 (E); no published trn3 timing found"),  # SPEC
)

_ALIASES = {
    "trn1": TRN1, "inf2": INF2, "gen2": TRN1, "v2": TRN1,
    "trn2": TRN2, "gen3": TRN2, "v3": TRN2,
    "trn3": TRN3, "gen4": TRN3, "v4": TRN3,
}

TARGETS = tuple(_ALIASES)   # every accepted target name (the CLI lists them)

DEFAULT_TARGET = "inf2"   # design.md: an Inferentia core emulator first


def get_arch(target: "str | Arch | None" = None, default: "str | None" = None) -> Arch:
    """Resolve a target name (trn1/inf2/gen2, trn2/gen3, trn3/gen4) or the env override.

    With no ``target``, the environment (``NEURON_PLATFORM_TARGET_OVERRIDE``, else the NKI
    library harness's ``NKI_NC_VERSION``) decides, then ``default`` (a kernel's
    ``@nki.jit(platform_target=...)``), then ``DEFAULT_TARGET``.

        >>> get_arch("gen3").name, get_arch("trn3", default="trn1").name
        ('trn2', 'trn3')
    """
    if isinstance(target, Arch):
        return target
    if target is None:        # NKI_NC_VERSION (gen2|gen3|gen4) is what the NKI library harness sets
        target = (os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE")
                  or os.environ.get("NKI_NC_VERSION") or default or DEFAULT_TARGET)
    key = str(target).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown target {target!r}: expected one of {sorted(_ALIASES)}")
    return _ALIASES[key]


# ---- collective links (issue 14) ---------------------------------------------------------------
# Kept apart from the per-core tables above (which are recalibrated separately). Device-to-device
# bandwidth of the NeuronLink fabric per NeuronDevice; a rank (one logical NeuronCore) gets its
# share: device bandwidth / NeuronCores per device. Sources:
#   trn3: "NeuronLink-v4 for device-to-device interconnect provides 2.56 TB/sec bandwidth per
#         device" (Neuron docs, about-neuron/arch/neuron-hardware/trainium3.rst); 8 cores/device.
#   trn2: NeuronLink-v3, 1.28 TB/s per device (Neuron docs, trainium2.rst "NeuronLink" row;
#         4 NeuronLink-v3 per device per the NKI Trainium2 architecture guide); 8 cores/device.
#   trn1/inf2: NeuronLink-v2, 4 links per Trainium (2 per Inferentia2) per the NKI
#         Trainium/Inferentia2 architecture guide; per-device bandwidth not documented: E(estimate)
#         768 GB/s for Trainium, half for Inferentia2; 2 cores/device.
# hop_ns: fixed cost of one ring step (CC-core semaphore + DMA descriptor issue): E(estimate),
# of the order of the DMA fixed cost, not calibrated.
@dataclass(frozen=True)
class Link:
    device_bytes_per_ns: float
    cores_per_device: int
    hop_ns: float

    @property
    def rank_bytes_per_ns(self) -> float:
        return self.device_bytes_per_ns / self.cores_per_device


COLLECTIVE_LINKS = {
    "trn1": Link(768.0, 2, 2000.0),           # E: NeuronLink-v2 per-device bandwidth estimated
    "inf2": Link(384.0, 2, 2000.0),           # E: 2 NeuronLink-v2 links (half of Trainium)
    "trn2": Link(1280.0, 8, 2000.0),          # D: trainium2.rst; hop E
    "trn3": Link(2560.0, 8, 2000.0),          # D: trainium3.rst; hop E
}
