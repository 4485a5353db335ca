//! Matrix products and element-wise kernels of the training steps, and the calling thread's
//! handling of denormal floats.
//!
//! Determinism across thread counts comes from fixed work partitions: every product is cut
//! into the same blocks whatever the number of threads, each block is one single-threaded
//! `gemm` call, and rayon only decides which thread runs which block. Reductions run in a
//! fixed order on one thread.

use rayon::prelude::*;

/// A read-only strided matrix view: element `(r, c)` is at `ptr + r * rs + c * cs`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        assert!(data.len() >= rows * cols, "view out of bounds");
        View {
            data,
            rows,
            cols,
            rs: cols as isize,
            cs: 1,
        }
    }

    /// The first `cols` columns of a row-major matrix whose rows are `row_stride` long.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> View<'a> {
        assert!(cols <= row_stride, "columns beyond the row");
        assert!(
            rows == 0 || data.len() >= (rows - 1) * row_stride + cols,
            "view out of bounds"
        );
        View {
            data,
            rows,
            cols,
            rs: row_stride as isize,
            cs: 1,
        }
    }

    /// The transpose of a row-major `rows x cols` matrix (so `cols x rows`), without copying.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        assert!(data.len() >= rows * cols, "view out of bounds");
        View {
            data,
            rows: cols,
            cols: rows,
            rs: 1,
            cs: cols as isize,
        }
    }

    fn ptr_at(&self, r: usize, c: usize) -> *const f32 {
        // In bounds: r < rows, c < cols was checked by the caller's shape asserts.
        self.data[(r as isize * self.rs + c as isize * self.cs) as usize..].as_ptr()
    }
}

/// How a product is cut into blocks that run in parallel. The cut is fixed by the caller,
/// never derived from the thread count, so results are bit-identical with 1 thread or 64.
/// (Blocks of output rows that need their own follow-up work use [`matmul_rows`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// One block: the caller runs independent products side by side instead.
    None,
    /// `n` blocks of output columns, each packing all of `a` (cheap when `a` is small).
    Cols(usize),
}

