//! `cargo xtask bench`: times the training step on real MNIST with an optimised build, and
//! with `--against`, alternately with the same model in other frameworks (the peers), because
//! these machines drift by 10-20% within minutes and only figures from one sitting compare.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// Training steps to time (the first 20 are warm-up and not counted)
    #[arg(long, default_value_t = 620)]
    steps: usize,
    /// Threads of the training step
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Folder with MNIST [default: <workspace>/data/mnist]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Time this spec's step (its model, loss, D steps and batch size) instead of the
    /// tutorial's, e.g. experiments/improved.yaml
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Start from this checkpoint of a run (same spec) instead of fresh weights, e.g.
    /// runs/<run>/checkpoints/step-....safetensors: late epochs cost more than fresh ones
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Keep denormal floats on the step's threads, as `train.flush_denormals: false` does;
    /// without it the spec's setting holds (flushed to zero by default, as TensorFlow does)
    #[arg(long)]
    keep_denormals: bool,
    /// Time the DCGAN of PyTorch's example at MNIST's size (as `tools/peers/peer.sh dcgan`
    /// trains it) instead of a spec's MLP
    #[arg(long, conflicts_with_all = ["spec", "checkpoint", "phases"])]
    dcgan: bool,
    /// Also print where the step's time goes, phase by phase (builds the step with timers, so
    /// its total is a little above the plain figure)
    #[arg(long)]
    phases: bool,
    /// Also measure the machine's multiply-add ceiling (an FMA loop on 1 and on --threads
    /// threads) and the least time the step's products could take at it, and time each of
    /// the step's products as one gemm call on one thread (MLP models: their sum over
    /// --threads is the least the step could take at gemm's rates), or each layer pass
    /// alone on one thread and on --threads with its FLOPs and GFLOP/s (DCGANs, e.g. --spec
    /// experiments/dcgan.yaml)
    #[arg(long)]
    ceiling: bool,
    /// Time a peer after each of our rounds, alternating, and print both medians and the
    /// ratio: jax, torch, tf (the tutorial's model, by ../shared/bench/peers.sh),
    /// torch-improved, torch-dcgan (tools/peers/peer.sh, on ../shared/mnist); repeat or
    /// comma-separate for several
    #[arg(long, value_enum, value_delimiter = ',')]
    against: Vec<Peer>,
    /// Rounds of the alternation with --against
    #[arg(long, default_value_t = 3, requires = "against")]
    rounds: usize,
    /// The tutorial's peers' script [default: <workspace>/../shared/bench/peers.sh]
    #[arg(long, requires = "against")]
    peers_script: Option<PathBuf>,
}

/// A framework's version of one of the step's models, timed by a script that prints
/// `<peer> threads=<T> train_step_ms=<median>` as `../shared/bench/peers.sh` does.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Peer {
    /// The tutorial's model in JAX.
    Jax,
    /// The tutorial's model in PyTorch.
    Torch,
    /// The tutorial's own TensorFlow program.
    Tf,
    /// experiments/improved.yaml's model in PyTorch.
    TorchImproved,
    /// The DCGAN of `--dcgan` in PyTorch.
    TorchDcgan,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Jax => "jax",
            Peer::Torch => "torch",
            Peer::Tf => "tf",
            Peer::TorchImproved => "torch-improved",
            Peer::TorchDcgan => "torch-dcgan",
        }
    }

    /// The script that times the peer (the tutorial's peers' one or this workspace's
    /// `tools/peers/peer.sh`) and its arguments before `--steps`.
    fn invocation<'a>(
        self,
        peers_script: &'a Path,
        own_script: &'a Path,
    ) -> (&'a Path, &'static [&'static str]) {
        match self {
            Peer::Jax => (peers_script, &["--only", "jax"]),
            Peer::Torch => (peers_script, &["--only", "torch"]),
            Peer::Tf => (peers_script, &["--only", "tf"]),
            Peer::TorchImproved => (own_script, &["improved"]),
            Peer::TorchDcgan => (own_script, &["dcgan"]),
        }
    }

    /// Whether the peer trains the kind of model this bench times (a DCGAN or an MLP); which
    /// MLP (the tutorial's, or `improved.yaml`'s by `--spec`) is the caller's pairing.
    fn matches(self, dcgan: bool) -> bool {
        matches!(self, Peer::TorchDcgan) == dcgan
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = crate::mnist_dir(args.data.clone());
    if gan_data::MnistFile::TrainImages.locate(&data).is_err() {
        bail!(
            "no MNIST in {}; run `cargo xtask fetch-mnist` first (or pass --data)",
            data.display()
        );
    }
    if args.against.is_empty() {
        let status = ours(&args, &data)?.status().context("running cargo")?;
        if !status.success() {
            bail!("the benchmark failed ({status})");
        }
        return Ok(());
    }
    alternate(&args, &data)
}

/// `cargo run` of the `bench_step` example with this bench's options.
fn ours(args: &Args, data: &Path) -> anyhow::Result<Command> {
    let spec = path_flag("--spec", args.spec.clone())?;
    let checkpoint = path_flag("--checkpoint", args.checkpoint.clone())?;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(crate::project_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "runner",
            "--example",
            "bench_step",
        ])
        .args(
            args.phases
                .then_some(["--features", "phases"])
                .into_iter()
                .flatten(),
        )
        .arg("--")
        .arg("--steps")
        .arg(args.steps.to_string())
        .arg("--threads")
        .arg(args.threads.to_string())
        .arg("--data")
        .arg(data)
        .args(spec)
        .args(checkpoint)
        .args(args.keep_denormals.then_some("--keep-denormals"))
        .args(args.dcgan.then_some("--dcgan"))
        .args(args.phases.then_some("--phases"))
        .args(args.ceiling.then_some("--ceiling"));
    Ok(command)
}

