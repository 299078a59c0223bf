//! rosbag2 bags without ROS: streaming reading of MCAP and sqlite3 (`.db3`, Humble's default)
//! storage (a bag folder with `metadata.yaml`, or a bare `.mcap` / `.db3` file), and writing an
//! MCAP bag that `ros2 bag play`, RViz (through play) and Foxglove read.
//!
//! Reading never holds the bag: [`BagReader::messages`] streams the requested topics one MCAP
//! chunk or one sqlite row at a time on a reader thread, a few messages ahead of the consumer
//! ([`PREFETCH_MESSAGES`]), so memory does not grow with the bag. Messages come in storage order:
//! MCAP file order (the order rosbag2 received and wrote them) and sqlite timestamp order (as
//! `ros2 bag play` reads `.db3`), file after file as `metadata.yaml` lists them.

pub mod convert;
mod mcap_read;
pub mod metadata;
pub mod replay;
mod sqlite_read;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

pub use mcap_read::MAX_RECORD_BYTES;
pub use metadata::{StorageFile, StorageKind};
pub use write::{BagWriter, ChunkCompression, WriterOptions};

/// Messages read ahead of the consumer by the reader thread.
pub const PREFETCH_MESSAGES: usize = 4;

/// Errors reading or writing bags.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a readable MCAP file: {source}")]
    Mcap { path: PathBuf, source: mcap::McapError },
    #[error("{path}: chunk {chunk} at byte {offset} is corrupted: CRC {calculated:08x} computed, {saved:08x} stored")]
    CorruptChunk { path: PathBuf, chunk: usize, offset: u64, saved: u32, calculated: u32 },
    #[error("{path}: chunk {chunk} at byte {offset}: {source}")]
    Chunk { path: PathBuf, chunk: usize, offset: u64, source: mcap::McapError },
    #[error("{path}: the file ends inside the record at byte {offset} (a recording that was not closed?); the messages before it were read")]
    Truncated { path: PathBuf, offset: u64 },
    #[error("{path}: the record at byte {offset} claims {len} bytes, over the {limit}-byte limit")]
    TooLarge { path: PathBuf, offset: u64, len: u64, limit: usize },
    #[error("{path}: inconsistent MCAP file: {what}")]
    BadIndex { path: PathBuf, what: String },
    #[error("{path}: bad rosbag2 metadata.yaml: {what}")]
    Metadata { path: PathBuf, what: String },
    #[error("{}: lists `{entry}`: {why}", bag.join("metadata.yaml").display())]
    BadPath { bag: PathBuf, entry: String, why: String },
    #[error("{path}: unsupported {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: not a readable rosbag2 sqlite3 file: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: no .mcap or .db3 file (expected a rosbag2 folder with metadata.yaml, or a .mcap/.db3 file)")]
    NoStorage { path: PathBuf },
    #[error("topic {topic} is not in the bag; topics: {available}")]
    MissingTopic { topic: String, available: String },
    #[error("topic {topic}: message encoding {encoding}, expected cdr")]
    Encoding { topic: String, encoding: String },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: mcap::McapError },
    #[error("no ros2msg schema for {0} in msg/")]
    Schema(String),
    #[error("the bag reader thread stopped unexpectedly")]
    ReaderStopped,
}

impl BagError {
    /// Whether the stream goes on after this error (with the next storage file).
    pub fn is_truncation(&self) -> bool {
        matches!(self, BagError::Truncated { .. })
    }
}

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagMessage {
    pub topic: String,
    /// The ROS type, e.g. `sensor_msgs/msg/Image` (the MCAP schema name).
    pub type_name: String,
    /// Receive time as recorded (ns since the epoch).
    pub log_time_ns: u64,
    /// CDR bytes with the encapsulation header.
    pub data: Vec<u8>,
}

/// A topic as the bag lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub type_name: String,
    pub message_count: u64,
}

/// The topics a stream delivers: all of them, or a set.
#[derive(Debug, Clone)]
pub(crate) struct Wanted(Option<BTreeSet<String>>);

