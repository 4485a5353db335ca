//! `cargo xtask lockstep`: records a tutorial run so the tutorial's own TensorFlow program can
//! replay it step for step (`tools/lockstep/`), and writes this project's side of the trace.
//!
//! In DIR it writes `export.safetensors` (the initial training state in the checkpoint format
//! under `init.`: weights in PyTorch layout and both Adam states; every step's batch indices
//! and noise; the training images as bytes), `<label>.csv` (this project's per-step
//! `d_loss, g_loss, d_real, d_fake`) and `weights/<label>-<step>.safetensors` every
//! `--weights-every` steps. With `--from`, the replay starts from a run's checkpoint (late in
//! training, where logits and pixels saturate) instead of fresh weights. Variants (`--flush-denormals`, `--nudge`) write their own trace
//! under another label, so rounding-level perturbations of this project can be compared with
//! the gap to TensorFlow by the same script.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gan_data::{fixture_dir, load_training, Batcher};
use gan_model::checkpoint::{decode_state, encode_gan, encode_state};
use gan_model::mlp::lockstep::{record, replay_reference, Recording};
use gan_model::Step;
use gan_model::{stream, AdamConfig, StepStats, Stream, TrainConfig, Trainer};
use safetensors::tensor::{Dtype, TensorView};

#[derive(clap::Args)]
pub struct Args {
    /// Folder to write the export and traces into (created if missing)
    #[arg(long)]
    out: PathBuf,
    /// Seed of the run (initial weights, batch order and noise come from it as in `runner`)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start from this checkpoint of a tutorial run (`runs/<run>/checkpoints/step-*.safetensors`):
    /// its weights, Adam states and noise-stream position (give the run's --seed); batches come
    /// from a fresh shuffle of the seed's data stream
    #[arg(long, value_name = "CHECKPOINT")]
    from: Option<PathBuf>,
    /// Training steps to record
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Write both networks' weights after every N replayed steps (0: never); files are named
    /// by the run's step number
    #[arg(long, default_value_t = 500)]
    weights_every: usize,
    /// Also write the weights after these replayed steps (comma-separated; 1 is the first)
    #[arg(long, value_delimiter = ',')]
    weights_at: Vec<u64>,
    /// MNIST folder [default: <workspace>/data/mnist]
    #[arg(long, conflicts_with = "fixture")]
    data: Option<PathBuf>,
    /// Train on the committed test fixture (1,100 training images) instead of MNIST
    #[arg(long)]
    fixture: bool,
    /// Threads of the training step (results do not depend on it)
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Name of this trace: `<label>.csv` and `weights/<label>-*.safetensors`
    #[arg(long, default_value = "project")]
    label: String,
    /// Flush denormals to zero on the training threads, as TensorFlow's executor does (and
    /// the runner by default, `train.flush_denormals`)
    #[arg(long)]
    flush_denormals: bool,
    /// Flip the lowest mantissa bit of every initial weight: a rounding-level perturbation
    /// whose trace shows how fast pure rounding differences grow
    #[arg(long)]
    nudge: bool,
    /// Which implementation trains: `fast` (the project's step) or `dfdx` (the same maths in
    /// dfdx autograd plus the same Adam, replaying the fast run's inputs: how far two correct
    /// f32 implementations drift apart)
    #[arg(long, value_enum, default_value_t = Engine::Fast)]
    engine: Engine,
    /// Do not write export.safetensors (for variants of a run already exported)
    #[arg(long)]
    no_export: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Engine {
    Fast,
    Dfdx,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = if args.fixture {
        fixture_dir()
    } else {
        crate::mnist_dir(args.data.clone())
    };
    let (train, _) = load_training(&data).with_context(|| {
        format!(
            "loading MNIST from {} (run `cargo xtask fetch-mnist` first, or pass --fixture)",
            data.display()
        )
    })?;
    std::fs::create_dir_all(args.out.join("weights"))
        .with_context(|| format!("creating {}", args.out.display()))?;

    let cfg = TrainConfig::tutorial();
    let mut trainer = match &args.from {
        None => Trainer::new(cfg.clone(), args.seed),
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let (state, _) = decode_state(&bytes, AdamConfig::default())
                .with_context(|| format!("{} is not a training checkpoint", path.display()))?;
            state.check_fits(&cfg).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not a checkpoint of the tutorial's model: {e}",
                    path.display()
                )
            })?;
            Trainer::restore(cfg.clone(), args.seed, state)
        }
    };
    if args.nudge {
        let mut gan = trainer.gan().clone();
        for p in gan
            .generator
            .params
            .iter_mut()
            .chain(&mut gan.discriminator.params)
        {
            if *p != 0.0 {
                *p = f32::from_bits(p.to_bits() ^ 1);
            }
        }
        let mut state = trainer.state();
        state.gan = gan;
        trainer = Trainer::restore(cfg.clone(), args.seed, state);
    }
    let mut batches = Batcher::new(train.len(), cfg.batch_size, stream(args.seed, Stream::Data))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("starting the training threads")?;
    if args.flush_denormals && !pool.broadcast(|_| gan_model::flush_denormals())[0] {
        bail!("--flush-denormals is only implemented on x86_64 and aarch64");
    }
    let weights_dir = args.out.join("weights");
    let mut write_error = None;
    let start = trainer.steps_done();
    let mut dump = |gan: &gan_model::Gan, step: u64| {
        let (every, done) = (args.weights_every as u64, step - start);
        if (every > 0 && done % every == 0) || args.weights_at.contains(&done) {
            let path = weights_dir.join(format!("{}-{step:06}.safetensors", args.label));
            if let Err(e) = std::fs::write(&path, encode_gan(gan)) {
                write_error.get_or_insert((path, e));
            }
        }
    };
    let started = std::time::Instant::now();
    let fast = args.engine == Engine::Fast;
    let rec = pool.install(|| {
        record(
            &mut trainer,
            args.steps,
            &mut |real| {
                let indices = batches.next_batch();
                train.images.gather_f32(indices, real);
                indices.to_vec()
            },
            &mut |t| {
                if fast {
                    dump(t.gan(), t.steps_done())
                }
            },
        )
    })?;
    let stats = match args.engine {
        Engine::Fast => rec.stats.clone(),
        Engine::Dfdx => replay_reference(
            &rec,
            &cfg,
            &mut |indices, real| train.images.gather_f32(indices, real),
            &mut |state| dump(&state.gan, state.steps_done),
        ),
    };
    if let Some((path, e)) = write_error {
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    let seconds = started.elapsed().as_secs_f64();
    let trace = args.out.join(format!("{}.csv", args.label));
    write_trace(&trace, rec.init.steps_done, &stats)?;
    let digest = rec.input_digest();
    if !args.no_export {
        let path = args.out.join("export.safetensors");
        let meta = HashMap::from([
            ("seed".to_string(), args.seed.to_string()),
            ("steps".to_string(), args.steps.to_string()),
            ("batch_size".to_string(), cfg.batch_size.to_string()),
            ("noise_dim".to_string(), cfg.model.noise_dim.to_string()),
            ("input_digest".to_string(), digest.clone()),
            ("data".to_string(), data.display().to_string()),
        ]);
        write_export(&path, &rec, train.images.as_bytes(), cfg, meta)?;
        println!("wrote {}", path.display());
    }
    println!(
        "wrote {} ({} steps in {seconds:.1} s; inputs {digest})",
        trace.display(),
        stats.len()
    );
    Ok(())
}

