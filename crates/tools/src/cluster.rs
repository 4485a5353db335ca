//! `gan slurm` and `gan k8s`: a sweep fanned out over a cluster scheduler,
//! one array task (or indexed pod) per shard, all writing into one sweep folder.

use std::path::PathBuf;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// A spec with a `sweep:` section
    spec: PathBuf,
    /// Shards (array tasks / pods) [default: one per grid point]
    #[arg(long)]
    shards: Option<usize>,
    /// CPUs per task (the runner's --threads)
    #[arg(long, default_value_t = 2)]
    cpus: usize,
    /// The sweep folder every shard writes into [default: runs/<name>]
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Slurm: wall-time limit per task
    #[arg(long, default_value = "02:00:00")]
    time: String,
    /// Slurm: partition (omitted when not given)
    #[arg(long)]
    partition: Option<String>,
    /// Kubernetes: container image holding `runner` and this repository's experiments/
    #[arg(long, default_value = "registry.example.org/mnist-gan:latest")]
    image: String,
    /// Kubernetes: PersistentVolumeClaim mounted at /work/runs for the results
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

fn plan(args: &Args) -> anyhow::Result<Plan> {
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
    Ok(Plan {
        run_dir: args
            .run_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("runs/{}", spec.name)),
        name: spec.name,
        points: points.len(),
        shards,
        spec: args.spec.display().to_string(),
    })
}

pub fn slurm(args: Args) -> anyhow::Result<()> {
    let p = plan(&args).context("planning the Slurm job")?;
    let partition = args
        .partition
        .as_ref()
        .map(|q| format!("#SBATCH --partition={q}\n"))
        .unwrap_or_default();
    print!(
        r#"#!/usr/bin/env bash
# Sweep `{name}` ({points} grid points) as a Slurm job array of {shards} tasks.
# Submit from the repository root:   sbatch this-script.sh
# Each task runs one disjoint shard; all write into {run_dir}. A pre-empted or requeued
# task resumes its points from their checkpoints; a finished point is skipped.
# Afterwards: gan compare {run_dir}
#SBATCH --job-name={name}
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --requeue
#SBATCH --output=slurm-{name}-%A_%a.out
{partition}set -euo pipefail
srun runner {spec} --run-dir {run_dir} --shard "${{SLURM_ARRAY_TASK_ID}}/{shards}" --threads "${{SLURM_CPUS_PER_TASK:-{cpus}}}" --quiet
"#,
        name = p.name,
        points = p.points,
        shards = p.shards,
        last = p.shards - 1,
        run_dir = p.run_dir,
        cpus = args.cpus,
        time = args.time,
        spec = p.spec,
    );
    Ok(())
}

pub fn k8s(args: Args) -> anyhow::Result<()> {
    let p = plan(&args).context("planning the Kubernetes job")?;
    let job = format!("{}-sweep", p.name.to_lowercase().replace(['_', '.'], "-"));
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
            - runner {spec} --run-dir {run_dir} --shard "$JOB_COMPLETION_INDEX/{shards}" --threads {cpus} --quiet
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
        pvc = args.pvc,
        image = args.image,
        spec = p.spec,
        cpus = args.cpus,
        job = job,
    );
    Ok(())
}