impl Wanted {
    fn new(topics: &[&str]) -> Self {
        Wanted((!topics.is_empty()).then(|| topics.iter().map(|t| (*t).to_owned()).collect()))
    }

    pub(crate) fn contains(&self, topic: &str) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(topic))
    }
}

/// The storage files of a bag path: the checked files of `metadata.yaml`, else the `.mcap` /
/// `.db3` files of the folder in name order, or the file itself.
pub fn storage_files(path: &Path) -> Result<Vec<PathBuf>, BagError> {
    Ok(storage(path)?.0.into_iter().map(|f| f.path).collect())
}

fn storage(path: &Path) -> Result<(Vec<StorageFile>, Option<metadata::BagMetadata>), BagError> {
    let io = |source| BagError::Io { path: path.into(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        let kind = StorageKind::of(path).unwrap_or(StorageKind::Mcap);
        return Ok((vec![StorageFile { path: path.into(), kind }], None));
    }
    if !meta.is_dir() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file or folder")));
    }
    let meta = metadata::read(path)?;
    let files = match &meta {
        Some(m) if !m.files.is_empty() => m.files.clone(),
        _ => metadata::list_storage(path)?,
    };
    if files.is_empty() {
        return Err(BagError::NoStorage { path: path.into() });
    }
    Ok((files, meta))
}

/// An opened bag: its storage files and topics. Reading is [`BagReader::messages`].
#[derive(Debug, Clone)]
pub struct BagReader {
    files: Vec<StorageFile>,
    topics: Vec<TopicInfo>,
    topics_complete: bool,
    notes: Vec<String>,
}

impl BagReader {
    /// Opens a bag folder or storage file: checks `metadata.yaml`, reads each MCAP file's summary
    /// and each `.db3` file's topic table. Reads no messages.
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let (files, meta) = storage(path)?;
        let mut by_name: BTreeMap<String, TopicInfo> = BTreeMap::new();
        let mut complete = true;
        let mut notes = Vec::new();
        for f in &files {
            let topics = match f.kind {
                StorageKind::Mcap => {
                    let m = mcap_read::McapFile::open(&f.path)?;
                    if let Some(why) = &m.linear_reason {
                        notes.push(format!("{}: {why}: read from start to end", f.path.display()));
                    }
                    m.topics()
                }
                StorageKind::Sqlite3 => Some(sqlite_read::topics(&f.path)?),
            };
            match topics {
                Some(list) => {
                    for t in list {
                        by_name.entry(t.name.clone()).and_modify(|e| e.message_count += t.message_count).or_insert(t);
                    }
                }
                None => complete = false,
            }
        }
        // metadata.yaml has the counts of the whole bag, also when a file lacks a summary.
        if let Some(m) = meta.filter(|m| !m.topics.is_empty()) {
            by_name = m.topics.into_iter().map(|t| (t.name.clone(), t)).collect();
            complete = true;
        }
        Ok(Self { files, topics: by_name.into_values().collect(), topics_complete: complete, notes })
    }

    pub fn files(&self) -> &[StorageFile] {
        &self.files
    }

    /// The topics known before reading, in name order.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// False when an MCAP file has neither a summary nor `metadata.yaml` counts: then
    /// [`BagReader::topics`] may miss topics that only a full read would find.
    pub fn topics_complete(&self) -> bool {
        self.topics_complete
    }

    /// Remarks on how the bag is read (e.g. a file without summary read linearly).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Every topic of `wanted` must be in the bag (when the topic list is complete); a missing
    /// one is an error listing the bag's topics.
    pub fn check_topics(&self, wanted: &[&str]) -> Result<(), BagError> {
        if !self.topics_complete {
            return Ok(());
        }
        for t in wanted {
            if self.topic(t).is_none() {
                let available: Vec<String> =
                    self.topics.iter().map(|i| format!("{} ({})", i.name, i.type_name)).collect();
                let available = if available.is_empty() { "none".to_string() } else { available.join(", ") };
                return Err(BagError::MissingTopic { topic: (*t).into(), available });
            }
        }
        Ok(())
    }

    /// The number of messages on `topics`, when known before reading.
    pub fn message_count(&self, topics: &[&str]) -> Option<u64> {
        self.topics_complete
            .then(|| self.topics.iter().filter(|t| topics.contains(&t.name.as_str())).map(|t| t.message_count).sum())
    }

    /// Streams the messages of `topics` (all topics when empty) in storage order on a reader
    /// thread a few messages ahead. After an error the stream ends, except after
    /// [`BagError::Truncated`], which ends only that storage file.
    pub fn messages(&self, topics: &[&str]) -> Messages {
        let wanted = Wanted::new(topics);
        let files = self.files.clone();
        let (tx, rx) = mpsc::sync_channel(PREFETCH_MESSAGES);
        let spawned = std::thread::Builder::new().name("patrack-bag-reader".into()).spawn(move || {
            let finished = stream_files(&files, &wanted, &mut |item| tx.send(item).is_ok());
            if finished {
                let _ = tx.send(Item::End);
            }
        });
        match spawned {
            Ok(_) => Messages { rx: Some(rx) },
            Err(source) => {
                let (tx, rx) = mpsc::sync_channel(1);
                let _ = tx.send(Item::Error(BagError::Io { path: "bag reader thread".into(), source }));
                Messages { rx: Some(rx) }
            }
        }
    }

    /// Reads every message of the bag on the calling thread, as [`BagReader::messages`] does,
    /// and counts them; the first error that ends the reading is returned (a truncated file
    /// after its complete messages, as there). What `patrack bag` checks and the fuzz targets run.
    pub fn read_all(&self) -> Result<u64, BagError> {
        let (mut count, mut first_error) = (0u64, None);
        stream_files(&self.files, &Wanted::new(&[]), &mut |item| match item {
            Item::Message(_) => {
                count += 1;
                true
            }
            Item::Error(e) => {
                first_error.get_or_insert(e);
                true
            }
            Item::End => true,
        });
        first_error.map_or(Ok(count), Err)
    }
}

