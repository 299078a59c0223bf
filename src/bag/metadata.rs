//! rosbag2 `metadata.yaml`: the storage files of a bag folder and its topic list.
//!
//! The file names come from a file that may have been written by anyone, so each one is checked
//! before it is opened: a relative path of plain components (no absolute path, no `..`), naming
//! a regular file (no device, FIFO or folder) that lies inside the bag folder after symbolic
//! links are resolved, listed once.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::{BagError, TopicInfo};

/// Storage formats patrack reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Mcap,
    Sqlite3,
}

impl StorageKind {
    /// By file extension: `.mcap` or `.db3`.
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("mcap") => Some(StorageKind::Mcap),
            Some("db3") => Some(StorageKind::Sqlite3),
            _ => None,
        }
    }
}

/// One storage file of a bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFile {
    pub path: PathBuf,
    pub kind: StorageKind,
}

/// What `metadata.yaml` says about a bag.
#[derive(Debug, Clone, Default)]
pub struct BagMetadata {
    /// `relative_file_paths`, checked and resolved against the bag folder.
    pub files: Vec<StorageFile>,
    /// `topics_with_message_count`.
    pub topics: Vec<TopicInfo>,
}

fn bad_path(bag: &Path, entry: &str, why: &str) -> BagError {
    BagError::BadPath { bag: bag.into(), entry: entry.into(), why: why.into() }
}

/// A storage file named by `metadata.yaml`, checked as the module docs say.
fn checked_file(bag: &Path, bag_real: &Path, entry: &str) -> Result<StorageFile, BagError> {
    let rel = Path::new(entry);
    if entry.is_empty() {
        return Err(bad_path(bag, entry, "empty file name"));
    }
    if rel.is_absolute() {
        return Err(bad_path(bag, entry, "absolute path; files must be relative to the bag folder"));
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(bad_path(bag, entry, "path with `..` or `.`; files must lie inside the bag folder"));
    }
    let path = bag.join(rel);
    let meta = std::fs::metadata(&path).map_err(|source| BagError::Io { path: path.clone(), source })?;
    if !meta.is_file() {
        return Err(bad_path(bag, entry, "not a regular file (a folder, device, FIFO or socket)"));
    }
    let real = path.canonicalize().map_err(|source| BagError::Io { path: path.clone(), source })?;
    if !real.starts_with(bag_real) {
        return Err(bad_path(bag, entry, "a link to a file outside the bag folder"));
    }
    let kind = StorageKind::of(&path).ok_or_else(|| BagError::Unsupported {
        path: path.clone(),
        what: "storage file that is neither .mcap nor .db3 (a compressed bag? decompress it with \
               `ros2 bag decompress` first)"
            .into(),
    })?;
    Ok(StorageFile { path, kind })
}

