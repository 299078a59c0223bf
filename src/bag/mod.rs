//! rosbag2 bags without ROS: reading MCAP and sqlite3 (`.db3`, Humble's default) storage (a bag
//! folder with `metadata.yaml`, or a bare `.mcap` / `.db3` file) and writing an MCAP bag that
//! `ros2 bag play`, RViz (through play) and Foxglove read: `ros2msg` schemas from `msg/`, `cdr`
//! messages, a rosbag2 `metadata.yaml`.

pub mod replay;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Errors reading or writing bags.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a readable MCAP file: {source}")]
    Mcap { path: PathBuf, source: mcap::McapError },
    #[error("{path}: bad rosbag2 metadata.yaml: {what}")]
    Metadata { path: PathBuf, what: String },
    #[error("{path}: not a readable rosbag2 sqlite3 file: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: no .mcap or .db3 file (expected a rosbag2 folder with metadata.yaml, or a .mcap/.db3 file)")]
    NoStorage { path: PathBuf },
    #[error("topic {topic} is not in the bag; topics: {available}")]
    MissingTopic { topic: String, available: String },
    #[error("topic {topic}: message encoding {encoding:?}, expected cdr")]
    Encoding { topic: String, encoding: String },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: mcap::McapError },
    #[error("no ros2msg schema for {0} in msg/")]
    Schema(String),
}

/// One recorded message.
#[derive(Debug, Clone)]
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

/// The storage files of a bag path: the `.mcap` / `.db3` files of a bag folder (from `metadata.yaml`
/// when present, else by extension, in name order) or the file itself.
pub fn storage_files(path: &Path) -> Result<Vec<PathBuf>, BagError> {
    let io = |source| BagError::Io { path: path.into(), source };
    if path.is_file() {
        return Ok(vec![path.into()]);
    }
    if !path.is_dir() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::NotFound, "no such bag file or folder")));
    }
    let meta = path.join("metadata.yaml");
    if meta.is_file() {
        let text = std::fs::read_to_string(&meta).map_err(|source| BagError::Io { path: meta.clone(), source })?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| BagError::Metadata { path: meta.clone(), what: e.to_string() })?;
        let info = &doc["rosbag2_bagfile_information"];
        if let Some(files) = info["relative_file_paths"].as_sequence() {
            let files: Vec<PathBuf> = files.iter().filter_map(|f| f.as_str()).map(|f| path.join(f)).collect();
            if !files.is_empty() {
                return Ok(files);
            }
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("mcap" | "db3")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BagError::NoStorage { path: path.into() });
    }
    Ok(files)
}

/// Reads all messages of `topics` (all topics when empty) from a bag, in storage order. Every
/// requested topic must exist; a missing one is an error listing the bag's topics.
pub fn read_messages(path: &Path, topics: &[&str]) -> Result<(Vec<BagMessage>, Vec<TopicInfo>), BagError> {
    let mut out = Vec::new();
    let mut infos: BTreeMap<String, TopicInfo> = BTreeMap::new();
    for file in storage_files(path)? {
        if file.extension().and_then(|e| e.to_str()) == Some("db3") {
            read_sqlite(&file, topics, &mut infos, &mut out)?;
            continue;
        }
        let bytes = std::fs::read(&file).map_err(|source| BagError::Io { path: file.clone(), source })?;
        let stream =
            mcap::MessageStream::new(&bytes).map_err(|source| BagError::Mcap { path: file.clone(), source })?;
        for msg in stream {
            let msg = msg.map_err(|source| BagError::Mcap { path: file.clone(), source })?;
            let type_name = msg.channel.schema.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            let info = infos.entry(msg.channel.topic.clone()).or_insert_with(|| TopicInfo {
                name: msg.channel.topic.clone(),
                type_name: type_name.clone(),
                message_count: 0,
            });
            info.message_count += 1;
            if !topics.is_empty() && !topics.contains(&msg.channel.topic.as_str()) {
                continue;
            }
            if msg.channel.message_encoding != "cdr" {
                return Err(BagError::Encoding {
                    topic: msg.channel.topic.clone(),
                    encoding: msg.channel.message_encoding.clone(),
                });
            }
            out.push(BagMessage {
                topic: msg.channel.topic.clone(),
                type_name,
                log_time_ns: msg.log_time,
                data: msg.data.into_owned(),
            });
        }
    }
    for t in topics {
        if !infos.contains_key(*t) {
            let available: Vec<String> = infos.values().map(|i| format!("{} ({})", i.name, i.type_name)).collect();
            let available = if available.is_empty() { "none".to_string() } else { available.join(", ") };
            return Err(BagError::MissingTopic { topic: (*t).into(), available });
        }
    }
    Ok((out, infos.into_values().collect()))
}

