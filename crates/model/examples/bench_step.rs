//! Times the training loop on real MNIST the way `../shared/bench/peers.sh` times the Python
//! peers: each step is batch assembly + noise + the D and G updates, and the figure is the
//! median after 20 warm-up steps. Run through `cargo xtask bench` (release build).
//!
//! Last line of output: `train_step_ms: <median>`.

use std::path::PathBuf;
use std::time::Instant;

use gan_data::{load_training, Batcher, IMAGE_PIXELS};
use gan_model::{stream, Stream, TrainConfig, Trainer};

const WARMUP: usize = 20;

/// Times the training step on real MNIST (run it through `cargo xtask bench`).
#[derive(clap::Parser)]
struct Args {
    /// Training steps to time, the first 20 being warm-up
    #[arg(long, default_value_t = 620, value_parser = more_than_warmup)]
    steps: usize,
    /// Threads of the training step
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Folder with MNIST
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Seed of the run
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn more_than_warmup(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > WARMUP => Ok(n),
        Ok(_) => Err(format!("must be more than the {WARMUP} warm-up steps")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let (train, _) = match load_training(&args.data) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .expect("thread pool");
    let cfg = TrainConfig::tutorial();
    let times = pool.install(|| {
        let mut trainer = Trainer::new(cfg.clone(), args.seed);
        let mut batches =
            Batcher::new(train.len(), cfg.batch_size, stream(args.seed, Stream::Data))
                .expect("batch fits the data");
        let mut times = Vec::with_capacity(args.steps);
        for _ in 0..args.steps {
            let t0 = Instant::now();
            let indices = batches.next_batch();
            let images = &train.images;
            trainer
                .step_with(&mut |real, _| images.gather_f32(indices, real))
                .expect("training step");
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times
    });
    let mut timed = times[WARMUP..].to_vec();
    timed.sort_by(f64::total_cmp);
    let pct = |p: f64| timed[((timed.len() - 1) as f64 * p).round() as usize];
    let median = pct(0.5);
    // FLOPs of the step's matrix products: G forward, D forward on 2B rows, D weight gradient,
    // D forward on B rows and its input gradient, then G's two weight gradients and its hidden gradient.
    let (b, z, h, x) = (cfg.batch_size as f64, 128.0, 256.0, IMAGE_PIXELS as f64);
    let flops = 2.0
        * (b * z * h
            + b * h * x
            + 2.0 * b * x * h
            + 2.0 * b * x * h
            + b * x * h
            + b * h * x
            + b * x * h
            + b * h * x
            + b * z * h);
    println!(
        "steps: {} (median of {} after {WARMUP} warm-up), threads: {}, p10 {:.3} ms, p90 {:.3} ms, {:.1} GFLOP/s at the median ({:.0} MFLOP per step)",
        args.steps,
        timed.len(),
        args.threads,
        pct(0.1),
        pct(0.9),
        flops / (median * 1e-3) / 1e9,
        flops / 1e6
    );
    println!("train_step_ms: {median:.3}");
}
