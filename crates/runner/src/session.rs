//! One run from its start or a checkpoint to its end: the training loop, checkpoints, sample
//! pictures, the final weights, evaluation, the loss plot, and `run.json` at every step.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use gan_data::Batcher;
use gan_model::checkpoint::encode_model;
use gan_model::train::input::{generator_input, labels_to_ask, sample_noise};
use gan_model::{stream, AnyTrainer, StepStats, Stream, TrainConfig};
use gan_plot::SampleGrid;
use gan_rundir::{rfc3339, write_atomic, LossRow, LossWriter, RunDir, RunInfo, Status};
use gan_spec::Spec;
use gan_tensorboard::{unix_seconds, RunLog};
use indicatif::ProgressBar;

use crate::checkpoint::{self, Resume};
use crate::config::run_config;
use crate::console::{self, epoch_line};
use crate::data::TrainingData;
use crate::options::Execution;

pub(crate) struct Session<'a> {
    pub spec: &'a Spec,
    pub train: &'a TrainingData,
    pub dir: &'a RunDir,
    pub info: RunInfo,
    /// Where to continue from; a fresh run when `None`.
    pub start: Option<Resume>,
    pub exec: Execution<'a>,
}

/// Runs the session in its own thread pool and records how it ended in `run.json`.
pub(crate) fn execute(mut s: Session) -> anyhow::Result<Status> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(s.exec.threads)
        .build()
        .context("starting the training threads")?;
    s.info.status = Status::Running;
    s.info.threads = s.exec.threads;
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
    // This process's share of the run, and how much of it went into the training steps
    // themselves (the rest: loading, the CSV, pictures, checkpoints, TensorBoard, evaluation).
    let session_started = Instant::now();
    let mut t = Training::begin(s)?;
    let flushing = FlushDenormals::on_this_pool(s.spec.train.flush_denormals, &t.prefix);
    for epoch in t.first_epoch..s.spec.train.epochs {
        t.bar.set_message(format!("epoch {epoch:04}"));
        let started = Instant::now();
        let EpochEnd::Done(last) = t.steps_of_epoch(s, epoch, started)? else {
            return Ok(Status::Interrupted);
        };
        t.end_epoch(s, epoch, started, last)?;
    }
    t.bar.finish_and_clear();
    drop(flushing);
    t.finish(s, session_started)
}

/// How an epoch's steps ended.
enum EpochEnd {
    /// Every step ran; the last one's figures (none if there was none to run).
    Done(Option<StepStats>),
    /// Ctrl-C: a checkpoint was saved at the step it stopped at.
    Interrupted,
}

/// A session's training under way: the trainer and data order, the rows written of the
/// epoch in progress, the logs and what every epoch draws.
struct Training {
    trainer: AnyTrainer,
    batches: Batcher,
    first_epoch: usize,
    /// The step of the first epoch training starts at (a mid-epoch checkpoint's; 0 after).
    first_step: usize,
    /// An epoch is a pass over the training images; with several D updates per step each
    /// takes its own batch, so a pass holds fewer steps.
    steps_per_epoch: usize,
    losses: LossWriter,
    /// The TensorBoard log, rewritten from the run's files up to where training starts (so
    /// a resumed run's log holds what an uninterrupted one's does, no step twice).
    tb: RunLog,
    /// The epoch in progress: its rows (those before a mid-epoch checkpoint are on disk and
    /// already in the log) and how many of them the log holds.
    epoch_rows: Vec<LossRow>,
    logged: usize,
    /// Wall time already spent in the epoch a checkpoint was taken in.
    carried: f64,
    /// Time inside the training steps.
    step_seconds: f64,
    picture: Picture,
    bar: ProgressBar,
    /// Printed before console lines (a sweep job's label).
    prefix: String,
}