/// The messages of a rosbag2 sqlite3 file (tables `topics` and `messages`, the same in every
/// distro since Foxy), in time order as `ros2 bag play` reads them.
fn read_sqlite(
    file: &Path,
    topics: &[&str],
    infos: &mut BTreeMap<String, TopicInfo>,
    out: &mut Vec<BagMessage>,
) -> Result<(), BagError> {
    let serr = |source| BagError::Sqlite { path: file.into(), source };
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = rusqlite::Connection::open_with_flags(file, flags).map_err(serr)?;
    let mut by_id: BTreeMap<i64, (String, String)> = BTreeMap::new();
    {
        let mut stmt = db.prepare("SELECT id, name, type, serialization_format FROM topics").map_err(serr)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })
            .map_err(serr)?;
        for row in rows {
            let (id, name, type_name, format) = row.map_err(serr)?;
            if format != "cdr" && (topics.is_empty() || topics.contains(&name.as_str())) {
                return Err(BagError::Encoding { topic: name, encoding: format });
            }
            infos.entry(name.clone()).or_insert_with(|| TopicInfo {
                name: name.clone(),
                type_name: type_name.clone(),
                message_count: 0,
            });
            by_id.insert(id, (name, type_name));
        }
    }
    let mut stmt = db.prepare("SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp, id").map_err(serr)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)))
        .map_err(serr)?;
    for row in rows {
        let (topic_id, stamp, data) = row.map_err(serr)?;
        let Some((name, type_name)) = by_id.get(&topic_id) else {
            // A message of an undeclared topic: rosbag2 itself skips those.
            continue;
        };
        if let Some(info) = infos.get_mut(name) {
            info.message_count += 1;
        }
        if !topics.is_empty() && !topics.contains(&name.as_str()) {
            continue;
        }
        out.push(BagMessage {
            topic: name.clone(),
            type_name: type_name.clone(),
            log_time_ns: stamp.max(0) as u64,
            data,
        });
    }
    Ok(())
}

/// Writes a rosbag2 bag folder: `<dir>/<name>_0.mcap` and `metadata.yaml` (format version 8,
/// as PyPI rosbags and Jazzy write it).
pub struct BagWriter {
    dir: PathBuf,
    file_name: String,
    mcap: mcap::Writer<BufWriter<std::fs::File>>,
    channels: BTreeMap<String, (u16, String, u64)>,
    sequence: u32,
    start_ns: Option<u64>,
    end_ns: u64,
}