/// Reads `<bag>/metadata.yaml`; `None` when the folder has none.
pub fn read(bag: &Path) -> Result<Option<BagMetadata>, BagError> {
    let meta_path = bag.join("metadata.yaml");
    let bad = |what: String| BagError::Metadata { path: meta_path.clone(), what };
    let text = match crate::limits::read_text_file(&meta_path, crate::limits::MAX_YAML_BYTES) {
        Ok(t) => t,
        Err(crate::limits::TextFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(crate::limits::TextFileError::Io(source)) => return Err(BagError::Io { path: meta_path, source }),
        Err(e) => return Err(bad(e.to_string())),
    };
    // serde_yaml takes quadratic time on deep nesting before its recursion limit stops it.
    crate::limits::check_yaml_shape(&text).map_err(|e| bad(e.to_string()))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let info = &doc["rosbag2_bagfile_information"];
    if info.is_null() {
        return Err(bad("no rosbag2_bagfile_information".into()));
    }
    // Per-file or per-message compression hides the storage behind zstd; not supported.
    let mode = info["compression_mode"].as_str().unwrap_or("");
    if !mode.is_empty() && !mode.eq_ignore_ascii_case("none") {
        return Err(BagError::Unsupported {
            path: meta_path.clone(),
            what: format!(
                "compression_mode {mode} (decompress the bag with `ros2 bag decompress` or `ros2 bag convert` first)"
            ),
        });
    }
    let bag_real = bag.canonicalize().map_err(|source| BagError::Io { path: bag.into(), source })?;
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    if let Some(entries) = info["relative_file_paths"].as_sequence() {
        for e in entries {
            let entry = e.as_str().ok_or_else(|| bad("relative_file_paths holds a non-string entry".into()))?;
            let file = checked_file(bag, &bag_real, entry)?;
            let real = file.path.canonicalize().map_err(|source| BagError::Io { path: file.path.clone(), source })?;
            if !seen.insert(real) {
                return Err(bad_path(bag, entry, "listed more than once"));
            }
            files.push(file);
        }
    }
    let mut topics = Vec::new();
    if let Some(entries) = info["topics_with_message_count"].as_sequence() {
        for t in entries {
            let tm = &t["topic_metadata"];
            let (Some(name), Some(type_name)) = (tm["name"].as_str(), tm["type"].as_str()) else {
                return Err(bad("a topics_with_message_count entry without name or type".into()));
            };
            topics.push(TopicInfo {
                name: name.into(),
                type_name: type_name.into(),
                message_count: t["message_count"].as_u64().unwrap_or(0),
            });
        }
    }
    Ok(Some(BagMetadata { files, topics }))
}

/// The storage files of a bag folder without (usable) metadata: its `.mcap` and `.db3` regular
/// files, in name order.
pub fn list_storage(bag: &Path) -> Result<Vec<StorageFile>, BagError> {
    let rd = std::fs::read_dir(bag).map_err(|source| BagError::Io { path: bag.into(), source })?;
    let mut files: Vec<StorageFile> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| StorageKind::of(&e.path()).map(|kind| StorageFile { path: e.path(), kind }))
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("patrack_meta_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn meta_with(dir: &Path, files: &[&str]) {
        let list: String = files.iter().map(|f| format!("  - {f}\n")).collect();
        std::fs::write(
            dir.join("metadata.yaml"),
            format!("rosbag2_bagfile_information:\n  version: 8\n  relative_file_paths:\n{list}"),
        )
        .unwrap();
    }

    #[test]
    fn listed_files_must_be_regular_files_inside_the_bag_listed_once() {
        let dir = tmp("paths");
        std::fs::write(dir.join("a_0.mcap"), b"x").unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/b.db3"), b"x").unwrap();
        meta_with(&dir, &["a_0.mcap", "sub/b.db3"]);
        let m = read(&dir).unwrap().unwrap();
        assert_eq!(m.files.iter().map(|f| f.kind).collect::<Vec<_>>(), [StorageKind::Mcap, StorageKind::Sqlite3]);

        let outside = tmp("paths_outside");
        std::fs::write(outside.join("evil.mcap"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("evil.mcap"), dir.join("link.mcap")).unwrap();
        let fifo = dir.join("pipe.mcap");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let cases: [(&str, &str); 7] = [
            ("/etc/passwd", "absolute path"),
            ("../paths_outside/evil.mcap", "`..`"),
            ("./a_0.mcap", "`..` or `.`"),
            ("sub", "not a regular file"),
            ("pipe.mcap", "not a regular file"),
            ("link.mcap", "outside the bag folder"),
            ("a_0.mcap\n  - a_0.mcap", "listed more than once"),
        ];
        for (entry, why) in cases {
            meta_with(&dir, &[entry]);
            let err = read(&dir).unwrap_err();
            assert!(matches!(err, BagError::BadPath { .. }), "{entry}: {err}");
            let text = err.to_string();
            assert!(text.contains(why) && text.contains("metadata.yaml"), "{entry}: {text}");
        }
        meta_with(&dir, &["missing.mcap"]);
        assert!(matches!(read(&dir).unwrap_err(), BagError::Io { .. }));
        std::fs::write(dir.join("c.mcap.zstd"), b"x").unwrap();
        meta_with(&dir, &["c.mcap.zstd"]);
        assert!(matches!(read(&dir).unwrap_err(), BagError::Unsupported { .. }));
    }

    #[test]
    fn compressed_bags_are_refused_by_name() {
        let dir = tmp("compressed");
        std::fs::write(
            dir.join("metadata.yaml"),
            "rosbag2_bagfile_information:\n  compression_mode: FILE\n  compression_format: zstd\n",
        )
        .unwrap();
        let err = read(&dir).unwrap_err();
        assert!(err.to_string().contains("compression_mode FILE"), "{err}");
    }
}
