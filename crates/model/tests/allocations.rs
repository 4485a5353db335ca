//! The training step allocates nothing of its own: every buffer is made once, with the
//! trainer. The only allocations during a step are gemm 0.19's, which builds its packing
//! scratch on every product (its API takes no buffer; about 35 small allocations a tutorial
//! step, served from the allocator's caches). A counting allocator captures a backtrace of each
//! allocation made during a few steps, of the tutorial and of a deeper member of the family,
//! in rayon pools of one and two threads, and reports any that gemm did not make.
//!
//! Two kinds are not the step's and are only counted: rayon's scheduler growing its
//! work-stealing queues (crossbeam-deque blocks and buffers, made when and where the
//! threads' timing decides, so a check on them fails at random), and allocations on threads
//! that run no code of this crate at all (the test harness's).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use gan_model::dcgan::DcganTrainer;
use gan_model::Step;
use gan_model::{Activation, Arch, DcganShape, Loss, ModelConfig, Output, TrainConfig, Trainer};

struct Watching;

static WATCHING: AtomicBool = AtomicBool::new(false);
static FROM_GEMM: AtomicUsize = AtomicUsize::new(0);
static FROM_SCHEDULER: AtomicUsize = AtomicUsize::new(0);
static OTHERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread inspects an allocation (capturing a backtrace allocates too).
    static INSPECTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.load(Ordering::Relaxed) && !INSPECTING.with(|f| f.replace(true)) {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            if trace.contains("gemm") {
                FROM_GEMM.fetch_add(1, Ordering::Relaxed);
            } else if trace.contains("crossbeam_deque") || !trace.contains("gan_model") {
                FROM_SCHEDULER.fetch_add(1, Ordering::Relaxed);
            } else {
                let frames: Vec<&str> = trace
                    .lines()
                    .filter(|l| l.contains("gan_model") || l.contains("rayon"))
                    .take(6)
                    .collect();
                OTHERS.lock().unwrap().push(format!(
                    "{} bytes: {}",
                    layout.size(),
                    frames.join(" / ")
                ));
            }
            INSPECTING.with(|f| f.set(false));
        }
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Watching = Watching;

/// Runs `steps` steps after two warm-up steps, watching their allocations.
fn watch(cfg: TrainConfig, threads: usize, steps: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = Trainer::new(cfg, 3);
        for (i, v) in t.real_batch_mut().iter_mut().enumerate() {
            *v = (i % 97) as f32 / 96.0;
        }
        t.step().unwrap();
        t.step().unwrap();
        WATCHING.store(true, Ordering::SeqCst);
        for _ in 0..steps {
            t.step().unwrap();
        }
        WATCHING.store(false, Ordering::SeqCst);
    });
}

/// The same for a DCGAN (small widths, a batch that leaves one lane an uneven group, the
/// moving average of G and two D updates a step), with dropout in D, or with a dense layer
/// in D instead (the spec does not combine the two).
fn watch_dcgan(threads: usize, steps: usize, d_dense: usize, classes: usize) {
    let cfg = TrainConfig {
        model: ModelConfig {
            noise_dim: 16,
            d_act: Activation::LeakyRelu(0.2),
            g_output: Output::Tanh,
            arch: Arch::Dcgan(DcganShape {
                g_channels: [16, 8],
                d_channels: [8, 16],
                d_batch_norm: true,
                d_dense,
            }),
            d_dropout: if d_dense > 0 { 0.0 } else { 0.3 },
            classes,
            ..ModelConfig::default()
        },
        batch_size: 16,
        d_steps: 2,
        g_ema: Some(0.999),
        ..TrainConfig::tutorial()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = DcganTrainer::new(cfg, 3);
        let mut fill = |px: &mut [f32], _: &mut [u8]| {
            for (i, v) in px.iter_mut().enumerate() {
                *v = (i % 97) as f32 / 96.0;
            }
        };
        t.step_with(&mut fill).unwrap();
        WATCHING.store(true, Ordering::SeqCst);
        for _ in 0..steps {
            t.step_with(&mut fill).unwrap();
        }
        WATCHING.store(false, Ordering::SeqCst);
    });
}

#[test]
fn steps_allocate_nothing_of_their_own() {
    let deep = TrainConfig {
        model: ModelConfig {
            g_hidden: vec![64, 128],
            d_hidden: vec![128, 64],
            g_act: Activation::LeakyRelu(0.2),
            d_act: Activation::Tanh,
            g_output: Output::Tanh,
            d_dropout: 0.3,
            ..ModelConfig::default()
        },
        batch_size: 32,
        loss: Loss::Hinge,
        d_steps: 2,
        ..TrainConfig::tutorial()
    };
    // Layers 512 wide: their forward products copy the weights into padded scratch
    // (`kernels::matmul_by_transposed`), made with the trainer.
    let wide = TrainConfig {
        model: ModelConfig {
            g_hidden: vec![512],
            d_hidden: vec![512, 64],
            ..ModelConfig::default()
        },
        batch_size: 8,
        ..TrainConfig::tutorial()
    };
    for threads in [1, 2] {
        watch(TrainConfig::tutorial(), threads, 3);
        watch(deep.clone(), threads, 3);
        watch(wide.clone(), threads, 2);
        watch_dcgan(threads, 2, 0, 0);
        watch_dcgan(threads, 2, 24, 0);
        watch_dcgan(threads, 2, 24, 10);
    }
    let others = OTHERS.lock().unwrap();
    assert!(
        others.is_empty(),
        "{} allocations not made by gemm during steps:\n{}",
        others.len(),
        others.join("\n")
    );
    assert!(
        FROM_GEMM.load(Ordering::SeqCst) > 0,
        "the watch saw gemm's scratch allocations, so it sees allocations at all"
    );
}
