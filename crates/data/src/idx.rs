//! The IDX file format (Yann LeCun's MNIST container), gzipped or not.
//!
//! Everything a header claims is checked against what the file really holds before any
//! large buffer is allocated, so a corrupt or hostile file gives an error, never a huge
//! allocation, a panic or a hang.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::DataError;

/// IDX type code for unsigned bytes, the only element type MNIST uses.
const TYPE_U8: u8 = 0x08;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes: its dimensions and its elements in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with exactly `ndims` dimensions.
///
/// Gzip is detected by its magic bytes, not by the file name.
pub fn read_idx(path: &Path, ndims: usize) -> Result<IdxArray, DataError> {
    let io_err = |cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut reader = BufReader::with_capacity(1 << 16, &mut file);
    let is_gzip = reader.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC);
    if is_gzip {
        // The gzip trailer stores the uncompressed size modulo 2^32: when it agrees with the
        // header it lets the buffer be allocated once; it is only a hint and never trusted.
        let size_hint = gzip_size_hint(reader.get_mut()).map_err(io_err)?;
        let mut decoder = MultiGzDecoder::new(reader);
        let (dims, header_len) = read_header(&mut decoder, path, ndims)?;
        let payload = payload_len(&dims, path)?;
        let hint_agrees = size_hint == Some(((header_len as u64 + payload) & 0xffff_ffff) as u32);
        let capacity = if hint_agrees { payload as usize } else { 0 };
        let mut data = Vec::with_capacity(capacity);
        decoder
            .take(payload + 1)
            .read_to_end(&mut data)
            .map_err(|cause| DataError::Gzip {
                path: path.to_path_buf(),
                cause,
            })?;
        check_len(path, &dims, payload, data.len() as u64)?;
        Ok(IdxArray { dims, data })
    } else {
        let (dims, header_len) = read_header(&mut reader, path, ndims)?;
        let payload = payload_len(&dims, path)?;
        check_len(path, &dims, payload, file_len - header_len as u64)?;
        let mut data = vec![0u8; payload as usize];
        reader.read_exact(&mut data).map_err(io_err)?;
        Ok(IdxArray { dims, data })
    }
}

/// Writes an IDX file of unsigned bytes, gzipped when `gzip` is set.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8], gzip: bool) -> io::Result<()> {
    let mut w = IdxWriter::create(path, dims, gzip)?;
    w.write(data)?;
    w.finish()
}

/// An IDX file of unsigned bytes written a piece at a time: the header first, then the
/// elements in row-major order, which must add up to what the dimensions say (checked as
/// they come and at [`IdxWriter::finish`]). For arrays larger than memory.
pub struct IdxWriter {
    out: Sink,
    expected: u64,
    written: u64,
}

enum Sink {
    Plain(io::BufWriter<File>),
    Gzip(flate2::write::GzEncoder<io::BufWriter<File>>),
}

impl IdxWriter {
    /// Creates `path` (gzipped when `gzip` is set) with the header of an array of `dims`.
    pub fn create(path: &Path, dims: &[usize], gzip: bool) -> io::Result<IdxWriter> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if dims.is_empty() || dims.len() > 255 {
            return Err(invalid(format!(
                "IDX holds 1 to 255 dimensions, not {}",
                dims.len()
            )));
        }
        let mut header = vec![0, 0, TYPE_U8, dims.len() as u8];
        let mut expected = 1u64;
        for &d in dims {
            let d32 = u32::try_from(d)
                .map_err(|_| invalid(format!("IDX dimension {d} is more than {}", u32::MAX)))?;
            header.extend_from_slice(&d32.to_be_bytes());
            expected = expected.saturating_mul(d as u64);
        }
        let file = io::BufWriter::new(File::create(path)?);
        let mut out = if gzip {
            Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::best(),
            ))
        } else {
            Sink::Plain(file)
        };
        out.write_all(&header)?;
        Ok(IdxWriter {
            out,
            expected,
            written: 0,
        })
    }

    /// The next elements.
    pub fn write(&mut self, values: &[u8]) -> io::Result<()> {
        self.written += values.len() as u64;
        if self.written > self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("IDX dims describe {} bytes, more were given", self.expected),
            ));
        }
        self.out.write_all(values)
    }

    /// Finishes the file (the gzip trailer) and flushes it; refuses a short array.
    pub fn finish(self) -> io::Result<()> {
        if self.written != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "IDX dims describe {} bytes, data has {}",
                    self.expected, self.written
                ),
            ));
        }
        match self.out {
            Sink::Plain(mut f) => f.flush(),
            Sink::Gzip(enc) => enc.finish()?.flush(),
        }
    }
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(f) => f.write_all(bytes),
            Sink::Gzip(enc) => enc.write_all(bytes),
        }
    }
}

fn gzip_size_hint(file: &mut File) -> io::Result<Option<u32>> {
    let len = file.metadata()?.len();
    if len < 18 {
        return Ok(None);
    }
    let here = file.stream_position()?;
    file.seek(SeekFrom::End(-4))?;
    let mut trailer = [0u8; 4];
    file.read_exact(&mut trailer)?;
    file.seek(SeekFrom::Start(here))?;
    Ok(Some(u32::from_le_bytes(trailer)))
}

fn read_header(
    reader: &mut impl Read,
    path: &Path,
    ndims: usize,
) -> Result<(Vec<usize>, usize), DataError> {
    let short = |what: &str| DataError::Truncated {
        path: path.to_path_buf(),
        detail: format!("the file ends inside the IDX header ({what})"),
    };
    let mut magic = [0u8; 4];
    read_fully(reader, &mut magic, path)?
        .then_some(())
        .ok_or_else(|| short("magic number"))?;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != TYPE_U8 || magic[3] as usize != ndims {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: u32::from_be_bytes(magic),
            expected: 0x0800 | ndims as u32,
        });
    }
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        let mut d = [0u8; 4];
        read_fully(reader, &mut d, path)?
            .then_some(())
            .ok_or_else(|| short("dimensions"))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    Ok((dims, 4 + 4 * ndims))
}

/// Like `read_exact`, but reports a clean end of input as `false` instead of an error.
fn read_fully(reader: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<bool, DataError> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(cause) => Err(DataError::Io {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

fn payload_len(dims: &[usize], path: &Path) -> Result<u64, DataError> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= isize::MAX as u64)
        .ok_or_else(|| DataError::Truncated {
            path: path.to_path_buf(),
            detail: format!("header claims dimensions {dims:?}, too large to be real"),
        })
}

fn check_len(path: &Path, dims: &[usize], claimed: u64, actual: u64) -> Result<(), DataError> {
    let path: PathBuf = path.to_path_buf();
    if actual < claimed {
        return Err(DataError::Truncated {
            path,
            detail: format!(
                "header claims dimensions {dims:?} ({claimed} bytes of data) but the file holds only {actual}"
            ),
        });
    }
    if actual > claimed {
        return Err(DataError::TrailingData {
            path,
            dims: dims.to_vec(),
        });
    }
    Ok(())
}
