//! The run directory: what a run leaves behind, written by the runner and read by the tools.
//!
//! ```text
//! runs/<name>-<UTC time>/
//!   spec.yaml           the fully resolved spec (rerun it to repeat the run)
//!   run.json            status, times, seed, versions, machine (RunInfo)
//!   losses.csv          epoch,step,d_loss,g_loss,d_real,d_fake: one row per step
//!   losses.png          the loss curves
//!   samples/NNN.png     sample pictures after epochs 000, 009, 019, ...
//!   model.safetensors   the final generator and discriminator
//!   metrics.json        sample-quality metrics, when evaluated
//!   events.out.tfevents.0.gan   the TensorBoard log (written through gan-tensorboard)
//!   checkpoints/        the newest full training states, for --resume
//!   .lock               locked by the process writing the run
//! ```
//!
//! This crate is the only place that knows these names and formats.

mod checkpoints;
mod info;
mod losses;
mod metrics;
mod summary;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use checkpoints::{sha256_hex, CheckpointFile, CHECKPOINTS_DIR};
pub use info::{hostname, GitInfo, Machine, RunInfo, Status, RUN_FORMAT};
pub use losses::{
    epoch_means, losses_prefix_sha256, read_losses, EpochMeans, LossRow, LossWriter, LOSS_HEADER,
};
pub use metrics::{ClassifierInfo, Coverage, Metrics, Parzen, SampleMetrics, METRICS_FORMAT};
pub use summary::{
    compare_losses, is_stale, list_runs, summarize, sweep_runs, Headline, LossComparison,
    RunSummary, Shown,
};

pub const SPEC_FILE: &str = "spec.yaml";
pub const RUN_FILE: &str = "run.json";
pub const LOSSES_FILE: &str = "losses.csv";
pub const LOSSES_PLOT: &str = "losses.png";
pub const SAMPLES_DIR: &str = "samples";
pub const MODEL_FILE: &str = "model.safetensors";
pub const METRICS_FILE: &str = "metrics.json";
/// Marks a sweep's parent folder and lists its runs.
pub const SWEEP_FILE: &str = "sweep.json";
/// The run's TensorBoard log, in the run directory itself so TensorBoard names the run after
/// its folder (`tensorboard --logdir runs`). Always this name, so a rebuild replaces it.
pub const EVENTS_FILE: &str = "events.out.tfevents.0.gan";
/// Locked (an OS file lock) by the process writing the run; holds its pid.
pub const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{} already exists; a run never overwrites another: choose another --run-dir or remove it", .0.display())]
    Exists(PathBuf),
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{} is in use by {holder}; wait for it to end (or stop it) before writing this run", path.display())]
    InUse { path: PathBuf, holder: String },
}

