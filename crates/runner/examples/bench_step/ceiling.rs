//! `--ceiling`: the least time the step could take on this machine, from two measurements:
//! a loop of independent FMAs (the cores' arithmetic ceiling) and the step's own products,
//! each one gemm call on one thread (what those products cost at the rate gemm reaches).

use std::time::Instant;

use gan_model::kernels::{self, Split, View};
use gan_model::train::flops::{Pass, Product};
use gan_model::TrainConfig;

/// Prints the FMA ceiling on 1 and on `threads` threads (GFLOP/s) and what it means for a
/// step of `flops`: the products alone could not take less. Returns the rate on `threads`.
pub fn print_ceiling(threads: usize, flops: f64) -> Option<f64> {
    let Some((isa, one)) = fma_ceiling(1) else {
        println!("ceiling: not measured (needs x86_64 with FMA)");
        return None;
    };
    let (_, all) = fma_ceiling(threads).expect("measured above");
    println!(
        "ceiling ({isa} FMA loop): {one:.1} GFLOP/s on 1 thread, {all:.1} on {threads}; \
         the step's {:.0} MFLOP of products need at least {:.3} ms on {threads}",
        flops / 1e6,
        flops / (all * 1e9) * 1e3
    );
    Some(all)
}

/// GFLOP/s of independent fused multiply-adds on `threads` threads at once, and the vector
/// width used; `None` without FMA.
fn fma_ceiling(threads: usize) -> Option<(&'static str, f64)> {
    #[cfg(target_arch = "x86_64")]
    {
        let (isa, lanes): (&'static str, usize) = if std::is_x86_feature_detected!("avx512f") {
            ("AVX-512", 16)
        } else if std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2") {
            ("AVX2", 8)
        } else {
            return None;
        };
        const ITERS: u64 = 100_000_000;
        let start = Instant::now();
        let sink: f32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(move || fma_loop::run(lanes, ITERS)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("FMA loop"))
                .sum()
        });
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        let flops = (threads as u64 * ITERS * fma_loop::CHAINS as u64 * lanes as u64 * 2) as f64;
        Some((isa, flops / secs / 1e9))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = threads;
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod fma_loop {
    use std::arch::x86_64::*;

    /// Independent accumulators: enough to cover the FMA latency of two ports.
    pub const CHAINS: usize = 12;

    /// `iters` rounds of `CHAINS` FMAs `lanes` wide (16: AVX-512, 8: AVX2); the caller
    /// checked the CPU has them.
    pub fn run(lanes: usize, iters: u64) -> f32 {
        // SAFETY: the caller detected AVX-512F (16 lanes) or AVX2 and FMA (8 lanes).
        unsafe {
            if lanes == 16 {
                run_512(iters)
            } else {
                run_256(iters)
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn run_512(iters: u64) -> f32 {
        let mut acc = [_mm512_set1_ps(0.0); CHAINS];
        let (a, b) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999_9));
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_256(iters: u64) -> f32 {
        let mut acc = [_mm256_set1_ps(0.0); CHAINS];
        let (a, b) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999_9));
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut out = [0.0f32; 8];
        acc.iter()
            .map(|&v| {
                _mm256_storeu_ps(out.as_mut_ptr(), v);
                out.iter().sum::<f32>()
            })
            .sum()
    }
}

/// Median seconds of one call of `run` (hot caches: warmed up, then 5 rounds of ~5 ms).
pub fn time_call(mut run: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut warm = 0u32;
    while warm < 3 || start.elapsed().as_secs_f64() < 0.005 {
        run();
        warm += 1;
    }
    let per = start.elapsed().as_secs_f64() / f64::from(warm);
    let reps = ((0.005 / per).ceil() as usize).max(1);
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                run();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

/// `n` floats in [-0.5, 0.5), the same every time: operands for timing.
pub fn arbitrary_values(n: usize) -> Vec<f32> {
    (0..n).map(|j| ((j % 97) as f32 - 48.0) / 97.0).collect()
}

/// Seconds of one call of the product through the step's own kernels, uncut (one gemm call
/// on the calling thread), on arbitrary values.
fn time_product(p: &Product) -> f64 {
    let (r, i, o) = (p.rows, p.inputs, p.outputs);
    let weight = arbitrary_values(o * i);
    match p.pass {
        Pass::Forward => {
            let (x, mut y) = (arbitrary_values(r * i), vec![0.0; r * o]);
            let mut scratch = vec![0.0; kernels::forward_scratch_len(&[i, o])];
            time_call(|| {
                let a = View::rows(&x, r, i);
                kernels::matmul_by_transposed(&mut y, a, &weight, o, Split::None, &mut scratch);
            })
        }
        Pass::InputGradient => {
            let (dy, mut dx) = (arbitrary_values(r * o), vec![0.0; r * i]);
            time_call(|| {
                let (a, w) = (View::rows(&dy, r, o), View::rows(&weight, o, i));
                kernels::matmul(&mut dx, a, w, Split::None);
            })
        }
        Pass::WeightGradient => {
            let (dy, x, mut dw) = (
                arbitrary_values(r * o),
                arbitrary_values(r * i),
                vec![0.0; o * i],
            );
            time_call(|| {
                let (a, xs) = (View::transposed(&dy, r, o), View::rows(&x, r, i));
                kernels::matmul(&mut dw, a, xs, Split::None);
            })
        }
    }
}

/// Times each of the step's products as one gemm call on one thread and prints them and
/// their sum: `threads` threads splitting them perfectly, with nothing else to do, could not
/// take less than the sum divided by `threads` at the rates gemm reaches here.
pub fn print_products(cfg: &TrainConfig, threads: usize, step_flops: f64) {
    // Layers with one output (D's last) are dot products in the step, not gemm calls.
    let products: Vec<Product> = gan_model::mlp::step_products(cfg)
        .into_iter()
        .filter(|p| p.outputs > 1)
        .collect();
    let mut total = (0.0, 0.0);
    println!("the step's products, one gemm call each on 1 thread (hot caches):");
    for p in &products {
        let secs = time_product(p);
        let what = p.pass.name();
        let times = match p.count {
            1 => String::new(),
            n => format!(", {n} a step"),
        };
        println!(
            "  {} {what} {}->{}, {} rows: {:.3} ms, {:.1} GFLOP/s{times}",
            p.net,
            p.inputs,
            p.outputs,
            p.rows,
            secs * 1e3,
            p.flops() / p.count as f64 / secs / 1e9
        );
        total.0 += secs * p.count as f64;
        total.1 += p.flops();
    }
    println!(
        "  all: {:.0} of the step's {:.0} MFLOP (the rest: one-unit layers' dot products) in \
         {:.3} ms on 1 thread, {:.1} GFLOP/s; split perfectly over {threads} threads at least {:.3} ms",
        total.1 / 1e6,
        step_flops / 1e6,
        total.0 * 1e3,
        total.1 / total.0 / 1e9,
        total.0 * 1e3 / threads as f64
    );
}
