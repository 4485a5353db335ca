//! Times the training loop on real MNIST the way `../shared/bench/peers.sh` times the Python
//! peers: each step is batch assembly + noise + the D and G updates, and the figure is the
//! median after 20 warm-up steps. Run through `cargo xtask bench` (release build); `--spec`
//! times any spec's model and training options (default: the tutorial's).
//!
//! Last line of output: `train_step_ms: <median>`.

use std::path::PathBuf;
use std::time::Instant;

use gan_data::{load_training, Batcher};
use gan_model::train::flops::total_flops;
use gan_model::{stream, AnyTrainer, Arch, Stream, TrainConfig};

mod ceiling;
mod dcgan_layers;

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
    /// Time this spec's step (model, loss, D steps, batch size) instead of the tutorial's, on
    /// its data as a run sees it (`data.limit`, and `model.clusters`' k-means, untimed)
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Start from this checkpoint (a file in a run's `checkpoints/`, written under the same
    /// spec) instead of fresh weights: a late epoch's step can cost more than a fresh one's
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Keep denormal floats on the step's threads, as `train.flush_denormals: false` does;
    /// without it the spec's setting holds (flushed to zero by default, as TensorFlow does)
    #[arg(long)]
    keep_denormals: bool,
    /// Time the DCGAN of PyTorch's example at MNIST's size (`gan_model::dcgan::pytorch_example`,
    /// as `tools/peers/peer.sh dcgan` trains it) instead of the tutorial
    #[arg(long, conflicts_with_all = ["spec", "checkpoint", "phases"])]
    dcgan: bool,
    /// Also print the time per phase of the step (needs the `phases` feature, which
    /// `cargo xtask bench --phases` turns on)
    #[arg(long)]
    phases: bool,
    /// Also measure this machine's multiply-add ceiling (a loop of independent FMAs, the
    /// widest vectors the CPU has, on 1 thread and on `--threads`) and the least time the
    /// step's products could take at it, then time each of the step's products as one gemm
    /// call on one thread (MLP models), or each layer pass alone on one thread and on
    /// `--threads` (DCGANs), before timing the step
    #[arg(long)]
    ceiling: bool,
}

fn more_than_warmup(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > WARMUP => Ok(n),
        Ok(_) => Err(format!("must be more than the {WARMUP} warm-up steps")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() {
    gan_tools::quiet_broken_pipe();
    let args = <Args as clap::Parser>::parse();
    let fail = |e: String| -> ! {
        eprintln!("error: {e}");
        std::process::exit(1);
    };
    let (train, cfg, flush) = match &args.spec {
        None => {
            let (train, _) = load_training(&args.data).unwrap_or_else(|e| fail(e.to_string()));
            let cfg = match args.dcgan {
                true => gan_model::dcgan::pytorch_example(),
                false => TrainConfig::tutorial(),
            };
            (train, cfg, gan_spec::TrainSpec::default().flush_denormals)
        }
        // The spec's data as a run sees it: limited, and clustered for `model.clusters`.
        Some(path) => {
            let mut spec = gan_spec::load_spec(path, &[]).unwrap_or_else(|e| fail(e.to_string()));
            spec.data.dir = args.data.display().to_string();
            spec.seed = args.seed;
            let (train, cfg) = runner::training_setup(&spec, false, args.threads)
                .unwrap_or_else(|e| fail(format!("{e:#}")));
            (train, cfg, spec.train.flush_denormals)
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .expect("thread pool");
    if args.phases && gan_model::mlp::phases::take().is_none() {
        fail("--phases needs the `phases` feature: run `cargo xtask bench --phases`".into());
    }
    let flush = flush && !args.keep_denormals;
    if flush && !pool.broadcast(|_| gan_model::set_flush_denormals(true))[0] {
        fail("flushing denormals is not implemented on this CPU: pass --keep-denormals".into());
    }
    let flops = match &cfg.model.arch {
        Arch::Dcgan(shape) => gan_model::dcgan::step_flops(&cfg, shape),
        Arch::Mlp => total_flops(&gan_model::mlp::step_products(&cfg)),
    };
    if args.ceiling {
        let rate = ceiling::print_ceiling(args.threads, flops);
        match &cfg.model.arch {
            Arch::Mlp => ceiling::print_products(&cfg, args.threads, flops),
            Arch::Dcgan(shape) => dcgan_layers::print_layer_passes(&cfg, shape, &pool, flops, rate),
        }
    }
    let times = pool.install(|| {
        let mut trainer = match &args.checkpoint {
            None => AnyTrainer::new(cfg.clone(), args.seed),
            Some(path) => {
                let bytes = std::fs::read(path)
                    .unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
                let (state, _) = gan_model::checkpoint::decode_any_state(&bytes, cfg.adam_g())
                    .unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
                if let Err(e) = state.check_fits(&cfg) {
                    fail(format!("{}: {e} (pass --spec)", path.display()));
                }
                AnyTrainer::restore(cfg.clone(), args.seed, state)
            }
        };
        let mut batches =
            Batcher::new(train.len(), cfg.batch_size, stream(args.seed, Stream::Data))
                .unwrap_or_else(|e| fail(e.to_string()));
        let mut times = Vec::with_capacity(args.steps);
        for i in 0..args.steps {
            if i == WARMUP {
                gan_model::mlp::phases::take();
            }
            let t0 = Instant::now();
            let (images, labels) = (&train.images, &train.labels);
            trainer
                .step_with(&mut |real, real_labels| {
                    let indices = batches.next_batch();
                    images.gather_f32(indices, real);
                    for (l, &i) in real_labels.iter_mut().zip(indices) {
                        *l = labels[i as usize];
                    }
                })
                .expect("training step");
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times
    });
    let mut timed = times[WARMUP..].to_vec();
    timed.sort_by(f64::total_cmp);
    let pct = |p: f64| timed[((timed.len() - 1) as f64 * p).round() as usize];
    let median = pct(0.5);
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
    if args.phases {
        print_phases(&times[WARMUP..]);
    }
    println!("train_step_ms: {median:.3}");
}

/// The mean time per step of each phase since the warm-up, beside the mean step.
fn print_phases(times: &[f64]) {
    let phases = gan_model::mlp::phases::take().expect("checked before training");
    let steps = times.len() as f64;
    let mean_step = times.iter().sum::<f64>() / steps;
    let mut total = 0.0;
    println!("phase (mean per step; side-by-side phases overlap at 2 threads)   ms   % of step");
    for (phase, time) in &phases {
        let ms = time.as_secs_f64() * 1e3 / steps;
        total += ms;
        if ms > 0.0 {
            println!(
                "  {:<40} {ms:>8.3} {:>6.1}",
                phase.name(),
                100.0 * ms / mean_step
            );
        }
    }
    println!(
        "  {:<40} {total:>8.3} {:>6.1}",
        "sum of phases",
        100.0 * total / mean_step
    );
    println!(
        "  {:<40} {mean_step:>8.3} {:>6.1}",
        "step (mean wall time)", 100.0
    );
}