/// `--against`: our bench and each peer in turn, `--rounds` times, then the medians.
fn alternate(args: &Args, data: &Path) -> anyhow::Result<()> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    for &peer in &args.against {
        if !peer.matches(args.dcgan) {
            bail!(
                "--against {} trains {}, not the model this bench times{}",
                peer.name(),
                if peer == Peer::TorchDcgan {
                    "the DCGAN of --dcgan"
                } else {
                    "an MLP"
                },
                if args.dcgan {
                    " (--dcgan goes with torch-dcgan)"
                } else {
                    " (torch-dcgan goes with --dcgan)"
                }
            );
        }
    }
    let root = crate::project_root();
    let peers_script = args
        .peers_script
        .clone()
        .unwrap_or_else(|| root.join("../shared/bench/peers.sh"));
    let own_script = root.join("tools/peers/peer.sh");
    for &peer in &args.against {
        let (script, _) = peer.invocation(&peers_script, &own_script);
        if !script.is_file() {
            bail!(
                "--against {} needs {}, which is not there{}",
                peer.name(),
                script.display(),
                if script == peers_script {
                    " (pass --peers-script)"
                } else {
                    ""
                }
            );
        }
    }
    let mut ours_ms = Vec::new();
    let mut peers_ms: Vec<Vec<f64>> = vec![Vec::new(); args.against.len()];
    for round in 1..=args.rounds {
        let ms = timed(&mut ours(args, data)?, "our bench", "train_step_ms:")?;
        println!("round {round}/{}: ours {ms:.3} ms", args.rounds);
        ours_ms.push(ms);
        for (i, &peer) in args.against.iter().enumerate() {
            let (script, script_args) = peer.invocation(&peers_script, &own_script);
            let mut command = Command::new(script);
            command
                .args(script_args)
                .arg("--steps")
                .arg(args.steps.to_string())
                .arg("--threads")
                .arg(args.threads.to_string());
            let ms = timed(&mut command, peer.name(), "train_step_ms=")?;
            println!("round {round}/{}: {} {ms:.3} ms", args.rounds, peer.name());
            peers_ms[i].push(ms);
        }
    }
    let ours = median(&ours_ms);
    println!(
        "median of {} alternated rounds, {} threads, {} steps: ours {ours:.3} ms",
        args.rounds, args.threads, args.steps
    );
    for (&peer, ms) in args.against.iter().zip(&peers_ms) {
        let theirs = median(ms);
        let wins = ours_ms.iter().zip(ms).filter(|(o, t)| o < t).count();
        println!(
            "  {}: {theirs:.3} ms; ours/{} = {:.2} (ours faster in {wins} of {} rounds)",
            peer.name(),
            peer.name(),
            ours / theirs,
            args.rounds
        );
    }
    Ok(())
}

/// Runs a timing command, echoes its output, and reads the number after `key` on its last
/// line that has one.
fn timed(command: &mut Command, what: &str, key: &str) -> anyhow::Result<f64> {
    let program = command.get_program().to_string_lossy().into_owned();
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .with_context(|| format!("running {what} ({program})"))?;
    let stdout = String::from_utf8_lossy(&stdout);
    if !status.success() {
        bail!(
            "{what} failed ({status}): {program}\n{}{}",
            stdout,
            String::from_utf8_lossy(&stderr)
        );
    }
    for line in stdout.lines().filter(|l| !l.contains(key)) {
        println!("  {line}");
    }
    last_figure(&stdout, key)
        .with_context(|| format!("{what} printed no `{key}<ms>` line: {program}\n{stdout}"))
}

/// The number right after `key` on the last line of `text` that has one.
fn last_figure(text: &str, key: &str) -> Option<f64> {
    text.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once(key)?;
        rest.split_whitespace().next()?.parse::<f64>().ok()
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `[flag, absolute path]` for the benchmark's command line, or nothing: cargo runs the
/// example from the workspace root, so a relative path is made the caller's.
fn path_flag(flag: &str, path: Option<PathBuf>) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let absolute = std::path::absolute(&path).with_context(|| format!("{}", path.display()))?;
    Ok(vec![flag.into(), absolute.into_os_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_from_both_kinds_of_timing_line() {
        let ours = "steps: 620 (median of 600 after 20 warm-up)\ntrain_step_ms: 1.138\n";
        assert_eq!(last_figure(ours, "train_step_ms:"), Some(1.138));
        let peer = "jax threads=2 train_step_ms=1.37\n";
        assert_eq!(last_figure(peer, "train_step_ms="), Some(1.37));
        assert_eq!(last_figure("train_step_ms=nan?\n", "train_step_ms="), None);
        assert_eq!(last_figure("no figure here\n", "train_step_ms:"), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn tutorial_peers_run_from_the_peers_script_and_ours_from_peer_sh() {
        let (peers, own) = (Path::new("peers.sh"), Path::new("peer.sh"));
        for peer in [Peer::Jax, Peer::Torch, Peer::Tf] {
            assert_eq!(
                peer.invocation(peers, own),
                (peers, &["--only", peer.name()][..])
            );
        }
        assert_eq!(
            Peer::TorchImproved.invocation(peers, own),
            (own, &["improved"][..])
        );
        assert_eq!(
            Peer::TorchDcgan.invocation(peers, own),
            (own, &["dcgan"][..])
        );
    }

    #[test]
    fn only_the_dcgan_peer_goes_with_the_dcgan_bench() {
        assert!(Peer::TorchDcgan.matches(true) && !Peer::TorchDcgan.matches(false));
        for peer in [Peer::Jax, Peer::Torch, Peer::Tf, Peer::TorchImproved] {
            assert!(peer.matches(false) && !peer.matches(true));
        }
    }
}
