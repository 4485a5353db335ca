//! One run from its start or a checkpoint to its end: the training loop, checkpoints, sample
//! pictures, the final weights, evaluation, the loss plot, and `run.json` at every step.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use gan_data::Batcher;
use gan_model::checkpoint::encode_model;
use gan_model::train::input::{generator_input, labels_to_ask, sample_noise};
use gan_model::{stream, AnyTrainer, Stream};
use gan_plot::SampleGrid;
use gan_rundir::{rfc3339, write_atomic, LossRow, LossWriter, RunDir, RunInfo, Status};
use gan_spec::Spec;
use gan_tensorboard::{unix_seconds, RunLog};

use crate::checkpoint::{self, Resume};
use crate::console::{self, epoch_line};
use crate::{run_config, TrainingData};

pub(crate) struct Session<'a> {
    pub spec: &'a Spec,
    pub train: &'a TrainingData,
    pub dir: &'a RunDir,
    pub info: RunInfo,
    /// Where to continue from; a fresh run when `None`.
    pub start: Option<Resume>,
    pub threads: usize,
    pub quiet: bool,
    /// Printed before console lines when several runs share the console.
    pub label: Option<String>,
    pub interrupt: &'a AtomicBool,
    pub on_step: Option<&'a crate::StepHook>,
}

/// Runs the session in its own thread pool and records how it ended in `run.json`.
pub(crate) fn execute(mut s: Session) -> anyhow::Result<Status> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(s.threads)
        .build()
        .context("starting the training threads")?;
    s.info.status = Status::Running;
    s.info.threads = s.threads;
    s.info.pid = std::process::id();
    s.info.ended_at = None;
    s.info.error = None;
    s.dir.write_info(&s.info)?;
    let result = pool.install(|| train(&mut s));
    s.info.ended_at = Some(rfc3339(SystemTime::now()));
    if let Err(e) = write_loss_plot(s.dir, &s.spec.name) {
        eprintln!(
            "warning: could not draw {}: {e:#}",
            s.dir.file(gan_rundir::LOSSES_PLOT).display()
        );
    }
    match result {
        Ok(status) => {
            s.info.status = status;
            s.dir.write_info(&s.info)?;
            Ok(status)
        }
        Err(e) => {
            s.info.status = Status::Failed;
            s.info.error = Some(format!("{e:#}"));
            // The run's own failure matters more than a failure to record it.
            let _ = s.dir.write_info(&s.info);
            Err(e)
        }
    }
}

