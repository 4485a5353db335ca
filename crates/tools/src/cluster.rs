//! `gan slurm` and `gan k8s`: a sweep fanned out over a cluster scheduler,
//! one array task (or indexed pod) per shard, all writing into one sweep folder.

use std::path::PathBuf;

use anyhow::{bail, Context};

/// What both schedulers' jobs are made of: the sweep, its shards and their CPUs.
#[derive(clap::Args)]
pub struct Sweep {
    /// A spec with a `sweep:` section
    spec: PathBuf,
    /// Shards (array tasks / pods) [default: one per grid point]
    #[arg(long)]
    shards: Option<usize>,
    /// CPUs per task (the runner's --threads), at least 1
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    cpus: u64,
    /// The sweep folder every shard writes into [default: runs/<name>]
    #[arg(long)]
    run_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    sweep: Sweep,
    /// Wall-time limit per task (#SBATCH --time)
    #[arg(long, default_value = "02:00:00")]
    time: String,
    /// Partition (#SBATCH --partition; omitted when not given)
    #[arg(long)]
    partition: Option<String>,
}

#[derive(clap::Args)]
pub struct K8sArgs {
    #[command(flatten)]
    sweep: Sweep,
    /// Container image holding `runner` and this repository's experiments/
    #[arg(long, default_value = "registry.example.org/mnist-gan:latest")]
    image: String,
    /// PersistentVolumeClaim mounted at /work/runs for the results
    #[arg(long, default_value = "mnist-gan-runs")]
    pvc: String,
}

struct Plan {
    name: String,
    points: usize,
    shards: usize,
    spec: String,
    run_dir: String,
}

/// `value` for a POSIX shell: as it is when it holds only characters no shell treats
/// specially, otherwise in single quotes (a `'` inside written `'\''`).
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// Refuses control characters (a newline, a tab) in what goes into a script: they would
/// start a line of their own in it.
fn no_control<'a>(what: &str, value: &'a str) -> anyhow::Result<&'a str> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => bail!("{what} {value:?} holds the control character {c:?}; give it without"),
        None => Ok(value),
    }
}

/// A Kubernetes object name (RFC 1123 label: lowercase letters, digits and `-`, starting
/// and ending with a letter or digit, at most 63) for the sweep `name`: `<name>-sweep` when
/// that is one; otherwise the name's letters and digits in lower case, with 8 hex digits of
/// the SHA-256 of the name itself, so that names which differ only in what was dropped get
/// different Jobs. The same name always gives the same Job.
fn k8s_job_name(name: &str) -> String {
    const MAX: usize = 63;
    let plain = format!("{name}-sweep");
    let valid = |s: &str| {
        s.len() <= MAX
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
    };
    if valid(&plain) {
        return plain;
    }
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let hash = &gan_rundir::sha256_hex(name.as_bytes())[..8];
    let tail = format!("sweep-{hash}");
    slug.truncate(MAX - tail.len() - 1);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        tail
    } else {
        format!("{slug}-{tail}")
    }
}

/// The sweep's plan; `values` are the scheduler's own flags, refused with a control
/// character in them.
fn plan(args: &Sweep, values: &[(&str, Option<&String>)]) -> anyhow::Result<Plan> {
    let spec = gan_spec::load_spec(&args.spec, &[])?;
    let points = gan_spec::expand_sweep(&spec, &args.spec.display().to_string())?;
    if points.is_empty() {
        bail!(
            "{} has no `sweep:` section: there is nothing to fan out",
            args.spec.display()
        );
    }
    let shards = args.shards.unwrap_or(points.len());
    if shards == 0 || shards > points.len() {
        bail!(
            "--shards must be between 1 and the {} grid points",
            points.len()
        );
    }
    let run_dir = args
        .run_dir
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("runs/{}", spec.name));
    let spec_path = args.spec.display().to_string();
    no_control("--run-dir", &run_dir)?;
    no_control("the spec path", &spec_path)?;
    no_control("the sweep's name", &spec.name)?;
    for (what, value) in values {
        if let Some(v) = value {
            no_control(what, v)?;
        }
    }
    Ok(Plan {
        run_dir,
        name: spec.name,
        points: points.len(),
        shards,
        spec: spec_path,
    })
}

