//! Streaming rosbag2 sqlite3 (`.db3`) reading: tables `topics` and `messages`, the same in every
//! distro since Foxy. Only the requested topics are queried, in timestamp order (as `ros2 bag
//! play` reads them), row by row through one statement; nothing is collected.

use std::collections::BTreeMap;
use std::path::Path;

use super::{BagError, BagMessage, TopicInfo, Wanted};

fn open(path: &Path) -> Result<rusqlite::Connection, BagError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags).map_err(|source| BagError::Sqlite { path: path.into(), source })
}

/// (id, name, type, serialization format) of every topic.
fn topic_rows(db: &rusqlite::Connection, path: &Path) -> Result<Vec<(i64, String, String, String)>, BagError> {
    let serr = |source| BagError::Sqlite { path: path.into(), source };
    let mut stmt = db.prepare("SELECT id, name, type, serialization_format FROM topics").map_err(serr)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(serr)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(serr)?;
    Ok(rows)
}

/// The topics of a `.db3` file with their message counts.
pub fn topics(path: &Path) -> Result<Vec<TopicInfo>, BagError> {
    let serr = |source| BagError::Sqlite { path: path.into(), source };
    let db = open(path)?;
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    {
        let mut stmt = db.prepare("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id").map_err(serr)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(serr)?;
        for row in rows {
            let (id, n) = row.map_err(serr)?;
            counts.insert(id, n.max(0) as u64);
        }
    }
    Ok(topic_rows(&db, path)?
        .into_iter()
        .map(|(id, name, type_name, _)| TopicInfo {
            name,
            type_name,
            message_count: counts.get(&id).copied().unwrap_or(0),
        })
        .collect())
}

/// Streams the messages of the `wanted` topics to `emit` in timestamp order (ties in insertion
/// order), until the table ends or `emit` returns false.
pub fn stream(path: &Path, wanted: &Wanted, emit: &mut dyn FnMut(BagMessage) -> bool) -> Result<(), BagError> {
    let serr = |source| BagError::Sqlite { path: path.into(), source };
    let db = open(path)?;
    let mut by_id: BTreeMap<i64, (String, String)> = BTreeMap::new();
    for (id, name, type_name, format) in topic_rows(&db, path)? {
        if !wanted.contains(&name) {
            continue;
        }
        if format != "cdr" {
            return Err(BagError::Encoding { topic: name, encoding: format });
        }
        by_id.insert(id, (name, type_name));
    }
    if by_id.is_empty() {
        return Ok(());
    }
    // Ids come from the file itself and are integers, so they are bound, not spliced.
    let marks = vec!["?"; by_id.len()].join(", ");
    let sql =
        format!("SELECT topic_id, timestamp, data FROM messages WHERE topic_id IN ({marks}) ORDER BY timestamp, id");
    let mut stmt = db.prepare(&sql).map_err(serr)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(by_id.keys())).map_err(serr)?;
    while let Some(row) = rows.next().map_err(serr)? {
        let topic_id: i64 = row.get(0).map_err(serr)?;
        let stamp: i64 = row.get(1).map_err(serr)?;
        let data: Vec<u8> = row.get(2).map_err(serr)?;
        let Some((name, type_name)) = by_id.get(&topic_id) else { continue };
        let msg =
            BagMessage { topic: name.clone(), type_name: type_name.clone(), log_time_ns: stamp.max(0) as u64, data };
        if !emit(msg) {
            break;
        }
    }
    Ok(())
}