/// The training loop; returns `Completed` or `Interrupted`.
fn train(s: &mut Session) -> anyhow::Result<Status> {
    let spec = s.spec;
    let cfg = run_config(spec, s.train);
    let train = &s.train.split;
    // This process's share of the run, and how much of it went into the training steps
    // themselves (the rest: loading, the CSV, pictures, checkpoints, TensorBoard, evaluation).
    let session_started = Instant::now();
    let mut step_seconds = 0.0;
    // Wall time already spent in the epoch a checkpoint was taken in.
    let mut carried = 0.0;
    let (mut trainer, mut batches, first_epoch, mut first_step, mut losses) = match s.start.take() {
        None => (
            AnyTrainer::new(cfg.clone(), spec.seed),
            Batcher::new(train.len(), cfg.batch_size, stream(spec.seed, Stream::Data))?,
            0,
            0,
            LossWriter::create(&s.dir.file(gan_rundir::LOSSES_FILE))?,
        ),
        Some(r) => {
            carried = r.partial_seconds;
            s.info.epoch_seconds = r.epoch_seconds.clone();
            s.info.epochs_done = r.epoch;
            s.info.steps_done = r.trainer.steps_done();
            let losses = LossWriter::resume(
                &s.dir.file(gan_rundir::LOSSES_FILE),
                r.trainer.steps_done() as usize,
            )?;
            (
                AnyTrainer::restore(cfg.clone(), spec.seed, r.trainer),
                Batcher::restore(
                    train.len(),
                    cfg.batch_size,
                    stream(spec.seed, Stream::Data),
                    r.batcher,
                )?,
                r.epoch,
                r.step_in_epoch,
                losses,
            )
        }
    };
    // An epoch is a pass over the training images; with several D updates per step each
    // takes its own batch, so a pass holds fewer steps.
    let steps_per_epoch = (batches.steps_per_epoch() / cfg.d_steps).max(1);
    // The TensorBoard log, rewritten from the run's files up to where training starts (so a
    // resumed run's log holds what an uninterrupted one's does, no step twice).
    let mut tb = RunLog::rebuild(s.dir, Some((trainer.steps_done(), first_epoch)))
        .context("writing the TensorBoard log")?;
    // The epoch in progress: its rows (those before a mid-epoch checkpoint are on disk and
    // already in the log) and how many of them the log holds.
    let mut epoch_rows: Vec<LossRow> = if first_step > 0 {
        let rows = s.dir.read_losses()?;
        rows.into_iter()
            .filter(|r| r.epoch == first_epoch)
            .collect()
    } else {
        Vec::new()
    };
    let mut logged = epoch_rows.len();
    let now = || unix_seconds(SystemTime::now());
    let fixed_noise = sample_noise(
        spec.samples.count,
        cfg.model.noise_dim,
        &mut stream(spec.seed, Stream::Samples),
    );
    // A conditional GAN's picture has a row per digit, the same noise down each column; a
    // self-conditioned GAN's asks for its clusters as sampling does, in proportion.
    let classes = cfg.model.classes;
    let by_digit = spec.model.conditional;
    let picture_input = if by_digit {
        let labels: Vec<u8> = (0..classes as u8)
            .flat_map(|c| std::iter::repeat_n(c, spec.samples.count))
            .collect();
        let noise = fixed_noise.repeat(classes);
        generator_input(&noise, &labels, classes)
    } else {
        let labels = labels_to_ask(spec.samples.count, classes, &cfg.model.label_counts);
        generator_input(&fixed_noise, &labels, classes)
    };
    let grid = SampleGrid {
        per_row: if by_digit {
            spec.samples.count
        } else {
            SampleGrid::default().per_row
        },
        ..SampleGrid::default()
    };
    let total = (spec.train.epochs as u64).saturating_mul(steps_per_epoch as u64);
    let bar = console::progress(total, s.quiet || s.label.is_some());
    bar.set_position(trainer.steps_done());
    let prefix = s
        .label
        .as_ref()
        .map(|l| format!("[{l}] "))
        .unwrap_or_default();

    let flushing = FlushDenormals::on_this_pool(spec.train.flush_denormals, &prefix);
    for epoch in first_epoch..spec.train.epochs {
        bar.set_message(format!("epoch {epoch:04}"));
        let started = Instant::now();
        let mut last = None;
        for step_in_epoch in first_step..steps_per_epoch {
            if s.interrupt.load(Ordering::SeqCst) {
                losses.flush()?;
                tb.steps(&epoch_rows[logged..], now());
                tb.flush()?;
                let point = checkpoint::Position {
                    epoch,
                    step_in_epoch,
                };
                let partial = started.elapsed().as_secs_f64() + carried;
                save_checkpoint(s, &trainer, &batches, point, partial, losses.sha256())?;
                bar.abandon();
                return Ok(Status::Interrupted);
            }
            let (images, labels) = (&train.images, &train.labels);
            let batches = &mut batches;
            let step_started = Instant::now();
            let stats = match trainer.step_with(&mut |real, real_labels| {
                let indices = batches.next_batch();
                images.gather_f32(indices, real);
                for (l, &i) in real_labels.iter_mut().zip(indices) {
                    *l = labels[i as usize];
                }
            }) {
                Ok(st) => st,
                Err(e) => {
                    losses.flush()?;
                    tb.steps(&epoch_rows[logged..], now());
                    tb.flush()?;
                    bar.abandon();
                    return Err(e.into());
                }
            };
            step_seconds += step_started.elapsed().as_secs_f64();
            let row = LossRow {
                epoch,
                step: trainer.steps_done(),
                d_loss: stats.d_loss,
                g_loss: stats.g_loss,
                d_real: stats.d_real,
                d_fake: stats.d_fake,
            };
            losses.write(&row)?;
            epoch_rows.push(row);
            last = Some(stats);
            bar.inc(1);
            if let Some(hook) = s.on_step {
                (hook.0)(trainer.steps_done());
            }
        }
        first_step = 0;
        // Order matters for exact resumption: everything an epoch produces is on disk before
        // the checkpoint that skips it.
        losses.flush()?;
        let mut picture = None;
        if spec.is_sample_epoch(epoch) {
            let images = trainer.sampling_generator().generate(&picture_input);
            let png = grid.encode_png(&images)?;
            write_atomic(&s.dir.sample_path(epoch), &png)?;
            picture = Some(png);
        }
        tb.steps(&epoch_rows[logged..], now());
        tb.epoch_end(&epoch_rows, picture.as_deref(), now());
        tb.flush()?;
        epoch_rows.clear();
        logged = 0;
        let seconds = started.elapsed().as_secs_f64() + std::mem::take(&mut carried);
        s.info.epoch_seconds.push(seconds);
        s.info.epochs_done = epoch + 1;
        s.info.steps_done = trainer.steps_done();
        let every = spec.checkpoint.every;
        if every > 0 && (epoch + 1) % every == 0 {
            let point = checkpoint::Position {
                epoch: epoch + 1,
                step_in_epoch: 0,
            };
            save_checkpoint(s, &trainer, &batches, point, 0.0, losses.sha256())?;
        }
        s.dir.write_info(&s.info)?;
        if let (Some(st), false) = (last, s.quiet) {
            bar.suspend(|| {
                println!(
                    "{prefix}{} ({seconds:.1} s)",
                    epoch_line(epoch, st.d_loss, st.g_loss)
                )
            });
        }
    }
    bar.finish_and_clear();
    drop(flushing);
    // The weights' hash is in run.json before anything (evaluation first) reads them.
    s.info.model_sha256 = Some(s.dir.write_model(&encode_model(&trainer.model_to_save()))?);
    s.dir.write_info(&s.info)?;
    if spec.eval.enabled {
        if s.interrupt.load(Ordering::SeqCst) {
            // Training is complete and its weights are saved; only the measurement is left.
            eprintln!(
                "{prefix}interrupted before evaluation: measure the run later with `gan eval {}`",
                s.dir.path().display()
            );
        } else {
            evaluate(spec, s.dir, s.quiet, &prefix)?;
        }
    }
    let last_step = trainer.steps_done();
    if let Ok(m) = s.dir.read_metrics() {
        tb.metrics(&m, last_step, now());
    }
    tb.end(true, last_step, now());
    tb.flush()?;
    if !s.quiet {
        println!(
            "{prefix}Optimization complete: {} ({} epochs, {:.1} s; this process {:.1} s, of \
             which {step_seconds:.1} s in training steps)",
            s.dir.path().display(),
            s.info.epochs_done,
            s.info.wall_seconds(),
            session_started.elapsed().as_secs_f64()
        );
    }
    Ok(Status::Completed)
}