/// Reads `files` in order, handing each message and error to `emit` (which returns false to
/// stop); a truncated file ends only itself. True when every file was read to its end.
fn stream_files(files: &[StorageFile], wanted: &Wanted, emit: &mut dyn FnMut(Item) -> bool) -> bool {
    for f in files {
        let mut stopped = false;
        let result = {
            let mut on_message = |m: BagMessage| {
                let go_on = emit(Item::Message(m));
                stopped |= !go_on;
                go_on
            };
            match f.kind {
                StorageKind::Mcap => mcap_read::McapFile::open(&f.path).and_then(|m| m.stream(wanted, &mut on_message)),
                StorageKind::Sqlite3 => sqlite_read::stream(&f.path, wanted, &mut on_message),
            }
        };
        if stopped {
            return false;
        }
        if let Err(e) = result {
            let go_on = e.is_truncation();
            if !emit(Item::Error(e)) || !go_on {
                return false;
            }
        }
    }
    true
}

enum Item {
    Message(BagMessage),
    Error(BagError),
    End,
}

/// The message stream of [`BagReader::messages`]. Dropping it stops the reader thread.
pub struct Messages {
    rx: Option<mpsc::Receiver<Item>>,
}

impl Iterator for Messages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rx.as_ref()?.recv();
        match item {
            Ok(Item::Message(m)) => Some(Ok(m)),
            Ok(Item::Error(e)) => {
                if !e.is_truncation() {
                    self.rx = None;
                }
                Some(Err(e))
            }
            Ok(Item::End) => {
                self.rx = None;
                None
            }
            // The thread ended without saying so: it panicked.
            Err(mpsc::RecvError) => {
                self.rx = None;
                Some(Err(BagError::ReaderStopped))
            }
        }
    }
}