/// `step,d_loss,g_loss,d_real,d_fake`, floats in their shortest exact form.
fn write_trace(path: &Path, steps_before: u64, stats: &[StepStats]) -> anyhow::Result<()> {
    let mut out = String::from("step,d_loss,g_loss,d_real,d_fake\n");
    let first = steps_before + 1;
    for (i, s) in stats.iter().enumerate() {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            first + i as u64,
            s.d_loss,
            s.g_loss,
            s.d_real,
            s.d_fake
        ));
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(out.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

/// The replay's inputs as one safetensors file (numpy reads it with `safetensors.numpy`).
fn write_export(
    path: &Path,
    rec: &Recording,
    images: &[u8],
    cfg: TrainConfig,
    meta: HashMap<String, String>,
) -> anyhow::Result<()> {
    let steps = rec.stats.len();
    let (b, z) = (cfg.batch_size, cfg.model.noise_dim);
    let state = encode_state(&rec.init, &Default::default());
    let weights = safetensors::SafeTensors::deserialize(&state)
        .map(|st| {
            st.tensors()
                .into_iter()
                .map(|(name, t)| {
                    (
                        format!("init.{name}"),
                        t.shape().to_vec(),
                        t.data().to_vec(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .context("re-reading the initial state")?;
    let mut meta = meta;
    for (key, value) in gan_model::checkpoint::read_metadata(&state)? {
        meta.insert(format!("init.{key}"), value);
    }
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = weights
        .into_iter()
        .map(|(name, shape, bytes)| (name, Dtype::F32, shape, bytes))
        .collect();
    tensors.push((
        "indices".into(),
        Dtype::U32,
        vec![steps, b],
        le_bytes(&rec.indices, u32::to_le_bytes),
    ));
    tensors.push((
        "noise".into(),
        Dtype::F32,
        vec![steps, b, z],
        le_bytes(&rec.noise, f32::to_le_bytes),
    ));
    tensors.push((
        "train_images".into(),
        Dtype::U8,
        vec![
            images.len() / gan_model::IMAGE_PIXELS,
            gan_model::IMAGE_PIXELS,
        ],
        images.to_vec(),
    ));
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .with_context(|| format!("tensor {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = safetensors::tensor::serialize(views, &Some(meta)).context("serialising")?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
