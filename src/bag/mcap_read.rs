//! Streaming MCAP reading: one chunk at a time, never the whole file.
//!
//! With a summary section (a file that was closed properly), the chunk indexes say where each
//! chunk is and which channels it holds, so chunks without a requested topic are never read.
//! Without one (a recording that was killed, or a writer that skips the summary) the file is
//! scanned record by record from the start; a record cut off by the end of the file is reported
//! as [`BagError::Truncated`] after every complete message before it.
//!
//! Each chunk is read with `pread` into a buffer, decompressed, and its CRC checked before any of
//! its messages is handed on, so a corrupted chunk never reaches the tracker and is reported with
//! its number and byte offset. Messages come out in file order, which is the order rosbag2 wrote
//! them in (the order they were received).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mcap::records::{op, ChunkIndex};
use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions, SummaryReadEvent, SummaryReader};

use super::{BagError, BagMessage, TopicInfo, Wanted};

/// Largest chunk (compressed or not) or record read, in bytes. Far above what recorders write
/// (rosbag2 closes a chunk at about 1 MiB, so a chunk is about one large image); it exists so a
/// corrupted length field cannot make the reader allocate gigabytes.
pub const MAX_RECORD_BYTES: usize = 512 * 1024 * 1024;

const MAGIC: &[u8] = mcap::MAGIC;
/// opcode (1) + record length (8).
const RECORD_PREFIX_BYTES: u64 = 9;

#[derive(Debug, Clone)]
struct ChannelInfo {
    topic: String,
    type_name: String,
    encoding: String,
}

/// An MCAP storage file, opened with its summary when it has a usable one.
pub struct McapFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// From the summary, when usable.
    index: Option<Index>,
    /// Why the file is read linearly, when it is.
    pub linear_reason: Option<String>,
}