impl Training {
    /// A fresh run's trainer, or the one `s.start` restores, with its logs up to there.
    fn begin(s: &mut Session) -> anyhow::Result<Training> {
        let spec = s.spec;
        let cfg = run_config(spec, s.train);
        let train = &s.train.split;
        let mut carried = 0.0;
        let (trainer, batches, first_epoch, first_step, losses) = match s.start.take() {
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
        let steps_per_epoch = (batches.steps_per_epoch() / cfg.d_steps).max(1);
        let tb = RunLog::rebuild(s.dir, Some((trainer.steps_done(), first_epoch)))
            .context("writing the TensorBoard log")?;
        let epoch_rows: Vec<LossRow> = if first_step > 0 {
            let rows = s.dir.read_losses()?;
            rows.into_iter()
                .filter(|r| r.epoch == first_epoch)
                .collect()
        } else {
            Vec::new()
        };
        let total = (spec.train.epochs as u64).saturating_mul(steps_per_epoch as u64);
        let bar = console::progress(total, s.exec.quiet || s.exec.label.is_some());
        bar.set_position(trainer.steps_done());
        let prefix = s
            .exec
            .label
            .as_ref()
            .map(|l| format!("[{l}] "))
            .unwrap_or_default();
        Ok(Training {
            logged: epoch_rows.len(),
            picture: Picture::new(spec, &cfg),
            trainer,
            batches,
            first_epoch,
            first_step,
            steps_per_epoch,
            losses,
            tb,
            epoch_rows,
            carried,
            step_seconds: 0.0,
            bar,
            prefix,
        })
    }

    /// The steps of `epoch` (from `first_step` in the first), each row written to
    /// `losses.csv`; on Ctrl-C a checkpoint at the step it stopped at.
    fn steps_of_epoch(
        &mut self,
        s: &mut Session,
        epoch: usize,
        started: Instant,
    ) -> anyhow::Result<EpochEnd> {
        let train = &s.train.split;
        let mut last = None;
        for step_in_epoch in std::mem::take(&mut self.first_step)..self.steps_per_epoch {
            if s.exec.interrupt.load(Ordering::SeqCst) {
                self.log_rows_so_far()?;
                let point = checkpoint::Position {
                    epoch,
                    step_in_epoch,
                };
                let partial = started.elapsed().as_secs_f64() + self.carried;
                let losses_sha256 = self.losses.sha256();
                save_checkpoint(
                    s,
                    &self.trainer,
                    &self.batches,
                    point,
                    partial,
                    losses_sha256,
                )?;
                self.bar.abandon();
                return Ok(EpochEnd::Interrupted);
            }
            let (images, labels) = (&train.images, &train.labels);
            let batches = &mut self.batches;
            let step_started = Instant::now();
            let stats = match self.trainer.step_with(&mut |real, real_labels| {
                let indices = batches.next_batch();
                images.gather_f32(indices, real);
                for (l, &i) in real_labels.iter_mut().zip(indices) {
                    *l = labels[i as usize];
                }
            }) {
                Ok(st) => st,
                Err(e) => {
                    self.log_rows_so_far()?;
                    self.bar.abandon();
                    return Err(e.into());
                }
            };
            self.step_seconds += step_started.elapsed().as_secs_f64();
            let row = LossRow {
                epoch,
                step: self.trainer.steps_done(),
                d_loss: stats.d_loss,
                g_loss: stats.g_loss,
                d_real: stats.d_real,
                d_fake: stats.d_fake,
            };
            self.losses.write(&row)?;
            self.epoch_rows.push(row);
            last = Some(stats);
            self.bar.inc(1);
            if let Some(hook) = s.exec.on_step {
                (hook.0)(self.trainer.steps_done());
            }
        }
        Ok(EpochEnd::Done(last))
    }

    /// The rows written so far on disk and in the TensorBoard log (training stops here).
    fn log_rows_so_far(&mut self) -> anyhow::Result<()> {
        self.losses.flush()?;
        self.tb.steps(&self.epoch_rows[self.logged..], now());
        self.tb.flush()?;
        Ok(())
    }

    /// What an epoch writes after its steps, in the order exact resumption needs: everything
    /// it produces (rows, picture, log) is on disk before the checkpoint that skips it.
    fn end_epoch(
        &mut self,
        s: &mut Session,
        epoch: usize,
        started: Instant,
        last: Option<StepStats>,
    ) -> anyhow::Result<()> {
        let spec = s.spec;
        self.losses.flush()?;
        let mut picture = None;
        if spec.is_sample_epoch(epoch) {
            let png = self.picture.render(&self.trainer)?;
            write_atomic(&s.dir.sample_path(epoch), &png)?;
            picture = Some(png);
        }
        self.tb.steps(&self.epoch_rows[self.logged..], now());
        self.tb
            .epoch_end(&self.epoch_rows, picture.as_deref(), now());
        self.tb.flush()?;
        self.epoch_rows.clear();
        self.logged = 0;
        let seconds = started.elapsed().as_secs_f64() + std::mem::take(&mut self.carried);
        s.info.epoch_seconds.push(seconds);
        s.info.epochs_done = epoch + 1;
        s.info.steps_done = self.trainer.steps_done();
        let every = spec.checkpoint.every;
        if every > 0 && (epoch + 1).is_multiple_of(every) {
            let point = checkpoint::Position {
                epoch: epoch + 1,
                step_in_epoch: 0,
            };
            let losses_sha256 = self.losses.sha256();
            save_checkpoint(s, &self.trainer, &self.batches, point, 0.0, losses_sha256)?;
        }
        s.dir.write_info(&s.info)?;
        if let (Some(st), false) = (last, s.exec.quiet) {
            let prefix = &self.prefix;
            self.bar.suspend(|| {
                println!(
                    "{prefix}{} ({seconds:.1} s)",
                    epoch_line(epoch, st.d_loss, st.g_loss)
                )
            });
        }
        Ok(())
    }

    /// After the last epoch: the weights, the evaluation, the log's end.
    fn finish(mut self, s: &mut Session, session_started: Instant) -> anyhow::Result<Status> {
        let (spec, prefix) = (s.spec, &self.prefix);
        // The weights' hash is in run.json before anything (evaluation first) reads them.
        let weights = encode_model(&self.trainer.model_to_save());
        s.info.model_sha256 = Some(s.dir.write_model(&weights)?);
        s.dir.write_info(&s.info)?;
        if spec.eval.enabled {
            if s.exec.interrupt.load(Ordering::SeqCst) {
                // Training is complete and its weights are saved; only the measurement is left.
                eprintln!(
                    "{prefix}interrupted before evaluation: measure the run later with `gan eval {}`",
                    s.dir.path().display()
                );
            } else {
                evaluate(spec, s.dir, &s.exec, prefix)?;
            }
        }
        let last_step = self.trainer.steps_done();
        if let Ok(m) = s.dir.read_metrics() {
            self.tb.metrics(&m, last_step, now());
        }
        self.tb.end(true, last_step, now());
        self.tb.flush()?;
        if !s.exec.quiet {
            println!(
                "{prefix}Optimization complete: {} ({} epochs, {:.1} s; this process {:.1} s, of \
                 which {:.1} s in training steps)",
                s.dir.path().display(),
                s.info.epochs_done,
                s.info.wall_seconds(),
                session_started.elapsed().as_secs_f64(),
                self.step_seconds,
            );
        }
        Ok(Status::Completed)
    }
}

/// The TensorBoard log's clock.
fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// The sample picture a sampling epoch draws, always from the same noise (the seed's own
/// stream): a conditional GAN's has a row per digit, the same noise down each column; a
/// self-conditioned GAN's asks for its clusters as sampling does, in proportion.
pub(crate) struct Picture {
    input: Vec<f32>,
    grid: SampleGrid,
}

impl Picture {
    pub(crate) fn new(spec: &Spec, cfg: &TrainConfig) -> Picture {
        let fixed_noise = sample_noise(
            spec.samples.count,
            cfg.model.noise_dim,
            &mut stream(spec.seed, Stream::Samples),
        );
        let classes = cfg.model.classes;
        let by_digit = spec.model.conditional;
        let input = if by_digit {
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
        Picture { input, grid }
    }

    /// The picture of `trainer`'s sampling generator, as PNG bytes.
    pub(crate) fn render(&self, trainer: &AnyTrainer) -> anyhow::Result<Vec<u8>> {
        let images = trainer.sampling_generator().generate(&self.input);
        Ok(self.grid.encode_png(&images)?)
    }
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
fn evaluate(spec: &Spec, dir: &RunDir, exec: &Execution, prefix: &str) -> anyhow::Result<()> {
    let quiet = exec.quiet;
    let data = Path::new(&spec.data.dir);
    let mut log = |s: &str| {
        if !quiet {
            eprintln!("{prefix}{s}")
        }
    };
    let stop = || exec.interrupt.load(Ordering::SeqCst);
    let classifier = match gan_eval::ensure_classifier_unless(data, &mut log, &stop) {
        // Training is complete and its weights are saved; only the measurement is left.
        Err(gan_eval::EvalError::Interrupted) => {
            eprintln!(
                "{prefix}interrupted while training the classifier: measure the run later with \
                 `gan eval {}`",
                dir.path().display()
            );
            return Ok(());
        }
        other => other.context("evaluation: preparing the MNIST classifier")?,
    };
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
