//! `checkpoints/step-<steps>-<hash>.safetensors`: the full training state at a step boundary.
//!
//! Each file is written whole (temporary file, fsync, rename) and carries the first 16 hex
//! digits of its SHA-256 in its name, so a truncated or altered checkpoint is recognised
//! without a second file that could fall out of step with it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{io_err, write_atomic, RunDir, RunDirError};

pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// Hex digits of the hash kept in the file name.
const HASH_DIGITS: usize = 16;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A checkpoint on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFile {
    /// Training steps done when it was taken.
    pub steps: u64,
    pub path: PathBuf,
    hash: String,
}

impl RunDir {
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.file(CHECKPOINTS_DIR)
    }

    /// Writes a checkpoint and removes all but the newest `keep`.
    pub fn write_checkpoint(
        &self,
        steps: u64,
        bytes: &[u8],
        keep: usize,
    ) -> Result<PathBuf, RunDirError> {
        let dir = self.checkpoints_dir();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let hash = &sha256_hex(bytes)[..HASH_DIGITS];
        let path = dir.join(format!("step-{steps:09}-{hash}.safetensors"));
        write_atomic(&path, bytes)?;
        let all = self.checkpoints();
        for old in &all[..all.len().saturating_sub(keep.max(1))] {
            std::fs::remove_file(&old.path).map_err(io_err(&old.path))?;
        }
        Ok(path)
    }

    /// The checkpoints present, oldest first (damaged ones included: reading tells).
    pub fn checkpoints(&self) -> Vec<CheckpointFile> {
        let mut found: Vec<CheckpointFile> = std::fs::read_dir(self.checkpoints_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| parse_name(&e.path()))
            .collect();
        found.sort_by(|a, b| a.steps.cmp(&b.steps).then_with(|| a.path.cmp(&b.path)));
        found
    }

    /// The bytes of a checkpoint, if they still hash to the value in its name.
    pub fn read_checkpoint(&self, c: &CheckpointFile) -> Result<Vec<u8>, RunDirError> {
        let bytes = std::fs::read(&c.path).map_err(io_err(&c.path))?;
        let actual = sha256_hex(&bytes);
        if actual[..HASH_DIGITS] != c.hash {
            return Err(RunDirError::Corrupt {
                path: c.path.clone(),
                message: format!(
                    "checksum mismatch: the file hashes to {}..., its name says {}...",
                    &actual[..HASH_DIGITS],
                    c.hash
                ),
            });
        }
        Ok(bytes)
    }
}

fn parse_name(path: &Path) -> Option<CheckpointFile> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("step-")?.strip_suffix(".safetensors")?;
    let (steps, hash) = rest.split_once('-')?;
    (hash.len() == HASH_DIGITS).then_some(())?;
    Some(CheckpointFile {
        steps: steps.parse().ok()?,
        path: path.to_path_buf(),
        hash: hash.to_string(),
    })
}
