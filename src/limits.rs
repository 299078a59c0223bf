//! Checks of untrusted text shared by several entry points, run before the text reaches a parser
//! whose cost it could otherwise blow up: the node's parameter YAML (`ros::params`), a bag's
//! `metadata.yaml` (`bag`), and the topic names of replay and the node.
//!
//! serde_yaml 0.9 stops at 128 nesting levels, but only after scanning: a 400 KB document nested
//! 200 000 levels deep took minutes there (quadratic before the limit). [`check_yaml_shape`]
//! answers in one linear pass.

/// Largest YAML document accepted, in bytes. The bundled parameter files are under 4 KB and a
/// bag's `metadata.yaml` lists one line per topic and file.
pub const MAX_YAML_BYTES: usize = 1 << 20;

/// Deepest nesting accepted in a YAML document (block indentation levels, `- ` sequence entries
/// and `[` / `{` flow collections together). `ros__parameters` files nest 4 levels.
pub const MAX_YAML_DEPTH: usize = 32;

/// Why a small text file (a YAML document) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextFileError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("not a regular file (a device, FIFO or folder would never end or not be text)")]
    NotRegular,
    #[error("over the {max}-byte limit of this kind of file")]
    TooLarge { max: usize },
    #[error("not UTF-8 text")]
    NotText,
}

/// Reads a small text file for a parser: only a regular file (after symlinks: `/dev/zero` and
/// FIFOs are refused before anything is read) and at most `max_bytes`. The caller names the
/// file in its error.
pub fn read_text_file(path: &std::path::Path, max_bytes: usize) -> Result<String, TextFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(TextFileError::Io)?;
    let meta = file.metadata().map_err(TextFileError::Io)?;
    if !meta.is_file() {
        return Err(TextFileError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(max_bytes as u64 + 1).read_to_end(&mut bytes).map_err(TextFileError::Io)?;
    if bytes.len() > max_bytes {
        return Err(TextFileError::TooLarge { max: max_bytes });
    }
    String::from_utf8(bytes).map_err(|_| TextFileError::NotText)
}

/// Why a text was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("YAML document of {bytes} bytes is over the {MAX_YAML_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("YAML nests more than {MAX_YAML_DEPTH} levels deep (line {line})")]
    TooDeep { line: usize },
}

/// Refuses a YAML document larger than [`MAX_YAML_BYTES`] or nested deeper than
/// [`MAX_YAML_DEPTH`], by a linear scan of indentation, sequence dashes and brackets outside
/// quotes and comments. The count is an upper bound of the parser's nesting (a line's
/// indentation levels are counted even where YAML would fold them), so every document it
/// accepts parses within the parser's own limits, in linear time.
pub fn check_yaml_shape(text: &str) -> Result<(), ShapeError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(ShapeError::TooLarge { bytes: text.len() });
    }
    // Indentation of the enclosing block levels.
    let mut indents: Vec<usize> = Vec::new();
    let mut flow_depth = 0usize;
    let mut quote: Option<u8> = None;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let bytes = line.as_bytes();
        let too_deep = || ShapeError::TooDeep { line: line_no };
        let mut pos = 0;
        if quote.is_none() && flow_depth == 0 {
            let indent = bytes.iter().take_while(|&&b| b == b' ').count();
            let rest = &bytes[indent..];
            if rest.is_empty() || rest[0] == b'#' {
                continue;
            }
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            pos = indent;
            // `- - - x`: each dash opens a sequence inside the previous one.
            let mut dashes = 0usize;
            while bytes.get(pos) == Some(&b'-') && matches!(bytes.get(pos + 1), Some(b' ') | None) {
                dashes += 1;
                pos += 2;
                while bytes.get(pos) == Some(&b' ') {
                    pos += 1;
                }
            }
            if indents.len() + dashes > MAX_YAML_DEPTH {
                return Err(too_deep());
            }
        }
        while let Some(&b) = bytes.get(pos) {
            match quote {
                Some(q) => {
                    if b == b'\\' && q == b'"' {
                        pos += 1;
                    } else if b == q {
                        quote = None;
                    }
                }
                None => match b {
                    b'"' | b'\'' => quote = Some(b),
                    b'#' if pos == 0 || bytes[pos - 1] == b' ' => break,
                    b'[' | b'{' => {
                        flow_depth += 1;
                        if indents.len() + flow_depth > MAX_YAML_DEPTH {
                            return Err(too_deep());
                        }
                    }
                    b']' | b'}' => flow_depth = flow_depth.saturating_sub(1),
                    _ => {}
                },
            }
            pos += 1;
        }
    }
    Ok(())
}