impl Split {
    /// How many blocks of output columns [`in_column_blocks`] is asked for (one block runs
    /// on the calling thread).
    fn blocks(self) -> usize {
        match self {
            Split::None => 1,
            Split::Cols(p) => p.max(1),
        }
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: blocks write disjoint parts of the destination, see `matmul`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer, taken through a method so closures capture the whole `Send` wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `dst (m x n, row-major) = a (m x k) * b (k x n)`, cut into blocks as `split` says.
pub fn matmul(dst: &mut [f32], a: View, b: View, split: Split) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert_eq!(dst.len(), m * n, "destination has the wrong size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst.fill(0.0);
        return;
    }
    let out = SendPtr(dst.as_mut_ptr());
    in_column_blocks(n, split.blocks(), |start, size| {
        // SAFETY: the block covers columns `start..start + size` of `dst`, disjoint from every
        // other block; `a` and `b` are only read and their views were bounds-checked.
        unsafe {
            gemm_block(
                out.get().add(start),
                n,
                m,
                size,
                k,
                a.ptr_at(0, 0),
                a,
                b.ptr_at(0, start),
                b,
            );
        }
    });
}

/// Runs `run(start, size)` for each of about `blocks` blocks of the columns `0..n`, in
/// parallel (one block: on the calling thread, all `n` columns): the one cut of a product's
/// output columns, whatever the thread count. Columns in multiples of 16 keep gemm's tiles
/// whole.
fn in_column_blocks(n: usize, blocks: usize, run: impl Fn(usize, usize) + Sync) {
    let block = n.div_ceil(blocks).div_ceil(16) * 16;
    let count = n.div_ceil(block);
    let run_block = |i: usize| {
        let start = i * block;
        run(start, block.min(n - start));
    };
    if count == 1 {
        run_block(0);
    } else {
        (0..count).into_par_iter().for_each(run_block);
    }
}

/// Floats added to each row of a weight copied by [`matmul_by_transposed`]: 64 bytes, so that
/// consecutive rows no longer start a multiple of 1 KiB apart.
const PAD: usize = 16;

/// Whether a weight with rows `k` floats long is copied with padded rows before a product
/// with its transpose. gemm packs that operand by reading down its columns, one float from
/// each of 64 rows at a time; at a row length of a multiple of 1 KiB those rows fall into a
/// few of L1's 64 sets and evict each other. On the Zen 5 EPYC (2026-12-04, one thread, 100
/// rows) a product with a `784 x 1024` weight took 1.82 ms and 0.81 ms with the copy
/// included, `1024 x 512` 0.73 against 0.49 ms; rows of 256 floats or fewer gained nothing.
fn pads(k: usize) -> bool {
    k >= 512 && (k * 4).is_multiple_of(1024)
}

/// Scratch floats [`matmul_by_transposed`] needs for an `n x k` weight (0 if it needs none).
fn padded_len(n: usize, k: usize) -> usize {
    if pads(k) {
        n * (k + PAD)
    } else {
        0
    }
}

/// Scratch floats a network of layer widths `sizes` (input first) needs for the forward
/// products of all its layers through [`matmul_by_transposed`], one after another: the
/// largest layer's need. The trainer makes it; the runner's memory estimate counts it.
pub fn forward_scratch_len(sizes: &[usize]) -> usize {
    sizes
        .windows(2)
        .map(|io| padded_len(io[1], io[0]))
        .max()
        .unwrap_or(0)
}

/// `dst (m x n, row-major) = a (m x k) * w^T` for a row-major weight `w` (`n x k`, a layer's
/// `outputs x inputs`), cut into blocks as `split` says, like [`matmul`] with
/// `View::transposed(w, n, k)` and with the same results to the bit: where [`pads`] says so,
/// each block first copies its rows of `w` into `scratch` (see [`forward_scratch_len`])
/// with padded rows, and gemm reads the copy, whose values are the same.
pub fn matmul_by_transposed(
    dst: &mut [f32],
    a: View,
    w: &[f32],
    n: usize,
    split: Split,
    scratch: &mut [f32],
) {
    let k = a.cols;
    if !pads(k) {
        return matmul(dst, a, View::transposed(w, n, k), split);
    }
    let m = a.rows;
    let stride = k + PAD;
    assert_eq!(w.len(), n * k, "weight has the wrong size");
    assert!(
        scratch.len() >= n * stride,
        "scratch too small for the weight"
    );
    assert_eq!(dst.len(), m * n, "destination has the wrong size");
    if m == 0 || n == 0 {
        return;
    }
    let out = SendPtr(dst.as_mut_ptr());
    let copies = SendPtr(scratch.as_mut_ptr());
    // `matmul`'s blocks, so that every gemm call has the same shape as there.
    in_column_blocks(n, split.blocks(), |start, size| {
        // SAFETY: the block owns rows `start..start + size` of the scratch and columns
        // `start..start + size` of `dst`, disjoint from every other block's; the scratch
        // holds `n * stride` floats (asserted above).
        let rows = unsafe {
            std::slice::from_raw_parts_mut(copies.get().add(start * stride), size * stride)
        };
        for (copy, row) in rows
            .chunks_exact_mut(stride)
            .zip(w[start * k..(start + size) * k].chunks_exact(k))
        {
            copy[..k].copy_from_slice(row);
        }
        let b = View {
            data: rows,
            rows: k,
            cols: size,
            rs: 1,
            cs: stride as isize,
        };
        // SAFETY: as above for `dst`; `a` and `b` are in bounds for their shapes.
        unsafe {
            gemm_block(
                out.get().add(start),
                n,
                m,
                size,
                k,
                a.ptr_at(0, 0),
                a,
                b.ptr_at(0, 0),
                b,
            );
        }
    });
}

/// Rows `first_row..first_row + dst.len() / n` of `a * b`, into `dst` (row-major, `n` wide),
/// on the calling thread: for callers that give each block of rows its own follow-up work.
pub fn matmul_rows(dst: &mut [f32], a: View, b: View, first_row: usize) {
    let (k, n) = (a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    let rows = dst.len() / n.max(1);
    assert!(
        first_row + rows <= a.rows && rows * n == dst.len(),
        "row block out of range"
    );
    if rows == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst.fill(0.0);
        return;
    }
    // SAFETY: `dst` is exactly `rows x n`; the rows of `a` and all of `b` are in bounds.
    unsafe {
        gemm_block(
            dst.as_mut_ptr(),
            n,
            rows,
            n,
            k,
            a.ptr_at(first_row, 0),
            a,
            b.ptr_at(0, 0),
            b,
        )
    }
}

/// `dst (m x n, row-major) += a (m x k) * b (k x n)`, on the calling thread (the
/// convolution layers accumulate image by image, in a fixed order).
pub fn matmul_accumulate(dst: &mut [f32], a: View, b: View) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert_eq!(dst.len(), m * n, "destination has the wrong size");
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: `dst` is exactly `m x n`; both views were bounds-checked when made.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.ptr_at(0, 0),
            a.cs,
            a.rs,
            b.ptr_at(0, 0),
            b.cs,
            b.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// One single-threaded product into a row-major block with row stride `ldd`.
///
/// # Safety
/// `dst` must be valid for writes of an `m x n` block with row stride `ldd`, and `a_ptr` /
/// `b_ptr` valid for reads of `m x k` / `k x n` elements with the strides of `a` / `b`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(
    dst: *mut f32,
    ldd: usize,
    m: usize,
    n: usize,
    k: usize,
    a_ptr: *const f32,
    a: View,
    b_ptr: *const f32,
    b: View,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        ldd as isize,
        false,
        a_ptr,
        a.cs,
        a.rs,
        b_ptr,
        b.cs,
        b.rs,
        0.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// `exp(x)` for `f32` as a polynomial that vectorises (Cephes' `expf`: reduction by ln 2,
/// degree-6 minimax polynomial), within 1e-7 relative of the exact value. Inputs below
/// -87.3 give about 1.2e-38 instead of a subnormal, which no sigmoid here can tell apart.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.7);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4f32 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * (r * r) + r + 1.0;
    // 2^n built from the integer already sitting in t's low mantissa bits.
    y * f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23)
}