impl BagWriter {
    /// Creates the bag folder (it must not exist yet, as with `ros2 bag record -o`).
    pub fn create(dir: &Path) -> Result<Self, BagError> {
        let io = |source| BagError::Io { path: dir.into(), source };
        if dir.exists() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "output bag folder exists")));
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let stem = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bag".into());
        let file_name = format!("{stem}_0.mcap");
        let path = dir.join(&file_name);
        let file = std::fs::File::create(&path).map_err(|source| BagError::Io { path: path.clone(), source })?;
        let mcap = mcap::WriteOptions::new()
            .profile("ros2")
            .library("patrack")
            .create(BufWriter::new(file))
            .map_err(|source| BagError::Write { path: path.clone(), source })?;
        Ok(Self { dir: dir.into(), file_name, mcap, channels: BTreeMap::new(), sequence: 0, start_ns: None, end_ns: 0 })
    }

    fn mcap_path(&self) -> PathBuf {
        self.dir.join(&self.file_name)
    }

    /// Adds a topic of `type_name` (schema text from `msg/`).
    pub fn add_topic(&mut self, topic: &str, type_name: &str) -> Result<(), BagError> {
        let schema = crate::ros::msgs::ros2msg_schema(type_name).ok_or_else(|| BagError::Schema(type_name.into()))?;
        let path = self.mcap_path();
        let werr = |source| BagError::Write { path: path.clone(), source };
        let schema_id = self.mcap.add_schema(type_name, "ros2msg", schema.as_bytes()).map_err(werr)?;
        let channel_id = self.mcap.add_channel(schema_id, topic, "cdr", &BTreeMap::new()).map_err(werr)?;
        self.channels.insert(topic.into(), (channel_id, type_name.into(), 0));
        Ok(())
    }

    /// Writes one message (CDR with encapsulation header) with its log time.
    pub fn write(&mut self, topic: &str, log_time_ns: u64, data: &[u8]) -> Result<(), BagError> {
        let path = self.mcap_path();
        let (channel_id, _, count) =
            self.channels.get_mut(topic).ok_or_else(|| BagError::Schema(format!("topic {topic} was not added")))?;
        *count += 1;
        let header = mcap::records::MessageHeader {
            channel_id: *channel_id,
            sequence: self.sequence,
            log_time: log_time_ns,
            publish_time: log_time_ns,
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.start_ns = Some(self.start_ns.map_or(log_time_ns, |s| s.min(log_time_ns)));
        self.end_ns = self.end_ns.max(log_time_ns);
        self.mcap.write_to_known_channel(&header, data).map_err(|source| BagError::Write { path, source })
    }

    /// Finishes the MCAP file and writes `metadata.yaml`; returns the bag folder.
    pub fn finish(mut self) -> Result<PathBuf, BagError> {
        let path = self.mcap_path();
        self.mcap.finish().map_err(|source| BagError::Write { path: path.clone(), source })?;
        let mut inner = self.mcap.into_inner();
        inner.flush().map_err(|source| BagError::Io { path: path.clone(), source })?;
        let start = self.start_ns.unwrap_or(0);
        let duration = self.end_ns.saturating_sub(start);
        let total: u64 = self.channels.values().map(|c| c.2).sum();
        let mut topics = String::new();
        for (name, (_, type_name, count)) in &self.channels {
            topics.push_str(&format!(
                "  - message_count: {count}\n    topic_metadata:\n      name: {name}\n      offered_qos_profiles: ''\n      serialization_format: cdr\n      type: {type_name}\n      type_description_hash: ''\n"
            ));
        }
        let yaml = format!(
            "rosbag2_bagfile_information:\n  compression_format: ''\n  compression_mode: ''\n  custom_data: {{}}\n  duration:\n    nanoseconds: {duration}\n  files:\n  - duration:\n      nanoseconds: {duration}\n    message_count: {total}\n    path: {file}\n    starting_time:\n      nanoseconds_since_epoch: {start}\n  message_count: {total}\n  relative_file_paths:\n  - {file}\n  ros_distro: ''\n  starting_time:\n    nanoseconds_since_epoch: {start}\n  storage_identifier: mcap\n  topics_with_message_count:\n{topics}  version: 8\n",
            file = self.file_name
        );
        let meta = self.dir.join("metadata.yaml");
        std::fs::write(&meta, yaml).map_err(|source| BagError::Io { path: meta, source })?;
        Ok(self.dir)
    }
}
