//! Spill files: Arrow IPC *file* format with a checksum trailer, read back zero-copy with mmap.
//!
//! Layout of a spill file:
//!
//! ```text
//! [Arrow IPC file: magic, schema, record batches, footer, magic]
//! [xxh3-64 of everything before this point: 8 bytes, little endian]
//! [trailer magic "SPFRAME1": 8 bytes]
//! ```
//!
//! The IPC file format (rather than the stream format DataFusion uses for its own spills) has a
//! footer that indexes every batch, so a file can be mapped into memory with `memmap2` and its
//! batches decoded *in place*: the arrays point into the mapping and nothing is copied. Buffers
//! are 64-byte aligned for that. When compression (LZ4 or Zstd) is configured the batches are
//! decompressed into fresh buffers instead, trading read CPU for disk bytes.
//!
//! The checksum is computed while writing, recorded both in the trailer and in the
//! [`SpillFile`] handle, and verified against both before any batch is decoded, so a file that
//! was truncated, overwritten or bit-flipped gives [`Error::Corrupt`] naming it, never wrong
//! data.
//!
//! Every byte written is charged to the session's [`DiskBudget`] first. Passing the cap gives
//! [`Error::SpillCapReached`]; a full disk gives [`Error::DiskFull`]. Either way the partial
//! file is deleted and its bytes refunded, so the session stays usable.

use std::fmt;
use std::fs::{self, File};
use std::hash::Hasher as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow_ipc::reader::{FileDecoder, read_footer_length};
use arrow_ipc::root_as_footer;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_ipc::{CompressionType, MetadataVersion};
use bytesize::ByteSize;
use twox_hash::XxHash3_64;

use crate::error::{Error, Result};

const TRAILER_MAGIC: &[u8; 8] = b"SPFRAME1";
const TRAILER_LEN: usize = 16;
/// Alignment of IPC buffers: what lets arrays point straight into the mapping.
const ALIGNMENT: usize = 64;

/// Compression of spill files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression: files are mapped and read zero-copy (the default).
    #[default]
    None,
    /// LZ4 frames: fast, about 2× smaller on typical columns; read by decompressing.
    Lz4,
    /// Zstandard: smaller and slower than LZ4; read by decompressing.
    Zstd,
}

impl Compression {
    fn ipc(self) -> Option<CompressionType> {
        match self {
            Compression::None => None,
            Compression::Lz4 => Some(CompressionType::LZ4_FRAME),
            Compression::Zstd => Some(CompressionType::ZSTD),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown spill compression '{other}'; expected none, lz4 or zstd"
            )),
        }
    }
}

/// The bytes of spill files a session has on disk, and the cap on them.
///
/// Shared by every spill writer of a session: the partition store's files and DataFusion's
/// own (sort runs, aggregate states), which [`DataFusionSpillFiles`](crate::DataFusionSpillFiles)
/// charges here, so the cap bounds the whole spill directory and reaching it is one error,
/// [`Error::SpillCapReached`], whichever layer wrote the byte.
#[derive(Debug, Default)]
pub struct DiskBudget {
    used: AtomicU64,
    datafusion: AtomicU64,
    cap: Option<u64>,
    /// Files written and bytes written since the budget was created (never decremented).
    files_written: AtomicU64,
    bytes_written: AtomicU64,
}

impl DiskBudget {
    /// A budget with an optional cap in bytes.
    pub fn new(cap: Option<u64>) -> Self {
        DiskBudget {
            cap,
            ..Default::default()
        }
    }

    /// The cap in bytes, if any.
    pub fn cap(&self) -> Option<u64> {
        self.cap
    }

    /// Bytes of spillframe's own spill files on disk now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes of DataFusion's spill files on disk now.
    pub fn datafusion_used(&self) -> u64 {
        self.datafusion.load(Ordering::Relaxed)
    }

    /// Spill files written by spillframe since the session started.
    pub fn files_written(&self) -> u64 {
        self.files_written.load(Ordering::Relaxed)
    }