impl McapFile {
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let io = |source| BagError::Io { path: path.into(), source };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut magic = [0u8; 8];
        if len < MAGIC.len() as u64 || file.read_exact_at(&mut magic, 0).is_err() || magic != MAGIC {
            return Err(BagError::Mcap { path: path.into(), source: mcap::McapError::BadMagic });
        }
        let (index, linear_reason) = match read_summary(&mut file, len) {
            Ok(Some(summary)) => match usable_index(&summary, len) {
                Ok(index) => (Some(index), None),
                Err(why) => (None, Some(why)),
            },
            Ok(None) => (None, Some("no summary section".to_string())),
            Err(e) => (None, Some(format!("no readable summary ({e}); the recording may not have been closed"))),
        };
        Ok(Self { path: path.into(), file, len, index, linear_reason })
    }

    /// The topics of the summary (`None` without one: only a full scan would tell).
    pub fn topics(&self) -> Option<Vec<TopicInfo>> {
        let Index { channels, counts, .. } = self.index.as_ref()?;
        let mut ids: Vec<&u16> = channels.keys().collect();
        ids.sort();
        Some(
            ids.into_iter()
                .map(|id| TopicInfo {
                    name: channels[id].topic.clone(),
                    type_name: channels[id].type_name.clone(),
                    message_count: counts.get(id).copied().unwrap_or(0),
                })
                .collect(),
        )
    }

    /// Streams the messages of the `wanted` topics to `emit` in file order, until the file ends
    /// or `emit` returns false. Messages of other topics are not copied (nor, with a summary,
    /// read).
    pub fn stream(&self, wanted: &Wanted, emit: &mut dyn FnMut(BagMessage) -> bool) -> Result<(), BagError> {
        match &self.index {
            Some(index) => self.stream_indexed(&index.channels, &index.chunks, wanted, emit),
            None => self.stream_linear(wanted, emit),
        }
    }

    fn stream_indexed(
        &self,
        channels: &HashMap<u16, ChannelInfo>,
        chunks: &[ChunkIndex],
        wanted: &Wanted,
        emit: &mut dyn FnMut(BagMessage) -> bool,
    ) -> Result<(), BagError> {
        let wanted_ids: Vec<u16> =
            channels.iter().filter(|(_, c)| wanted.contains(&c.topic)).map(|(id, _)| *id).collect();
        for (id, c) in channels {
            if wanted_ids.contains(id) && c.encoding != "cdr" {
                return Err(BagError::Encoding { topic: c.topic.clone(), encoding: c.encoding.clone() });
            }
        }
        let mut state = ChunkState { channels: channels.clone(), schemas: HashMap::new(), from_summary: true };
        for (n, chunk) in chunks.iter().enumerate() {
            // A chunk without message indexes may hold anything, so it is read.
            let relevant = chunk.message_index_offsets.is_empty()
                || chunk.message_index_offsets.keys().any(|id| wanted_ids.contains(id));
            if !relevant {
                continue;
            }
            let body_len = chunk.chunk_length - RECORD_PREFIX_BYTES;
            let msgs = self.read_chunk(chunk.chunk_start_offset, body_len, n + 1, &mut state, wanted)?;
            for m in msgs {
                if !emit(m) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn stream_linear(&self, wanted: &Wanted, emit: &mut dyn FnMut(BagMessage) -> bool) -> Result<(), BagError> {
        let mut state = ChunkState { channels: HashMap::new(), schemas: HashMap::new(), from_summary: false };
        let mut pos = MAGIC.len() as u64;
        let mut chunk_no = 0;
        while pos < self.len {
            let truncated = || BagError::Truncated { path: self.path.clone(), offset: pos };
            if self.len - pos < RECORD_PREFIX_BYTES {
                return Err(truncated());
            }
            let mut prefix = [0u8; RECORD_PREFIX_BYTES as usize];
            self.file
                .read_exact_at(&mut prefix, pos)
                .map_err(|source| BagError::Io { path: self.path.clone(), source })?;
            let opcode = prefix[0];
            let body_len = u64::from_le_bytes(prefix[1..].try_into().unwrap_or_default());
            if body_len > self.len - pos - RECORD_PREFIX_BYTES {
                return Err(truncated());
            }
            match opcode {
                op::CHUNK => {
                    chunk_no += 1;
                    for m in self.read_chunk(pos, body_len, chunk_no, &mut state, wanted)? {
                        if !emit(m) {
                            return Ok(());
                        }
                    }
                }
                op::SCHEMA | op::CHANNEL | op::MESSAGE => {
                    let body = self.read_body(pos, body_len)?;
                    let parsed = mcap::parse_record(opcode, &body)
                        .map_err(|source| BagError::Mcap { path: self.path.clone(), source })?;
                    if let Some(m) = state.record(parsed, wanted).map_err(|e| e.at(&self.path))? {
                        if !emit(m) {
                            return Ok(());
                        }
                    }
                }
                // The data section ends here; the summary after it repeats what was read.
                op::DATA_END | op::FOOTER => return Ok(()),
                _ => {}
            }
            pos += RECORD_PREFIX_BYTES + body_len;
        }
        Ok(())
    }

    fn read_body(&self, pos: u64, body_len: u64) -> Result<Vec<u8>, BagError> {
        let len = self.checked_len(pos, body_len)?;
        let mut body = vec![0u8; len];
        self.file
            .read_exact_at(&mut body, pos + RECORD_PREFIX_BYTES)
            .map_err(|source| BagError::Io { path: self.path.clone(), source })?;
        Ok(body)
    }

    fn checked_len(&self, pos: u64, body_len: u64) -> Result<usize, BagError> {
        usize::try_from(body_len).ok().filter(|l| *l <= MAX_RECORD_BYTES).ok_or(BagError::TooLarge {
            path: self.path.clone(),
            offset: pos,
            len: body_len,
            limit: MAX_RECORD_BYTES,
        })
    }

    /// Reads, decompresses and CRC-checks the chunk record at `pos`, then returns its messages
    /// of the wanted topics.
    fn read_chunk(
        &self,
        pos: u64,
        body_len: u64,
        chunk_no: usize,
        state: &mut ChunkState,
        wanted: &Wanted,
    ) -> Result<Vec<BagMessage>, BagError> {
        let body = self.checked_len(pos, body_len)?;
        let total = body + RECORD_PREFIX_BYTES as usize;
        let options = LinearReaderOptions::default()
            .with_skip_start_magic(true)
            .with_skip_end_magic(true)
            .with_prevalidate_chunk_crcs(true)
            .with_record_length_limit(MAX_RECORD_BYTES);
        let mut reader = LinearReader::new_with_options(options);
        let buf = reader.insert(total);
        self.file.read_exact_at(buf, pos).map_err(|source| BagError::Io { path: self.path.clone(), source })?;
        if buf[0] != op::CHUNK || u64::from_le_bytes(buf[1..9].try_into().unwrap_or_default()) != body_len {
            return Err(BagError::BadIndex {
                path: self.path.clone(),
                what: format!("no chunk record of {body_len} bytes at byte {pos} (chunk {chunk_no})"),
            });
        }
        if let Some(problem) = uncompressed_framing_problem(&buf[RECORD_PREFIX_BYTES as usize..]) {
            return Err(BagError::BadIndex {
                path: self.path.clone(),
                what: format!("chunk {chunk_no} at byte {pos}: {problem}"),
            });
        }
        reader.notify_read(total);
        let chunk_err = |source: mcap::McapError| match source {
            mcap::McapError::BadChunkCrc { saved, calculated } => {
                BagError::CorruptChunk { path: self.path.clone(), chunk: chunk_no, offset: pos, saved, calculated }
            }
            source => BagError::Chunk { path: self.path.clone(), chunk: chunk_no, offset: pos, source },
        };
        let mut out = Vec::new();
        loop {
            let at_eof = match reader.next_event() {
                None => break,
                Some(Err(e)) => return Err(chunk_err(e)),
                Some(Ok(LinearReadEvent::ReadRequest(_))) => true,
                Some(Ok(LinearReadEvent::Record { opcode, data })) => {
                    let parsed = mcap::parse_record(opcode, data).map_err(chunk_err)?;
                    if let Some(m) = state.record(parsed, wanted).map_err(|e| e.at(&self.path))? {
                        out.push(m);
                    }
                    false
                }
            };
            if at_eof {
                // The whole record was inserted; a request for more means it ended early.
                reader.notify_read(0);
            }
        }
        Ok(out)
    }
}

/// Why the records of an uncompressed chunk (`body`: the chunk record after its opcode and
/// length) do not tile its records section exactly, or `None` when they do (or the chunk is
/// compressed: the decompressor bounds those). The mcap crate (0.26) subtracts a record's length
/// from the bytes left in the chunk without checking it (an overflow, a panic where overflow
/// checks are on), so the framing is checked here first.
fn uncompressed_framing_problem(body: &[u8]) -> Option<String> {
    let u32_at = |at: usize| body.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
    let u64_at = |at: usize| body.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    // message_start_time, message_end_time, uncompressed_size (u64 each), uncompressed_crc (u32)
    let compression_len = u32_at(28)? as usize;
    let records_at = 32usize.checked_add(compression_len)?;
    if compression_len != 0 {
        return None;
    }
    let records_len = u64_at(records_at)?;
    let records = &body[records_at + 8..];
    if records_len > records.len() as u64 {
        return Some(format!("its records section declares {records_len} bytes, the chunk holds {}", records.len()));
    }
    let records = &records[..records_len as usize];
    let mut at = 0usize;
    while at < records.len() {
        let left = records.len() - at;
        let Some(len) = records
            .get(at + 1..at + RECORD_PREFIX_BYTES as usize)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        else {
            return Some(format!("a record header at offset {at} is cut off by the chunk's end"));
        };
        if len > (left - RECORD_PREFIX_BYTES as usize) as u64 {
            return Some(format!(
                "a record of {len} bytes at offset {at} runs past the chunk's end ({left} bytes left)"
            ));
        }
        at += RECORD_PREFIX_BYTES as usize + len as usize;
    }
    None
}

/// Channels and schemas seen so far (from the summary, or accumulated in a linear scan).
struct ChunkState {
    channels: HashMap<u16, ChannelInfo>,
    schemas: HashMap<u16, String>,
    /// With a summary, channel records inside chunks repeat what is known.
    from_summary: bool,
}

/// A record problem before the file path is attached.
enum RecordError {
    UnknownChannel(u16),
    UnknownSchema { channel: String, schema_id: u16 },
    Encoding { topic: String, encoding: String },
}

impl RecordError {
    fn at(self, path: &Path) -> BagError {
        match self {
            RecordError::UnknownChannel(id) => BagError::BadIndex {
                path: path.into(),
                what: format!("a message on channel {id}, which was never defined"),
            },
            RecordError::UnknownSchema { channel, schema_id } => BagError::BadIndex {
                path: path.into(),
                what: format!("channel {channel} refers to schema {schema_id}, which was never defined"),
            },
            RecordError::Encoding { topic, encoding } => BagError::Encoding { topic, encoding },
        }
    }
}

impl ChunkState {
    fn record(
        &mut self,
        record: mcap::records::Record<'_>,
        wanted: &Wanted,
    ) -> Result<Option<BagMessage>, RecordError> {
        use mcap::records::Record;
        match record {
            Record::Schema { header, .. } if !self.from_summary => {
                self.schemas.insert(header.id, header.name);
            }
            Record::Channel(c) if !self.from_summary => {
                let type_name = match c.schema_id {
                    0 => String::new(),
                    id => self
                        .schemas
                        .get(&id)
                        .cloned()
                        .ok_or(RecordError::UnknownSchema { channel: c.topic.clone(), schema_id: id })?,
                };
                if wanted.contains(&c.topic) && c.message_encoding != "cdr" {
                    return Err(RecordError::Encoding { topic: c.topic, encoding: c.message_encoding });
                }
                self.channels.insert(c.id, ChannelInfo { topic: c.topic, type_name, encoding: c.message_encoding });
            }
            Record::Message { header, data } => {
                let channel =
                    self.channels.get(&header.channel_id).ok_or(RecordError::UnknownChannel(header.channel_id))?;
                if wanted.contains(&channel.topic) {
                    return Ok(Some(BagMessage {
                        topic: channel.topic.clone(),
                        type_name: channel.type_name.clone(),
                        log_time_ns: header.log_time,
                        data: data.into_owned(),
                    }));
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

/// Reads the summary section through the footer (two short reads and a seek), or `None`.
fn read_summary(file: &mut File, len: u64) -> Result<Option<mcap::Summary>, mcap::McapError> {
    let options =
        mcap::sans_io::SummaryReaderOptions::default().with_file_size(len).with_record_length_limit(MAX_RECORD_BYTES);
    let mut reader = SummaryReader::new_with_options(options);
    while let Some(event) = reader.next_event() {
        match event? {
            SummaryReadEvent::ReadRequest(n) => {
                let read = file.read(reader.insert(n))?;
                reader.notify_read(read);
            }
            SummaryReadEvent::SeekRequest(to) => {
                let pos = file.seek(to)?;
                reader.notify_seeked(pos);
            }
        }
    }
    Ok(reader.finish())
}

/// What the summary says: channels by id, chunk indexes in file order, message counts by channel.
struct Index {
    channels: HashMap<u16, ChannelInfo>,
    chunks: Vec<ChunkIndex>,
    counts: HashMap<u16, u64>,
}

/// The summary's channels and chunk indexes in file order, checked against the file size; an
/// error says why the summary cannot be used (then the file is read linearly).
fn usable_index(summary: &mcap::Summary, len: u64) -> Result<Index, String> {
    if summary.chunk_indexes.is_empty() {
        // Messages outside chunks are not indexed.
        return Err("no chunk indexes in the summary".into());
    }
    if let Some(stats) = &summary.stats {
        if stats.chunk_count as usize != summary.chunk_indexes.len() {
            return Err(format!(
                "the summary lists {} chunk indexes for {} chunks",
                summary.chunk_indexes.len(),
                stats.chunk_count
            ));
        }
    }
    let mut chunks = summary.chunk_indexes.clone();
    chunks.sort_by_key(|c| c.chunk_start_offset);
    for c in &chunks {
        let end = c.chunk_start_offset.checked_add(c.chunk_length);
        if c.chunk_length < RECORD_PREFIX_BYTES || end.is_none_or(|e| e > len) {
            return Err(format!("a chunk index points past the end of the file (byte {})", c.chunk_start_offset));
        }
    }
    let channels = summary
        .channels
        .iter()
        .map(|(id, c)| {
            let type_name = c.schema.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            (*id, ChannelInfo { topic: c.topic.clone(), type_name, encoding: c.message_encoding.clone() })
        })
        .collect();
    let counts = summary.stats.as_ref().map(|s| s.channel_message_counts.iter().map(|(k, v)| (*k, *v)).collect());
    Ok(Index { channels, chunks, counts: counts.unwrap_or_default() })
}
