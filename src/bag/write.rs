//! Writing a rosbag2 bag folder: `<dir>/<name>_0.mcap` and `metadata.yaml` (format version 8,
//! as PyPI rosbags and Jazzy write it), with `ros2msg` schemas from `msg/` and CDR messages.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::BagError;

/// How MCAP chunks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ChunkCompression {
    /// As `ros2 bag record` writes by default: fastest to write and read.
    None,
    /// Smallest files; what Foxglove and `ros2 bag play` read as well.
    #[default]
    Zstd,
    Lz4,
}

/// Settings of a [`BagWriter`].
#[derive(Debug, Clone, Default)]
pub struct WriterOptions {
    pub compression: ChunkCompression,
    /// Free-form `custom_data` of `metadata.yaml` (e.g. where the data came from).
    pub custom_data: BTreeMap<String, String>,
}

/// Writes a rosbag2 bag folder.
pub struct BagWriter {
    dir: PathBuf,
    file_name: String,
    mcap: mcap::Writer<BufWriter<std::fs::File>>,
    channels: BTreeMap<String, (u16, String, u64)>,
    sequence: u32,
    start_ns: Option<u64>,
    end_ns: u64,
    custom_data: BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
struct Nanoseconds {
    nanoseconds: u64,
}

#[derive(serde::Serialize)]
struct Since {
    nanoseconds_since_epoch: u64,
}

#[derive(serde::Serialize)]
struct FileInfo<'a> {
    duration: Nanoseconds,
    message_count: u64,
    path: &'a str,
    starting_time: Since,
}

#[derive(serde::Serialize)]
struct TopicMetadata<'a> {
    name: &'a str,
    offered_qos_profiles: &'a str,
    serialization_format: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    type_description_hash: &'a str,
}

#[derive(serde::Serialize)]
struct TopicCount<'a> {
    message_count: u64,
    topic_metadata: TopicMetadata<'a>,
}

#[derive(serde::Serialize)]
struct Info<'a> {
    compression_format: &'a str,
    compression_mode: &'a str,
    custom_data: &'a BTreeMap<String, String>,
    duration: Nanoseconds,
    files: Vec<FileInfo<'a>>,
    message_count: u64,
    relative_file_paths: Vec<&'a str>,
    ros_distro: &'a str,
    starting_time: Since,
    storage_identifier: &'a str,
    topics_with_message_count: Vec<TopicCount<'a>>,
    version: u32,
}

#[derive(serde::Serialize)]
struct Metadata<'a> {
    rosbag2_bagfile_information: Info<'a>,
}

impl BagWriter {
    /// Creates the bag folder (it must not exist yet, as with `ros2 bag record -o`), zstd chunks.
    pub fn create(dir: &Path) -> Result<Self, BagError> {
        Self::create_with(dir, &WriterOptions::default())
    }

    pub fn create_with(dir: &Path, options: &WriterOptions) -> Result<Self, BagError> {
        let io = |source| BagError::Io { path: dir.into(), source };
        if dir.exists() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "output bag folder exists")));
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let stem = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bag".into());
        let file_name = format!("{stem}_0.mcap");
        let path = dir.join(&file_name);
        let file = std::fs::File::create(&path).map_err(|source| BagError::Io { path: path.clone(), source })?;
        let compression = match options.compression {
            ChunkCompression::None => None,
            ChunkCompression::Zstd => Some(mcap::Compression::Zstd),
            ChunkCompression::Lz4 => Some(mcap::Compression::Lz4),
        };
        let mcap = mcap::WriteOptions::new()
            .profile("ros2")
            .library("patrack")
            .compression(compression)
            .create(BufWriter::new(file))
            .map_err(|source| BagError::Write { path: path.clone(), source })?;
        Ok(Self {
            dir: dir.into(),
            file_name,
            mcap,
            channels: BTreeMap::new(),
            sequence: 0,
            start_ns: None,
            end_ns: 0,
            custom_data: options.custom_data.clone(),
        })
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
        let topics = self
            .channels
            .iter()
            .map(|(name, (_, type_name, count))| TopicCount {
                message_count: *count,
                topic_metadata: TopicMetadata {
                    name,
                    offered_qos_profiles: "",
                    serialization_format: "cdr",
                    type_name,
                    type_description_hash: "",
                },
            })
            .collect();
        let meta = Metadata {
            rosbag2_bagfile_information: Info {
                compression_format: "",
                compression_mode: "",
                custom_data: &self.custom_data,
                duration: Nanoseconds { nanoseconds: duration },
                files: vec![FileInfo {
                    duration: Nanoseconds { nanoseconds: duration },
                    message_count: total,
                    path: &self.file_name,
                    starting_time: Since { nanoseconds_since_epoch: start },
                }],
                message_count: total,
                relative_file_paths: vec![&self.file_name],
                ros_distro: "",
                starting_time: Since { nanoseconds_since_epoch: start },
                storage_identifier: "mcap",
                topics_with_message_count: topics,
                version: 8,
            },
        };
        let meta_path = self.dir.join("metadata.yaml");
        let yaml = serde_yaml::to_string(&meta)
            .map_err(|e| BagError::Metadata { path: meta_path.clone(), what: e.to_string() })?;
        std::fs::write(&meta_path, yaml).map_err(|source| BagError::Io { path: meta_path, source })?;
        Ok(self.dir)
    }
}
