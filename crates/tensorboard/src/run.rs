//! A run's TensorBoard log, `events.out.tfevents.0.gan` in its directory.
//!
//! Everything in it is derived from the run's own files: the losses of every step
//! (`step/d_loss`, ...) and their per-epoch means (`epoch/d_loss`, ...), the sample pictures
//! (`samples`), the resolved spec (`spec`, Text tab), its keys as hyper-parameters (HParams
//! tab) and the final metrics (`metrics/fid`, ...). All charts share one x axis, the training
//! step: an epoch's means and picture sit at the step that ends it. Because the log can be
//! rebuilt from the run directory at any step ([`RunLog::rebuild`]), a resumed run rewrites it
//! from its checkpoint and gets exactly the content of an uninterrupted run, and runs made
//! before logs existed get them (`gan tensorboard`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gan_rundir::{epoch_means, LossRow, Metrics, Replacement, RunDir, Status};

use crate::writer::{EventWriter, HParam};
use crate::TensorBoardError;

/// Per-step and per-epoch scalars: (tag suffix, value).
fn quantities(r: &LossRow) -> [(&'static str, f32); 4] {
    [
        ("d_loss", r.d_loss),
        ("g_loss", r.g_loss),
        ("d_real", r.d_real),
        ("d_fake", r.d_fake),
    ]
}

/// The log of one run, open for appending.
pub struct RunLog {
    writer: EventWriter,
}

/// Seconds since 1970 of a `SystemTime`.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

impl RunLog {
    /// The path of `dir`'s event file.
    pub fn path(dir: &RunDir) -> PathBuf {
        dir.file(gan_rundir::EVENTS_FILE)
    }

    /// Writes `dir`'s log afresh from its files. `upto` is a checkpoint's position, `(steps
    /// done, epochs done)`: the log then holds the losses of those steps, the means and
    /// pictures of those epochs, as when the checkpoint was taken. With `None` it holds all of
    /// the run, and its metrics and end when the run is completed. Wall times come from
    /// `run.json` (each step at the end of its epoch).
    ///
    /// The new log is written beside the old one and renamed over it once whole, so the old
    /// one is never seen half-replaced and a symbolic link in its place is replaced, not
    /// written through. With `None`, a `losses.csv` holding fewer steps than `run.json`
    /// records (cut short, or deleted) is refused and the old log left as it is: it may be
    /// the last copy of those losses.
    pub fn rebuild(dir: &RunDir, upto: Option<(u64, usize)>) -> Result<RunLog, TensorBoardError> {
        let info = dir.read_info()?;
        let start = humantime::parse_rfc3339(&info.started_at)
            .map(unix_seconds)
            .unwrap_or(0.0);
        let spec = std::fs::read_to_string(dir.file(gan_rundir::SPEC_FILE)).map_err(|cause| {
            TensorBoardError::Io {
                path: dir.file(gan_rundir::SPEC_FILE),
                cause,
            }
        })?;
        // (A fresh run's log starts before its loss log has anything to read.)
        let fresh = matches!(upto, Some((0, _)));
        let mut rows = if !fresh && dir.file(gan_rundir::LOSSES_FILE).exists() {
            dir.read_losses()?
        } else {
            Vec::new()
        };
        let epochs_done = match upto {
            Some((steps, epochs)) => {
                rows.truncate(steps as usize);
                epochs
            }
            None => {
                if (rows.len() as u64) < info.steps_done {
                    return Err(TensorBoardError::LossesShort {
                        path: dir.file(gan_rundir::LOSSES_FILE),
                        rows: rows.len(),
                        steps: info.steps_done,
                    });
                }
                info.epochs_done
            }
        };
        let run_name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = Self::path(dir);
        let (file, replacement) = Replacement::beside(&path)?;
        let mut log = RunLog {
            writer: EventWriter::start(file, &path, start),
        };
        log.begin(&spec, &run_name, start);
        // Wall time at the end of each finished epoch.
        let mut ends = Vec::with_capacity(info.epoch_seconds.len());
        let mut t = start;
        for s in &info.epoch_seconds {
            t += s;
            ends.push(t);
        }
        let pictures: BTreeMap<usize, PathBuf> = dir.sample_paths().into_iter().collect();
        let mut first = 0;
        while first < rows.len() {
            let epoch = rows[first].epoch;
            let len = rows[first..]
                .iter()
                .take_while(|r| r.epoch == epoch)
                .count();
            let epoch_rows = &rows[first..first + len];
            let complete = epoch < epochs_done;
            let wall = ends.get(epoch).copied().unwrap_or(t);
            let png = match pictures.get(&epoch) {
                Some(p) if complete => {
                    Some(std::fs::read(p).map_err(|cause| TensorBoardError::Io {
                        path: p.clone(),
                        cause,
                    })?)
                }
                _ => None,
            };
            if complete {
                log.epoch(epoch_rows, png.as_deref(), wall);
            } else {
                log.steps(epoch_rows, wall);
            }
            first += len;
        }
        if upto.is_none() && info.status == Status::Completed {
            let last = rows.last().map_or(0, |r| r.step);
            let end = humantime::parse_rfc3339(info.ended_at.as_deref().unwrap_or_default())
                .map(unix_seconds)
                .unwrap_or(t);
            if let Ok(m) = dir.read_metrics() {
                log.metrics(&m, last, end);
            }
            log.end(true, last, end);
        }
        log.writer.flush()?;
        // The open file stays the log's: a session goes on appending to it.
        replacement.put_in_place()?;
        Ok(log)
    }

    /// The spec as text and as hyper-parameters, at step 0.
    fn begin(&mut self, spec_yaml: &str, run_name: &str, start: f64) {
        let markdown = format!("```yaml\n{}\n```", spec_yaml.trim_end());
        self.writer.text("spec", 0, start, &markdown);
        let hparams = serde_yaml::from_str::<serde_yaml::Value>(spec_yaml)
            .map(|v| gan_spec::flatten(&v))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, hparam(&v)))
            .collect();
        self.writer.hparams_start(hparams, run_name, start);
    }

    /// The scalars of some steps (a partial epoch).
    pub fn steps(&mut self, rows: &[LossRow], wall: f64) {
        for r in rows {
            for (name, v) in quantities(r) {
                self.writer.scalar(&format!("step/{name}"), r.step, wall, v);
            }
        }
    }

    /// A finished epoch: its steps, their means at its last step, and its picture if any.
    pub fn epoch(&mut self, rows: &[LossRow], picture: Option<&[u8]>, wall: f64) {
        self.steps(rows, wall);
        self.epoch_end(rows, picture, wall);
    }

    /// The end of an epoch whose steps are logged: the means of `rows` (all of the epoch) at
    /// its last step, and its picture if any.
    pub fn epoch_end(&mut self, rows: &[LossRow], picture: Option<&[u8]>, wall: f64) {
        let Some(last) = rows.last() else { return };
        if let Some(means) = epoch_means(rows).last() {
            for (name, v) in [
                ("d_loss", means.d_loss),
                ("g_loss", means.g_loss),
                ("d_real", means.d_real),
                ("d_fake", means.d_fake),
            ] {
                self.writer
                    .scalar(&format!("epoch/{name}"), last.step, wall, v as f32);
            }
        }
        if let Some(png) = picture {
            self.writer.png("samples", last.step, wall, png);
        }
    }

    /// The run's sample-quality metrics, at its last step (the HParams tab's metric columns).
    pub fn metrics(&mut self, m: &Metrics, step: u64, wall: f64) {
        let g = &m.generated;
        let mut values = vec![
            ("fid", g.fid),
            ("inception_score", g.inception_score),
            ("coverage", g.coverage.classes_over_5pct as f64),
            ("kl_to_test", g.coverage.kl_to_test),
            ("precision", g.precision),
            ("recall", g.recall),
        ];
        if let Some(p) = &g.parzen {
            values.push(("parzen_ll", p.mean_ll));
        }
        if let Some(a) = g.label_accuracy {
            values.push(("label_accuracy", a));
        }
        for (name, v) in values {
            self.writer
                .scalar(&format!("metrics/{name}"), step, wall, v as f32);
        }
    }

    /// The end of the run (completed or failed), for the HParams tab's status column.
    pub fn end(&mut self, success: bool, step: u64, wall: f64) {
        self.writer.hparams_end(success, step, wall);
    }

    /// Writes what was logged since the last flush (the runner calls it every epoch).
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.writer.flush()
    }
}

/// A spec value (YAML text) as the HParams tab types it.
fn hparam(text: &str) -> HParam {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Bool(b)) => HParam::Bool(b),
        Ok(serde_yaml::Value::Number(n)) => n
            .as_f64()
            .map(HParam::Number)
            .unwrap_or_else(|| HParam::Text(text.into())),
        _ => HParam::Text(text.into()),
    }
}