/// `tanh(x)` for `f32` in a form that vectorises (Cephes' `tanhf`: an odd polynomial below
/// 0.625, `1 - 2 / (e^2|x| + 1)` above), within 2e-7 relative of the exact value. libm's
/// `tanhf` does not vectorise: on a tanh generator's 78,400 output pixels a step it took
/// 6.2% of a one-thread `improved.yaml` step (perf, Zen 5, 2026-12-04).
#[inline(always)]
pub fn tanh_fast(x: f32) -> f32 {
    let a = x.abs();
    let large = 1.0 - 2.0 / (exp_fast(2.0 * a) + 1.0);
    let z = x * x;
    let p = ((((-5.704_988_7e-3f32 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1)
        * z
        - 3.333_328e-1)
        * z;
    let small = p * a + a;
    // NaN takes the polynomial's side and stays NaN.
    let t = if a > 0.625 { large } else { small };
    t.copysign(x)
}

/// The logistic function, `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// `ln(1 + e^x)` without overflow or loss of precision for large `|x|`.
#[inline]
pub fn softplus(x: f32) -> f32 {
    let x = x as f64;
    (x.max(0.0) + (-x.abs()).exp().ln_1p()) as f32
}

/// Rows of `out` (`rows x width`) become `act(rows of inp + bias)`; parallel over fixed row blocks.
pub(crate) fn bias_act(
    out: &mut [f32],
    width: usize,
    bias: &[f32],
    act: impl Fn(f32) -> f32 + Sync,
) {
    assert_eq!(bias.len(), width);
    out.par_chunks_mut(width * 16).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(width) {
            for (o, &b) in row.iter_mut().zip(bias) {
                *o = act(*o + b);
            }
        }
    });
}

/// `out = relu(out + bias)` row by row. NaN stays NaN (`f32::max` would turn it into 0 and
/// hide a diverged network from the loss check).
pub fn bias_relu(out: &mut [f32], bias: &[f32]) {
    bias_act(out, bias.len(), bias, |x| if x < 0.0 { 0.0 } else { x });
}

