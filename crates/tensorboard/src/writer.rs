//! Event files: TFRecord framing (length, masked CRC-32C of the length, the serialised
//! `Event`, masked CRC-32C of it), events built from the messages in [`crate::proto`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::{
    self, event, hparams, value, Event, HParamsPluginData, PluginData, SessionEndInfo,
    SessionStartInfo, Summary, SummaryMetadata, TensorProto, TensorShapeProto,
};
use crate::TensorBoardError;

/// TensorFlow's CRC mask: CRCs of data that holds CRCs are unreliable, so they are rotated and
/// offset (`tensorflow/core/lib/hash/crc32c.h`).
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One record of an event file.
fn frame(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Appends events to one file. Events are collected in memory and written by
/// [`EventWriter::flush`] in one piece, so the file holds whole records between flushes.
pub struct EventWriter {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

impl EventWriter {
    /// Starts an event file in `file`, already open for writing and empty, with the version
    /// record TensorBoard expects first; `path` names it in errors. (A run's log is started
    /// in a file beside the old one, `gan_rundir::Replacement`, and renamed over it.)
    pub fn start(file: File, path: &Path, wall_time: f64) -> EventWriter {
        let mut w = EventWriter {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
        };
        w.event(Event {
            wall_time,
            step: 0,
            what: Some(event::What::FileVersion("brain.Event:2".into())),
        });
        w
    }

    /// Continues an existing event file.
    pub fn append(path: &Path) -> Result<EventWriter, TensorBoardError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok(EventWriter {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn event(&mut self, e: Event) {
        frame(&e.encode_to_vec(), &mut self.pending);
    }

    fn summary(&mut self, step: u64, wall_time: f64, value: proto::Value) {
        self.event(Event {
            wall_time,
            step: step as i64,
            what: Some(event::What::Summary(Summary { value: vec![value] })),
        });
    }

    /// A summary value without plugin metadata (scalars, images).
    fn plain(&mut self, tag: &str, step: u64, wall_time: f64, kind: value::Kind) {
        let value = proto::Value {
            tag: tag.into(),
            metadata: None,
            kind: Some(kind),
        };
        self.summary(step, wall_time, value);
    }

    /// A point of a scalar chart.
    pub fn scalar(&mut self, tag: &str, step: u64, wall_time: f64, v: f32) {
        self.plain(tag, step, wall_time, value::Kind::SimpleValue(v));
    }

    /// A PNG picture for the Images tab (`colorspace`: 1 grey, 3 RGB, 4 RGBA).
    pub fn png(&mut self, tag: &str, step: u64, wall_time: f64, png: &[u8]) {
        let (width, height, colorspace) = png_size(png);
        let image = proto::Image {
            height,
            width,
            colorspace,
            encoded_image_string: png.to_vec(),
        };
        self.plain(tag, step, wall_time, value::Kind::Image(image));
    }

    /// Markdown for the Text tab.
    pub fn text(&mut self, tag: &str, step: u64, wall_time: f64, markdown: &str) {
        self.summary(
            step,
            wall_time,
            proto::Value {
                tag: tag.into(),
                metadata: Some(plugin_metadata("text", Vec::new())),
                kind: Some(value::Kind::Tensor(TensorProto {
                    dtype: proto::DT_STRING,
                    tensor_shape: Some(TensorShapeProto { dim: Vec::new() }),
                    string_val: vec![markdown.as_bytes().to_vec()],
                    ..Default::default()
                })),
            },
        );
    }

    /// The hyper-parameters of this run for the HParams tab (its metrics are the run's
    /// scalars), as `tensorboard.plugins.hparams.summary_v2.hparams_pb` writes them.
    pub fn hparams_start(
        &mut self,
        hparams: BTreeMap<String, HParam>,
        group_name: &str,
        start_time_secs: f64,
    ) {
        let hparams = hparams
            .into_iter()
            .map(|(k, v)| (k, v.into_value()))
            .collect();
        let data = hparams::Data::SessionStartInfo(SessionStartInfo {
            hparams,
            group_name: group_name.into(),
            start_time_secs,
        });
        self.hparams_record(SESSION_START_TAG, start_time_secs, data);
    }

    /// The end of the session the HParams tab shows (status success or failure).
    pub fn hparams_end(&mut self, success: bool, step: u64, end_time_secs: f64) {
        let data = hparams::Data::SessionEndInfo(SessionEndInfo {
            status: if success { 1 } else { 2 },
            end_time_secs,
        });
        let content = HParamsPluginData {
            version: 0,
            data: Some(data),
        };
        self.summary(step, end_time_secs, hparams_value(SESSION_END_TAG, content));
    }

    fn hparams_record(&mut self, tag: &str, wall_time: f64, data: hparams::Data) {
        let content = HParamsPluginData {
            version: 0,
            data: Some(data),
        };
        self.summary(0, wall_time, hparams_value(tag, content));
    }

    /// Writes the pending events and syncs them to the disk.
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.file.write_all(&self.pending).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.pending.clear();
        Ok(())
    }
}

const SESSION_START_TAG: &str = "_hparams_/session_start_info";
const SESSION_END_TAG: &str = "_hparams_/session_end_info";

fn plugin_metadata(plugin_name: &str, content: Vec<u8>) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: plugin_name.into(),
            content,
        }),
        ..Default::default()
    }
}