pub fn slurm(args: SlurmArgs) -> anyhow::Result<()> {
    let values = [
        ("--time", Some(&args.time)),
        ("--partition", args.partition.as_ref()),
    ];
    let p = plan(&args.sweep, &values).context("planning the Slurm job")?;
    // `#SBATCH` lines are read by sbatch, not a shell: their values may hold no spaces.
    let sbatch_value = |what: &str, v: &str| -> anyhow::Result<String> {
        if v.is_empty() || v.chars().any(char::is_whitespace) {
            bail!("{what} {v:?}: an #SBATCH value cannot be empty or hold spaces");
        }
        Ok(v.to_string())
    };
    let time = sbatch_value("--time", &args.time)?;
    let partition = match &args.partition {
        Some(q) => format!("#SBATCH --partition={}\n", sbatch_value("--partition", q)?),
        None => String::new(),
    };
    // The job's name and log file: the sweep's name without what sbatch or a file name
    // could not take.
    let job: String = p
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    print!(
        r#"#!/usr/bin/env bash
# Sweep `{name}` ({points} grid points) as a Slurm job array of {shards} tasks.
# Submit from the repository root:   sbatch this-script.sh
# Each task runs one disjoint shard; all write into {run_dir}. A pre-empted or requeued
# task resumes its points from their checkpoints; a finished point is skipped.
# Afterwards: gan compare {run_dir}
#SBATCH --job-name={job}
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --requeue
#SBATCH --output=slurm-{job}-%A_%a.out
{partition}set -euo pipefail
srun runner {spec} --run-dir {run_dir} --shard "${{SLURM_ARRAY_TASK_ID}}/{shards}" --threads "${{SLURM_CPUS_PER_TASK:-{cpus}}}" --quiet
"#,
        name = p.name,
        points = p.points,
        shards = p.shards,
        last = p.shards - 1,
        run_dir = shell_quote(&p.run_dir),
        cpus = args.sweep.cpus,
        spec = shell_quote(&p.spec),
    );
    Ok(())
}

pub fn k8s(args: K8sArgs) -> anyhow::Result<()> {
    let values = [("--image", Some(&args.image)), ("--pvc", Some(&args.pvc))];
    let p = plan(&args.sweep, &values).context("planning the Kubernetes job")?;
    let job = k8s_job_name(&p.name);
    // The container's shell command, its values quoted for the shell, the whole line (and
    // every other value) quoted for YAML: a JSON string is a YAML double-quoted scalar.
    let command = format!(
        "runner {} --run-dir {} --shard \"$JOB_COMPLETION_INDEX/{}\" --threads {} --quiet",
        shell_quote(&p.spec),
        shell_quote(&p.run_dir),
        p.shards,
        args.sweep.cpus
    );
    let yaml = |v: &str| serde_json::to_string(v).expect("a string serialises");
    print!(
        r#"# Sweep `{name}` ({points} grid points) as a Kubernetes Indexed Job of {shards} pods.
# Apply with:  kubectl apply -f this-file.yaml
# Each pod runs shard $JOB_COMPLETION_INDEX of {shards}; all write into {run_dir} on the
# volume {pvc}. A restarted pod resumes its points from their checkpoints.
apiVersion: batch/v1
kind: Job
metadata:
  name: {job}
spec:
  completionMode: Indexed
  completions: {shards}
  parallelism: {shards}
  backoffLimit: {backoff}
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: runner
          image: {image}
          workingDir: /work
          command: ["sh", "-c"]
          args:
            - {command}
          resources:
            requests:
              cpu: "{cpus}"
              memory: 1Gi
            limits:
              cpu: "{cpus}"
              memory: 2Gi
          volumeMounts:
            - name: runs
              mountPath: /work/runs
      volumes:
        - name: runs
          persistentVolumeClaim:
            claimName: {pvc}
"#,
        name = p.name,
        points = p.points,
        shards = p.shards,
        backoff = 3 * p.shards,
        run_dir = p.run_dir,
        pvc = yaml(&args.pvc),
        image = yaml(&args.image),
        command = yaml(&command),
        cpus = args.sweep.cpus,
        job = job,
    );
    Ok(())
}