/// `out = sigmoid(out + bias)` row by row, with AVX2 where the CPU has it (same results).
pub fn bias_sigmoid(out: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        let width = bias.len();
        out.par_chunks_mut(width * 16).for_each(|chunk| {
            // SAFETY: the CPU supports AVX2, checked above.
            unsafe { bias_sigmoid_avx2(chunk, bias) }
        });
        return;
    }
    bias_act(out, bias.len(), bias, sigmoid);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bias_sigmoid_avx2(chunk: &mut [f32], bias: &[f32]) {
    // Same operations in the same order as the portable path: only the instruction width
    // differs (no FMA contraction happens without fast-math), so results are identical.
    for row in chunk.chunks_exact_mut(bias.len()) {
        for (o, &b) in row.iter_mut().zip(bias) {
            *o = sigmoid(*o + b);
        }
    }
}

/// Column sums of a row-major `rows x width` matrix, in row order.
pub fn column_sums(out: &mut [f32], m: &[f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(out.len()) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
}

/// Matrix-vector products `out[r] = rows[r] . w + b` for a one-unit output layer.
pub fn rows_dot(out: &mut [f32], rows: &[f32], w: &[f32], b: f32) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(w.len())) {
        *o = dot(row, w) + b;
    }
}

/// A dot product with eight independent accumulators (vectorises; fixed summation order).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        s += x * y;
    }
    s
}

/// Turns flushing of denormal floats to zero on or off for the calling thread (x86_64:
/// flush-to-zero and denormals-are-zero, MXCSR bits 15 and 6; aarch64: FPCR.FZ), as
/// TensorFlow's CPU executor turns it on for its worker threads. Denormal arithmetic takes
/// microcode assists on Intel cores: a step from late weights ran 15% faster flushed on a
/// Xeon (no change on an AMD EPYC). Returns whether this architecture can (elsewhere nothing
/// changes).
pub fn set_flush_denormals(on: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        const FTZ_DAZ: u32 = 0x8040;
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register only.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr = if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
        true
    }
    #[cfg(target_arch = "aarch64")]
    {
        const FZ: u64 = 1 << 24;
        let mut fpcr: u64;
        // SAFETY: mrs/msr read and write this thread's floating-point control register only.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
            fpcr = if on { fpcr | FZ } else { fpcr & !FZ };
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack));
        }
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = on;
        false
    }
}

/// [`set_flush_denormals`]`(true)`.
pub fn flush_denormals() -> bool {
    set_flush_denormals(true)
}

/// Element-wise passes over at least this many floats run in two halves side by side: a
/// layer's pass (20,000 to 630,000 floats) takes longer than the hand-off. Each entry's
/// arithmetic is the same wherever the cut falls.
pub(crate) const HALVES_FROM: usize = 16_384;