/// The hparams plugin's summary value: its data in the metadata, an empty float tensor.
fn hparams_value(tag: &str, content: HParamsPluginData) -> proto::Value {
    proto::Value {
        tag: tag.into(),
        metadata: Some(plugin_metadata("hparams", content.encode_to_vec())),
        kind: Some(value::Kind::Tensor(TensorProto {
            dtype: proto::DT_FLOAT,
            tensor_shape: Some(TensorShapeProto {
                dim: vec![proto::Dim { size: 0 }],
            }),
            ..Default::default()
        })),
    }
}

/// A hyper-parameter's value as the HParams tab types it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    Number(f64),
    Bool(bool),
    Text(String),
}

impl HParam {
    fn into_value(self) -> prost_types::Value {
        use prost_types::value::Kind;
        prost_types::Value {
            kind: Some(match self {
                HParam::Number(v) => Kind::NumberValue(v),
                HParam::Bool(v) => Kind::BoolValue(v),
                HParam::Text(v) => Kind::StringValue(v),
            }),
        }
    }
}

/// Width, height and TensorBoard colorspace of a PNG, from its header.
fn png_size(png: &[u8]) -> (i32, i32, i32) {
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png);
    match reader.decode() {
        Ok(img) => {
            let colorspace = match img.color().channel_count() {
                1 | 2 => 1,
                3 => 3,
                _ => 4,
            };
            (img.width() as i32, img.height() as i32, colorspace)
        }
        Err(_) => (0, 0, 1),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TensorBoardError + '_ {
    move |cause| TensorBoardError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Reads every event of a file, checking both CRCs of every record.
pub fn read_events(path: &Path) -> Result<Vec<Event>, TensorBoardError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    let corrupt = |at: usize, what: &str| TensorBoardError::Corrupt {
        path: path.to_path_buf(),
        message: format!("record at byte {at}: {what}"),
    };
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes
            .get(at..at + 12)
            .ok_or_else(|| corrupt(at, "truncated header"))?;
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes")) as usize;
        if masked_crc(&header[..8]).to_le_bytes() != header[8..12] {
            return Err(corrupt(at, "length checksum mismatch"));
        }
        let end = at + 12 + len;
        let data = bytes
            .get(at + 12..end)
            .ok_or_else(|| corrupt(at, "truncated data"))?;
        let crc = bytes
            .get(end..end + 4)
            .ok_or_else(|| corrupt(at, "truncated data checksum"))?;
        if masked_crc(data).to_le_bytes() != crc {
            return Err(corrupt(at, "data checksum mismatch"));
        }
        events.push(Event::decode(data).map_err(|e| corrupt(at, &e.to_string()))?);
        at = end + 4;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_use_tensorflows_masked_crc32c() {
        // TFRecord of the empty string: length 0, masked CRC of 8 zero bytes, data, masked
        // CRC of nothing; TensorFlow's masking of crc32c("") = 0 is 0xa282ead8.
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        let mut out = Vec::new();
        frame(b"", &mut out);
        assert_eq!(out.len(), 16);
        assert_eq!(&out[12..], &0xa282_ead8u32.to_le_bytes());
        // crc32c("123456789") = 0xE3069283 (the standard check value), then masked.
        let crc = 0xE306_9283u32;
        assert_eq!(
            masked_crc(b"123456789"),
            crc.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }
}
