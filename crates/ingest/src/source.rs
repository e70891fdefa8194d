//! Opening an input: plain or gzip-compressed (by magic bytes or the `.gz` extension), counted as it is
//! read so that a progress bar can show how far through the file we are, and with the first bytes kept
//! aside so that the delimiter, the format and the date order can be sniffed before parsing starts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::bufread::MultiGzDecoder;

use crate::error::IngestError;

/// How many decompressed bytes are looked at to sniff the delimiter, the format and the date order.
pub(crate) const SAMPLE_BYTES: u64 = 64 * 1024;

/// How far a reader has got, shared with whoever draws a progress bar (clone it and poll from another thread).
///
/// `bytes_read` counts bytes of the file as stored (compressed bytes for a `.gz`), so
/// `bytes_read / total_bytes` is the fraction done in both cases.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bytes_read: Arc<AtomicU64>,
    rows_read: Arc<AtomicU64>,
    total_bytes: Option<u64>,
}

impl Progress {
    pub(crate) fn new(total_bytes: Option<u64>) -> Self {
        Progress { total_bytes, ..Progress::default() }
    }

    /// Bytes of the file consumed so far (compressed bytes for a compressed file).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Data rows read so far (records after the header; updated every few thousand rows and at the end).
    pub fn rows_read(&self) -> u64 {
        self.rows_read.load(Ordering::Relaxed)
    }

    /// Size of the file in bytes, when reading from a file.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }

    /// `bytes_read / total_bytes`, between 0 and 1, when the size is known.
    pub fn fraction_done(&self) -> Option<f64> {
        self.total_bytes.map(|total| if total == 0 { 1.0 } else { (self.bytes_read() as f64 / total as f64).min(1.0) })
    }

    pub(crate) fn set_rows_read(&self, rows: u64) {
        self.rows_read.store(rows, Ordering::Relaxed);
    }

    pub(crate) fn bytes_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.bytes_read)
    }
}

/// A reader that adds the number of bytes it passes on to a shared counter.
struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A decompressed input with its first bytes already read into `sample`.
pub(crate) struct Input {
    /// The first (up to [`SAMPLE_BYTES`]) decompressed bytes, without a UTF-8 byte order mark.
    pub sample: Vec<u8>,
    /// Everything: the sample again, then the rest of the stream.
    pub stream: Box<dyn Read + Send>,
    pub progress: Progress,
}

pub(crate) fn open_path(path: &Path) -> Result<Input, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open { path: path.to_owned(), source })?;
    let total = file.metadata().ok().map(|m| m.len());
    let gz_extension = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let input = open_reader(file, Progress::new(total))?;
    if gz_extension && !input.compressed {
        return Err(IngestError::NotGzip { path: path.to_owned() });
    }
    Ok(input.input)
}

pub(crate) struct Opened {
    pub input: Input,
    pub compressed: bool,
}

/// Wraps any reader: counts its bytes, decompresses it when it starts with the gzip magic bytes, and
/// reads the sample.
pub(crate) fn open_reader(reader: impl Read + Send + 'static, progress: Progress) -> Result<Opened, IngestError> {
    let counting = CountingReader { inner: reader, counter: progress.bytes_counter() };
    let mut buffered = BufReader::with_capacity(256 * 1024, counting);
    let head = buffered.fill_buf()?;
    let compressed = head.starts_with(&[0x1f, 0x8b]);
    let decompressed: Box<dyn Read + Send> =
        if compressed { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let mut sample_reader = decompressed.take(SAMPLE_BYTES);
    let mut sample = Vec::with_capacity(SAMPLE_BYTES as usize);
    sample_reader.read_to_end(&mut sample)?;
    let rest = sample_reader.into_inner();
    if sample.starts_with(b"\xEF\xBB\xBF") {
        sample.drain(..3);
    }
    let stream: Box<dyn Read + Send> = Box::new(Cursor::new(sample.clone()).chain(rest));
    Ok(Opened { input: Input { sample, stream, progress }, compressed })
}