/// Flushes denormals to zero on every thread of the current pool while it lives
/// (`train.flush_denormals`): training steps and the pictures between them run flushed, as in
/// TensorFlow; the evaluation after them does not, so it scores a model as `gan eval` does.
struct FlushDenormals(bool);

impl FlushDenormals {
    fn on_this_pool(wanted: bool, prefix: &str) -> Self {
        if !wanted {
            return FlushDenormals(false);
        }
        if !rayon::broadcast(|_| gan_model::set_flush_denormals(true))
            .into_iter()
            .all(|done| done)
        {
            eprintln!(
                "{prefix}warning: train.flush_denormals is not implemented on this CPU \
                 architecture (only x86_64 and aarch64): denormals are kept, so results may \
                 differ in their last bits from a flushed run; set it to false to silence this"
            );
        }
        FlushDenormals(true)
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        if self.0 {
            rayon::broadcast(|_| gan_model::set_flush_denormals(false));
        }
    }
}

/// Writes a checkpoint at `at`; the caller then writes `run.json` (at an epoch's end right
/// away, on Ctrl-C with the `interrupted` status).
fn save_checkpoint(
    s: &mut Session,
    trainer: &AnyTrainer,
    batches: &Batcher,
    at: checkpoint::Position,
    partial_seconds: f64,
    losses_sha256: String,
) -> anyhow::Result<()> {
    let bytes = checkpoint::encode(
        trainer,
        batches,
        at,
        &s.info.epoch_seconds,
        partial_seconds,
        losses_sha256,
    );
    s.dir
        .write_checkpoint(trainer.steps_done(), &bytes, s.spec.checkpoint.keep)
        .context("writing a checkpoint")?;
    s.info.steps_done = trainer.steps_done();
    Ok(())
}

/// The `eval:` section: metrics of the final generator into `metrics.json`.
fn evaluate(spec: &Spec, dir: &RunDir, quiet: bool, prefix: &str) -> anyhow::Result<()> {
    let data = Path::new(&spec.data.dir);
    let mut log = |s: &str| {
        if !quiet {
            eprintln!("{prefix}{s}")
        }
    };
    let classifier = gan_eval::ensure_classifier(data, &mut log)
        .context("evaluation: preparing the MNIST classifier")?;
    let eval_data = gan_eval::EvalData::load(data, &classifier)
        .context("evaluation: loading the test images")?;
    let m = gan_eval::evaluate_run(
        dir,
        &eval_data,
        &classifier,
        spec.eval.samples,
        spec.eval.seed,
    )
    .context("evaluation")?;
    if !quiet {
        let p = m.generated.parzen.as_ref();
        println!(
            "{prefix}Metrics ({} samples, {:.1} s): Parzen {} nats, FID {:.2}, IS {:.2}, coverage {}/10, precision {:.3}, recall {:.3}{}",
            m.samples,
            m.seconds,
            p.map(|p| format!("{:.1} +- {:.1}", p.mean_ll, p.std_err)).unwrap_or_else(|| "-".into()),
            m.generated.fid,
            m.generated.inception_score,
            m.generated.coverage.classes_over_5pct,
            m.generated.precision,
            m.generated.recall,
            m.generated
                .label_accuracy
                .map(|a| format!(", label accuracy {:.1}%", 100.0 * a))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `losses.png`: the run's per-epoch loss curves, drawn however the run ended.
fn write_loss_plot(dir: &RunDir, name: &str) -> anyhow::Result<()> {
    let rows = dir.read_losses()?;
    if rows.is_empty() {
        return Ok(());
    }
    let curve = gan_plot::Curve::from_losses(name, &rows);
    // Nothing run-specific beyond the spec's name, so identical runs draw identical pictures.
    let png = gan_plot::loss_panels(&[curve], &format!("{name}: per-epoch means of losses.csv"))?;
    write_atomic(&dir.file(gan_rundir::LOSSES_PLOT), &png)?;
    Ok(())
}