    /// Bytes written to spill files by spillframe since the session started.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    fn charge(&self, bytes: u64, path: &Path) -> Result<()> {
        self.reserve(&self.used, bytes, path)?;
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Charges a DataFusion spill file's bytes. They are not counted in
    /// [`bytes_written`](Self::bytes_written): DataFusion's operators report their own.
    pub(crate) fn charge_datafusion(&self, bytes: u64, path: &Path) -> Result<()> {
        self.reserve(&self.datafusion, bytes, path)
    }

    /// Adds `bytes` to `counter`, unless the total would pass the cap.
    fn reserve(&self, counter: &AtomicU64, bytes: u64, path: &Path) -> Result<()> {
        counter.fetch_add(bytes, Ordering::Relaxed);
        if let Some(cap) = self.cap {
            let total = self.used() + self.datafusion_used();
            if total > cap {
                counter.fetch_sub(bytes, Ordering::Relaxed);
                return Err(Error::SpillCapReached {
                    cap,
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    fn refund(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Returns a deleted DataFusion spill file's bytes.
    pub(crate) fn refund_datafusion(&self, bytes: u64) {
        self.datafusion.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// What a [`ChargedWriter`] shares with its [`SpillWriter`], which cannot reach the sink once
/// the IPC writer owns (or has dropped) it.
#[derive(Default)]
struct WriteState {
    written: AtomicU64,
    /// The first failure, kept so that it can be reported precisely (the IPC writer flattens
    /// I/O errors into strings).
    failure: parking_lot::Mutex<Option<Error>>,
}

/// A `Write` that charges the budget, hashes and counts every byte on its way to the file.
struct ChargedWriter {
    file: BufWriter<File>,
    hasher: XxHash3_64,
    state: Arc<WriteState>,
    budget: Arc<DiskBudget>,
    path: PathBuf,
}

impl ChargedWriter {
    fn fail(&mut self, e: Error) -> io::Error {
        let io = io::Error::other(e.to_string());
        self.state.failure.lock().get_or_insert(e);
        io
    }
}

impl Write for ChargedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(e) = self.budget.charge(buf.len() as u64, &self.path) {
            return Err(self.fail(e));
        }
        // Charged before writing, so the count covers whatever may be on disk.
        self.state
            .written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.file.write_all(buf) {
            let err = io_error("cannot write spill file", &self.path, e);
            return Err(self.fail(err));
        }
        self.hasher.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Err(e) = self.file.flush() {
            let err = io_error("cannot write spill file", &self.path, e);
            return Err(self.fail(err));
        }
        Ok(())
    }
}

/// Maps an I/O error, singling out a full disk.
pub(crate) fn io_error(action: &'static str, path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        Error::DiskFull {
            path: path.to_path_buf(),
        }
    } else {
        Error::io(action, path, e)
    }
}

/// Writes one spill file. Dropping it without [`finish`](Self::finish) deletes the file.
pub struct SpillWriter {
    path: PathBuf,
    writer: Option<FileWriter<ChargedWriter>>,
    state: Arc<WriteState>,
    rows: u64,
    budget: Arc<DiskBudget>,
}

impl fmt::Debug for SpillWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl SpillWriter {
    /// Creates `path` (which must not exist) for batches of `schema`.
    pub fn create(
        path: PathBuf,
        schema: &SchemaRef,
        compression: Compression,
        budget: Arc<DiskBudget>,
    ) -> Result<Self> {
        let options = IpcWriteOptions::try_new(ALIGNMENT, false, MetadataVersion::V5)
            .and_then(|o| o.try_with_compression(compression.ipc()))
            .map_err(|e| Error::arrow(&path, e))?;
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error("cannot create spill file", &path, e))?;
        let state = Arc::new(WriteState::default());
        let sink = ChargedWriter {
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: XxHash3_64::with_seed(0),
            state: Arc::clone(&state),
            budget: Arc::clone(&budget),
            path: path.clone(),
        };
        let mut this = SpillWriter {
            path,
            writer: None,
            state,
            rows: 0,
            budget,
        };
        match FileWriter::try_new_with_options(sink, schema, options) {
            Ok(w) => this.writer = Some(w),
            Err(e) => return Err(this.fail_with(e)),
        }
        Ok(this)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.state.written.load(Ordering::Relaxed)
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Err(Error::arrow(
                &self.path,
                arrow::error::ArrowError::IpcError("the spill file is already finished".into()),
            ));
        };
        if let Err(e) = w.write(batch) {
            return Err(self.fail_with(e));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer and the checksum trailer, and returns the finished file.
    pub fn finish(mut self) -> Result<SpillFile> {
        let Some(mut w) = self.writer.take() else {
            return Err(Error::arrow(
                &self.path,
                arrow::error::ArrowError::IpcError("the spill file was discarded".into()),
            ));
        };
        if let Err(e) = w.finish() {
            return Err(self.fail_with(e));
        }
        let mut sink = match w.into_inner() {
            Ok(s) => s,
            Err(e) => return Err(self.fail_with(e)),
        };
        let checksum = sink.hasher.finish();
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[..8].copy_from_slice(&checksum.to_le_bytes());
        trailer[8..].copy_from_slice(TRAILER_MAGIC);
        // The trailer is not hashed (the hasher was read above) but it is charged and counted.
        if let Err(e) = sink.write_all(&trailer).and_then(|()| sink.flush()) {
            drop(sink);
            return Err(self.fail_with(e));
        }
        drop(sink);
        self.budget.files_written.fetch_add(1, Ordering::Relaxed);
        let path = std::mem::take(&mut self.path);
        let bytes = self.state.written.swap(0, Ordering::Relaxed);
        Ok(SpillFile {
            path,
            bytes,
            rows: self.rows,
            checksum,
            budget: Arc::clone(&self.budget),
        })
    }

    /// Discards the file and reports the most precise error available.
    fn fail_with(&mut self, e: impl fmt::Display) -> Error {
        let recorded = self.state.failure.lock().take();
        let err = recorded.unwrap_or_else(|| {
            Error::arrow(
                &self.path,
                arrow::error::ArrowError::IpcError(e.to_string()),
            )
        });
        self.discard();
        err
    }

    /// Deletes the partial file and refunds its bytes.
    fn discard(&mut self) {
        self.writer = None;
        self.budget
            .refund(self.state.written.swap(0, Ordering::Relaxed));
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            self.path = PathBuf::new();
        }
    }
}

impl Drop for SpillWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

/// A finished spill file. Dropping the handle deletes the file and refunds its bytes.
pub struct SpillFile {
    path: PathBuf,
    bytes: u64,
    rows: u64,
    checksum: u64,
    budget: Arc<DiskBudget>,
}

impl fmt::Debug for SpillFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillFile")
            .field("path", &self.path)
            .field("bytes", &ByteSize(self.bytes))
            .field("rows", &self.rows)
            .finish()
    }
}

impl SpillFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size on disk in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Rows stored.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Maps the file, verifies its checksum and decodes its batches (zero-copy when the file is
    /// not compressed: the arrays point into the mapping, which lives as long as they do).
    pub fn read(&self) -> Result<Vec<RecordBatch>> {
        self.read_range(0..usize::MAX)
    }

    /// Like [`read`](Self::read), for the batches at positions `batches` only (a file can hold
    /// several partitions' batches one after another).
    pub fn read_range(&self, batches: std::ops::Range<usize>) -> Result<Vec<RecordBatch>> {
        let corrupt = |reason: String| Error::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let file = File::open(&self.path)
            .map_err(|e| Error::io("cannot open spill file", &self.path, e))?;
        // SAFETY: spill files live in this session's private, owner-locked directory and are
        // never modified after `finish`; the mapping is read-only. Truncation by an outside
        // actor would be a bug outside this process's control, and the length and checksum
        // checks below catch any change made before the read.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::io("cannot map spill file", &self.path, e))?;
        let len = map.len();
        if len as u64 != self.bytes {
            return Err(corrupt(format!(
                "its size is {len} bytes, but {} were written",
                self.bytes
            )));
        }
        if len < TRAILER_LEN + 10 || &map[len - 8..] != TRAILER_MAGIC {
            return Err(corrupt("the checksum trailer is missing".into()));
        }
        let body_len = len - TRAILER_LEN;
        let stored = u64::from_le_bytes(map[body_len..body_len + 8].try_into().unwrap_or([0; 8]));
        let actual = XxHash3_64::oneshot_with_seed(0, &map[..body_len]);
        if stored != self.checksum || actual != self.checksum {
            return Err(corrupt(format!(
                "checksum mismatch (expected {:016x}, trailer {stored:016x}, data {actual:016x})",
                self.checksum
            )));
        }
        let whole = Buffer::from(bytes::Bytes::from_owner(map)).slice_with_length(0, body_len);
        let (schema, version, dictionaries, blocks) =
            read_footer(&whole).map_err(|e| corrupt(e.to_string()))?;
        drop(whole);
        // Each batch gets its own mapping of just its block, so that its arrays report their
        // own size (a shared whole-file mapping would make every batch look as big as the
        // file to the memory accounting), and the pages are released with the batch.
        let map_block = |block: &arrow_ipc::Block| -> Result<Buffer> {
            let len = block.bodyLength() as usize + block.metaDataLength() as usize;
            // SAFETY: as above; the block lies inside the checked file (see `read_footer`).
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset(block.offset() as u64)
                    .len(len)
                    .map(&file)
            }
            .map_err(|e| Error::io("cannot map spill file", &self.path, e))?;
            Ok(Buffer::from(bytes::Bytes::from_owner(map)))
        };
        let mut decoder = FileDecoder::new(schema, version);
        for block in &dictionaries {
            decoder
                .read_dictionary(block, &map_block(block)?)
                .map_err(|e| corrupt(e.to_string()))?;
        }
        let wanted = batches.start.min(blocks.len())..batches.end.min(blocks.len());
        let mut out = Vec::with_capacity(wanted.len());
        for block in &blocks[wanted] {
            if let Some(batch) = decoder
                .read_record_batch(block, &map_block(block)?)
                .map_err(|e| corrupt(e.to_string()))?
            {
                out.push(batch);
            }
        }
        Ok(out)
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %self.path.display(), "cannot delete spill file: {e}"),
        }
        self.budget.refund(self.bytes);
    }
}