/// The exclusive right to write a run directory: an OS lock on its `.lock` file, released
/// when this is dropped or the process dies (so a `kill -9` never leaves a stale lock).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |cause| RunDirError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// A run's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates exactly `path` (its parent may be created); refuses if it exists.
    pub fn create(path: &Path) -> Result<RunDir, RunDirError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RunDirError::Exists(path.to_path_buf()))
            }
            Err(e) => return Err(io_err(path)(e)),
        }
        let dir = RunDir {
            path: path.to_path_buf(),
        };
        std::fs::create_dir(dir.samples_dir()).map_err(io_err(&dir.samples_dir()))?;
        Ok(dir)
    }

    /// Creates `<root>/<name>-<UTC time>`, adding `-2`, `-3`, ... if a run started in the same second.
    pub fn create_timestamped(
        root: &Path,
        name: &str,
        started: std::time::SystemTime,
    ) -> Result<RunDir, RunDirError> {
        let stamp = compact_timestamp(started);
        let base = format!("{name}-{stamp}");
        for n in 1.. {
            let candidate = if n == 1 {
                root.join(&base)
            } else {
                root.join(format!("{base}-{n}"))
            };
            match RunDir::create(&candidate) {
                Err(RunDirError::Exists(_)) => continue,
                other => return other,
            }
        }
        unreachable!("some suffix is free")
    }

    /// An existing run directory (it must hold a `run.json`).
    pub fn open(path: &Path) -> Result<RunDir, RunDirError> {
        let dir = RunDir {
            path: path.to_path_buf(),
        };
        if !dir.file(RUN_FILE).is_file() {
            return Err(RunDirError::Corrupt {
                path: path.to_path_buf(),
                message: format!("not a run directory (no {RUN_FILE})"),
            });
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the run's lock, or says which process holds it. Every process that writes a
    /// run directory holds the lock while it does.
    pub fn lock(&self) -> Result<RunLock, RunDirError> {
        use std::io::{Read, Seek};
        let path = self.file(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io_err(&path))?;
                file.rewind().map_err(io_err(&path))?;
                write!(file, "{}", std::process::id()).map_err(io_err(&path))?;
                Ok(RunLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes its pid just after taking the lock; until then the file
                // is empty or names an earlier holder that has died: wait a moment for it.
                let mut holder = "another process".to_string();
                for _ in 0..40 {
                    let mut pid = String::new();
                    let _ = file.rewind().and_then(|_| file.read_to_string(&mut pid));
                    let pid = pid.trim();
                    let alive = !Path::new("/proc/self").exists()
                        || Path::new(&format!("/proc/{pid}")).exists();
                    if !pid.is_empty() && alive {
                        holder = format!("pid {pid}");
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(RunDirError::InUse {
                    path: self.path.clone(),
                    holder,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.path.join(SAMPLES_DIR)
    }

    /// `samples/NNN.png` for a 0-based epoch, as the tutorial names them.
    pub fn sample_path(&self, epoch: usize) -> PathBuf {
        self.samples_dir().join(format!("{epoch:03}.png"))
    }

    /// The sample pictures present, in epoch order.
    pub fn sample_paths(&self) -> Vec<(usize, PathBuf)> {
        let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(self.samples_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let epoch = name.strip_suffix(".png")?.parse().ok()?;
                Some((epoch, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    pub fn read_info(&self) -> Result<RunInfo, RunDirError> {
        self.read_json(RUN_FILE)
    }

    /// Replaces `run.json` atomically, so a reader never sees half of it.
    pub fn write_info(&self, info: &RunInfo) -> Result<(), RunDirError> {
        self.write_json(RUN_FILE, info)
    }

    pub fn read_metrics(&self) -> Result<Metrics, RunDirError> {
        self.read_json(METRICS_FILE)
    }

    pub fn write_metrics(&self, m: &Metrics) -> Result<(), RunDirError> {
        self.write_json(METRICS_FILE, m)
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, RunDirError> {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| RunDirError::Corrupt {
            path,
            message: format!("unreadable {name}: {e}"),
        })
    }

    fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<(), RunDirError> {
        write_json_atomic(&self.file(name), value)
    }

    /// Writes the final weights atomically; returns their SHA-256 for `run.json`'s
    /// `model_sha256`, which [`RunDir::read_model`] checks.
    pub fn write_model(&self, bytes: &[u8]) -> Result<String, RunDirError> {
        write_atomic(&self.file(MODEL_FILE), bytes)?;
        Ok(sha256_hex(bytes))
    }

    /// The final weights, checked against the SHA-256 `run.json` recorded when they were
    /// written (runs from before it was recorded are read unchecked).
    pub fn read_model(&self) -> Result<Vec<u8>, RunDirError> {
        let path = self.file(MODEL_FILE);
        let info = self.read_info()?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RunDirError::Corrupt {
                    path,
                    message: format!(
                        "missing: the run has no final weights (its status is `{}`)",
                        info.status
                    ),
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        match &info.model_sha256 {
            Some(want) if *want != sha256_hex(&bytes) => Err(RunDirError::Corrupt {
                path,
                message: format!(
                    "does not match the SHA-256 recorded in {RUN_FILE} ({want}): it was damaged \
                     or replaced after the run wrote it"
                ),
            }),
            _ => Ok(bytes),
        }
    }

    pub fn read_losses(&self) -> Result<Vec<LossRow>, RunDirError> {
        read_losses(&self.file(LOSSES_FILE))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced and renamed,
/// so the file is either the old one or the complete new one, even after a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let (mut file, replacement) = Replacement::beside(path)?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))?;
    replacement.put_in_place()
}

/// A file that will replace `path` whole: a temporary file in the same folder, written
/// through the `File` [`Replacement::beside`] returns and then renamed over `path` by
/// [`Replacement::put_in_place`], so `path` is never seen half-written and a symbolic link
/// there is replaced, not written through. Dropped before that, it is removed. The `File`
/// stays open on the renamed file, for writers that go on appending (a TensorBoard log).
pub struct Replacement {
    temp: tempfile::TempPath,
    path: PathBuf,
}

impl Replacement {
    /// The temporary file beside `path`, open for writing.
    pub fn beside(path: &Path) -> Result<(File, Replacement), RunDirError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let (file, temp) = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(io_err(dir))?
            .into_parts();
        let path = path.to_path_buf();
        Ok((file, Replacement { temp, path }))
    }

    /// Renames the written file over `path` (the caller has synced what it wrote).
    pub fn put_in_place(self) -> Result<(), RunDirError> {
        #[cfg(unix)]
        {
            // Temporary files are private (0600); run files are ordinary files.
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(&self.temp, perms).map_err(io_err(&self.path))?;
        }
        let path = self.path;
        self.temp.persist(&path).map_err(|e| io_err(&path)(e.error))
    }
}

/// Writes `value` as pretty JSON (with a final newline) through [`write_atomic`].
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<(), RunDirError> {
    let json = serde_json::to_string_pretty(value).expect("plain data serialises to JSON");
    write_atomic(path, format!("{json}\n").as_bytes())
}

/// `2026-11-28T08:09:24Z`
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `20261128T080924Z`, for folder names.
pub fn compact_timestamp(t: std::time::SystemTime) -> String {
    rfc3339(t).replace(['-', ':'], "")
}
