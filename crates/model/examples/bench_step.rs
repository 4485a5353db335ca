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

struct Args {
    steps: usize,
    threads: usize,
    data: PathBuf,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        steps: 620,
        threads: 2,
        data: PathBuf::from("data/mnist"),
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--steps" => args.steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--data" => args.data = PathBuf::from(value()?),
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.steps <= WARMUP {
        return Err(format!(
            "--steps must be more than the {WARMUP} warm-up steps"
        ));
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
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
        let mut trainer = Trainer::new(cfg, args.seed);
        let mut batches =
            Batcher::new(train.len(), cfg.batch_size, stream(args.seed, Stream::Data))
                .expect("batch fits the data");
        let mut times = Vec::with_capacity(args.steps);
        for _ in 0..args.steps {
            let t0 = Instant::now();
            let indices = batches.next_batch();
            let images = &train.images;
            trainer
                .step_with(&mut |real| images.gather_f32(indices, real))
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
