//! `losses.csv`: one row per training step, nothing that varies between identical runs.
//! Floats are written in Rust's shortest round-trip form, so a row reads back bit for bit.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{io_err, RunDirError};

pub const LOSS_HEADER: [&str; 6] = ["epoch", "step", "d_loss", "g_loss", "d_real", "d_fake"];

/// One step: 0-based epoch, 1-based global step, the losses in the tutorial's sign
/// convention and the mean discriminator outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossRow {
    pub epoch: usize,
    pub step: u64,
    pub d_loss: f32,
    pub g_loss: f32,
    pub d_real: f32,
    pub d_fake: f32,
}

/// Appends rows; `flush` makes them durable (the runner calls it every epoch). It keeps the
/// SHA-256 of everything written, which checkpoints record so that a resume can tell whether
/// the rows it keeps are still the ones the run wrote.
pub struct LossWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hash: Sha256,
}

/// Length in bytes of the header plus the first `rows` complete data rows of `text`, or
/// `None` when it holds fewer.
fn prefix_len(text: &str, rows: usize) -> Option<usize> {
    let mut end = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > rows || !line.ends_with('\n') {
            break;
        }
        end += line.len();
    }
    (text[..end].lines().count().saturating_sub(1) >= rows).then_some(end)
}

/// SHA-256 (hex) of the header and first `rows` rows of a loss log, as [`LossWriter::sha256`]
/// gave it when those rows were written; `None` if the file holds fewer rows.
pub fn losses_prefix_sha256(path: &Path, rows: usize) -> Result<Option<String>, RunDirError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    Ok(prefix_len(&text, rows).map(|end| crate::sha256_hex(&text.as_bytes()[..end])))
}

impl LossWriter {
    /// Starts a new file with the header.
    pub fn create(path: &Path) -> Result<LossWriter, RunDirError> {
        let file = File::create(path).map_err(io_err(path))?;
        let mut w = LossWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            hash: Sha256::new(),
        };
        w.write_line(&LOSS_HEADER.join(","))?;
        Ok(w)
    }

    /// Continues an existing file after its first `keep` data rows, dropping any later ones
    /// (a resumed run rewrites what came after its checkpoint).
    pub fn resume(path: &Path, keep: usize) -> Result<LossWriter, RunDirError> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let Some(end) = prefix_len(&text, keep) else {
            return Err(RunDirError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "holds {} complete rows, fewer than the {keep} the checkpoint needs",
                    text.lines().count().saturating_sub(1)
                ),
            });
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        file.set_len(end as u64).map_err(io_err(path))?;
        let mut out = BufWriter::new(file);
        use std::io::Seek;
        out.seek(std::io::SeekFrom::End(0)).map_err(io_err(path))?;
        let mut hash = Sha256::new();
        hash.update(&text.as_bytes()[..end]);
        Ok(LossWriter {
            path: path.to_path_buf(),
            out,
            hash,
        })
    }

    /// SHA-256 (hex) of everything written so far, header included.
    pub fn sha256(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }

    fn write_line(&mut self, line: &str) -> Result<(), RunDirError> {
        self.hash.update(line.as_bytes());
        self.hash.update(b"\n");
        writeln!(self.out, "{line}").map_err(io_err(&self.path))
    }

    pub fn write(&mut self, r: &LossRow) -> Result<(), RunDirError> {
        let line = format!(
            "{},{},{},{},{},{}",
            r.epoch, r.step, r.d_loss, r.g_loss, r.d_real, r.d_fake
        );
        self.write_line(&line)
    }

    /// Pushes buffered rows to the disk.
    pub fn flush(&mut self) -> Result<(), RunDirError> {
        self.out.flush().map_err(io_err(&self.path))?;
        self.out.get_ref().sync_data().map_err(io_err(&self.path))
    }
}

/// Reads a whole `losses.csv`; a malformed file is an error naming the line.
pub fn read_losses(path: &Path) -> Result<Vec<LossRow>, RunDirError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| corrupt(path, e))?;
    let header = reader.headers().map_err(|e| corrupt(path, e))?.clone();
    if header.iter().collect::<Vec<_>>() != LOSS_HEADER {
        return Err(RunDirError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "header is `{}`, expected `{}`",
                header.iter().collect::<Vec<_>>().join(","),
                LOSS_HEADER.join(",")
            ),
        });
    }
    reader
        .deserialize()
        .map(|row| row.map_err(|e| corrupt(path, e)))
        .collect()
}

fn corrupt(path: &Path, e: csv::Error) -> RunDirError {
    match e.kind() {
        csv::ErrorKind::Io(_) => RunDirError::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::other(e.to_string()),
        },
        _ => RunDirError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// Means of each column over one epoch: single batches are too noisy to compare runs by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMeans {
    pub epoch: usize,
    pub steps: usize,
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
}

/// Per-epoch means in epoch order.
pub fn epoch_means(rows: &[LossRow]) -> Vec<EpochMeans> {
    let mut out: Vec<EpochMeans> = Vec::new();
    for r in rows {
        if out.last().map(|m| m.epoch) != Some(r.epoch) {
            out.push(EpochMeans {
                epoch: r.epoch,
                steps: 0,
                d_loss: 0.0,
                g_loss: 0.0,
                d_real: 0.0,
                d_fake: 0.0,
            });
        }
        let m = out.last_mut().expect("just pushed");
        m.steps += 1;
        m.d_loss += r.d_loss as f64;
        m.g_loss += r.g_loss as f64;
        m.d_real += r.d_real as f64;
        m.d_fake += r.d_fake as f64;
    }
    for m in &mut out {
        let n = m.steps as f64;
        m.d_loss /= n;
        m.g_loss /= n;
        m.d_real /= n;
        m.d_fake /= n;
    }
    out
}