/// `f` on `x`, in two halves side by side if it is long enough.
pub(crate) fn in_halves(x: &mut [f32], f: impl Fn(&mut [f32]) + Sync) {
    if x.len() < HALVES_FROM {
        return f(x);
    }
    let (a, b) = x.split_at_mut(x.len() / 2);
    rayon::join(|| f(a), || f(b));
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    use super::*;

    #[test]
    fn exp_fast_is_accurate() {
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let exact = (x as f64).exp();
            worst = worst.max(((exp_fast(x) as f64 - exact) / exact).abs());
        }
        assert!(worst < 2e-7, "relative error {worst}");
        let tiny = sigmoid(-1e30);
        assert!((0.0..1e-37).contains(&tiny), "{tiny}");
        assert_eq!(sigmoid(1e30), 1.0);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_fast_is_accurate() {
        let relative_error = |x: f32| {
            let exact = (x as f64).tanh();
            if exact == 0.0 {
                return 0.0;
            }
            ((tanh_fast(x) as f64 - exact) / exact).abs()
        };
        let spread = (0..400_000).map(|i| -20.0 + 40.0 * i as f32 / 400_000.0);
        let edges = [
            1e-30f32, 1e-10, 1e-5, 0.01, 0.624_999, 0.625, 0.625_001, 9.0,
        ];
        let worst = spread
            .chain(edges.iter().flat_map(|&x| [x, -x]))
            .map(relative_error)
            .fold(0.0f64, f64::max);
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!(tanh_fast(1e30), 1.0);
        assert_eq!(tanh_fast(-1e30), -1.0);
        assert_eq!(tanh_fast(f32::INFINITY), 1.0);
        assert_eq!(tanh_fast(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(tanh_fast(f32::NAN).is_nan());
    }

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert_eq!(softplus(-1000.0), 0.0);
        assert!((softplus(0.0) - std::f32::consts::LN_2).abs() < 1e-7);
        assert!((softplus(-20.0) - 2.0611537e-9).abs() < 1e-15);
    }

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum::<f64>() as f32;
            }
        }
        c
    }

    #[test]
    fn matmul_matches_a_naive_product_in_every_layout() {
        for &(m, k, n) in &[(7, 5, 3), (37, 50, 300), (300, 20, 41), (1, 9, 1)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let want = naive(&a, &b, m, k, n);
            let close = |g: &[f32]| g.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-4);
            let (av, bv) = (View::rows(&a, m, k), View::rows(&b, k, n));
            let mut got = vec![f32::NAN; m * n];
            matmul(&mut got, av, bv, Split::None);
            assert!(close(&got), "row-major {m}x{k}x{n}");
            // In blocks of 3 rows, as the step's fused gradient blocks compute it.
            let mut got_rows = vec![f32::NAN; m * n];
            for (i, blk) in got_rows.chunks_mut(3 * n).enumerate() {
                matmul_rows(blk, av, bv, 3 * i);
            }
            assert!(close(&got_rows), "row blocks {m}x{k}x{n}");
            // The same product through transposed storage of both operands.
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for split in [Split::None, Split::Cols(4)] {
                let mut got_t = vec![f32::NAN; m * n];
                matmul(
                    &mut got_t,
                    View::transposed(&at, k, m),
                    View::transposed(&bt, n, k),
                    split,
                );
                assert!(close(&got_t), "transposed {m}x{k}x{n} {split:?}");
            }
        }
    }

    #[test]
    fn products_with_padded_weight_copies_are_bit_identical() {
        // Row lengths that are copied (512, 768, 1024) and one that is not (784), in one
        // block, in blocks, and in blocks of unequal size.
        for &(m, k, n) in &[(5, 512, 40), (100, 1024, 33), (7, 768, 64), (3, 784, 20)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 300.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 104_729 % 997) as f32 - 498.0) / 700.0)
                .collect();
            assert_eq!(padded_len(n, k) > 0, k != 784, "{k}");
            let mut scratch = vec![f32::NAN; padded_len(n, k)];
            for split in [Split::None, Split::Cols(2), Split::Cols(3)] {
                let mut want = vec![f32::NAN; m * n];
                matmul(
                    &mut want,
                    View::rows(&a, m, k),
                    View::transposed(&w, n, k),
                    split,
                );
                let mut got = vec![f32::NAN; m * n];
                matmul_by_transposed(&mut got, View::rows(&a, m, k), &w, n, split, &mut scratch);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{m}x{k}x{n} {split:?}");
            }
        }
    }

    #[test]
    fn dot_and_column_sums() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..19).map(|i| (i * i) as f32).sum::<f32>());
        let mut sums = [0.0; 3];
        column_sums(&mut sums, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(sums, [5.0, 7.0, 9.0]);
    }

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn flushing_denormals_is_per_thread_and_can_be_undone() {
        let half_of_smallest_normal = || black_box(f32::MIN_POSITIVE) * black_box(0.5);
        std::thread::spawn(move || {
            assert!(set_flush_denormals(true));
            assert_eq!(half_of_smallest_normal(), 0.0);
            assert!(set_flush_denormals(false));
            assert_eq!(half_of_smallest_normal(), f32::MIN_POSITIVE / 2.0);
        })
        .join()
        .unwrap();
        // The spawned thread's setting did not leak into this one.
        assert_eq!(half_of_smallest_normal(), f32::MIN_POSITIVE / 2.0);
    }
}