/// The schema, metadata version and block index of an IPC file held in `buffer`; every block
/// is checked to lie inside the buffer.
#[allow(clippy::type_complexity)]
fn read_footer(
    buffer: &Buffer,
) -> std::result::Result<
    (
        SchemaRef,
        MetadataVersion,
        Vec<arrow_ipc::Block>,
        Vec<arrow_ipc::Block>,
    ),
    arrow::error::ArrowError,
> {
    use arrow::error::ArrowError;
    let len = buffer.len();
    if len < 10 {
        return Err(ArrowError::IpcError("file too short".into()));
    }
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&buffer[len - 10..]);
    let footer_len = read_footer_length(tail)?;
    let footer_start = (len - 10)
        .checked_sub(footer_len)
        .ok_or_else(|| ArrowError::IpcError("footer length exceeds the file".into()))?;
    let footer = root_as_footer(&buffer[footer_start..len - 10])
        .map_err(|e| ArrowError::IpcError(format!("invalid footer: {e}")))?;
    let schema = footer
        .schema()
        .ok_or_else(|| ArrowError::IpcError("the footer has no schema".into()))?;
    let schema = Arc::new(arrow_ipc::convert::fb_to_schema(schema));
    let check = |block: &arrow_ipc::Block| {
        let block_len = block.bodyLength() as usize + block.metaDataLength() as usize;
        let offset = usize::try_from(block.offset()).unwrap_or(usize::MAX);
        if offset.saturating_add(block_len) > footer_start {
            return Err(ArrowError::IpcError("a block lies outside the file".into()));
        }
        Ok(*block)
    };
    let dictionaries = footer
        .dictionaries()
        .iter()
        .flatten()
        .map(check)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let batches = footer
        .recordBatches()
        .iter()
        .flatten()
        .map(check)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, footer.version(), dictionaries, batches))
}