/// Why a pair of topic names was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("the {what} topic name is empty")]
    Empty { what: &'static str },
    #[error("the RGB and aux topics are both `{topic}`: every image would be paired with itself")]
    Same { topic: String },
}

/// Checks that the RGB and aux image topics are given and differ (after trimming spaces and a
/// trailing `/`, which name the same topic). One topic for both would pair each image with
/// itself and track on a copy of the RGB image as the thermal/depth/event half.
pub fn check_distinct_topics(rgb_topic: &str, aux_topic: &str) -> Result<(), TopicError> {
    let normal = |t: &str| t.trim().trim_end_matches('/').to_string();
    let (rgb, aux) = (normal(rgb_topic), normal(aux_topic));
    if rgb.is_empty() {
        return Err(TopicError::Empty { what: "RGB" });
    }
    if aux.is_empty() {
        return Err(TopicError::Empty { what: "aux" });
    }
    if rgb == aux {
        return Err(TopicError::Same { topic: rgb });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_are_read_only_when_regular_and_small() {
        let dir = std::env::temp_dir().join(format!("patrack-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("a.yaml");
        std::fs::write(&small, "a: 1\n").unwrap();
        assert_eq!(read_text_file(&small, 10).unwrap(), "a: 1\n");
        assert!(matches!(read_text_file(&small, 3), Err(TextFileError::TooLarge { max: 3 })));
        assert!(matches!(read_text_file(std::path::Path::new("/dev/zero"), 10), Err(TextFileError::NotRegular)));
        assert!(matches!(read_text_file(&dir, 10), Err(TextFileError::NotRegular)));
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a plain mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would hang here.
        assert!(matches!(read_text_file(&fifo, 10), Err(TextFileError::NotRegular)));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bundled_parameter_files_pass() {
        for text in [
            include_str!("../config/patrack.yaml"),
            include_str!("../config/rgbt.yaml"),
            include_str!("../config/rgbd.yaml"),
            include_str!("../config/rgbe.yaml"),
        ] {
            check_yaml_shape(text).unwrap();
        }
    }

    #[test]
    fn deep_block_nesting_is_refused_in_linear_time() {
        // Block nesting: each `a:` indented one more space than the last.
        let mut text = String::new();
        for level in 0..40 {
            text.push_str(&" ".repeat(level));
            text.push_str("a:\n");
        }
        let err = check_yaml_shape(&text).unwrap_err();
        assert_eq!(err, ShapeError::TooDeep { line: MAX_YAML_DEPTH + 1 });

        // The campaign's document: 200 000 nested flow sequences, 400 KB.
        let flow = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(flow.len(), 400_000);
        let started = std::time::Instant::now();
        let err = check_yaml_shape(&flow).unwrap_err();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        println!("{err} after {elapsed_ms:.2} ms");
        assert!(matches!(err, ShapeError::TooDeep { line: 1 }));
        let dashes = "- ".repeat(200_000) + "x\n";
        assert!(matches!(check_yaml_shape(&dashes), Err(ShapeError::TooDeep { .. })));
        let maps = "{a: ".repeat(200_000) + &"}".repeat(200_000);
        assert!(matches!(check_yaml_shape(&maps), Err(ShapeError::TooDeep { .. })));
    }

    #[test]
    fn brackets_inside_quotes_and_comments_do_not_count() {
        let text = format!(
            "a:\n  b: \"{}\"\n  c: '{}'  # {}\n  d: [1, [2, [3]]]\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        check_yaml_shape(&text).unwrap();
        let big = "a: 1\n".repeat(MAX_YAML_BYTES / 5 + 1);
        assert!(matches!(check_yaml_shape(&big), Err(ShapeError::TooLarge { .. })));
    }

    #[test]
    fn topics_must_differ() {
        assert!(check_distinct_topics("/camera/color/image_raw", "/thermal/image_raw").is_ok());
        let err = check_distinct_topics("/camera/image", " /camera/image/").unwrap_err();
        println!("{err}");
        assert!(matches!(err, TopicError::Same { .. }));
        assert!(matches!(check_distinct_topics("", "/t"), Err(TopicError::Empty { what: "RGB" })));
    }
}
