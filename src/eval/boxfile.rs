//! Box files (ground truth and raw results) read as the PyPI `rgbt` toolkit 1.0.1 reads them
//! (`rgbt.utils.load_text`, `initial_result_file`, the `*_2_ltwh` conversions).
//!
//! The toolkit parses a file with `np.loadtxt`, trying the separators `,`, ` ` and tab in turn.
//! So `#` starts a comment (a `#` header line is skipped), blank lines are skipped, every row must
//! have the same number of values, and `nan` / `inf` are numbers. A file it reads gives the same
//! values here. This reader is more lenient where the toolkit would refuse a file: any mix of the
//! three separators, repeated separators, leading or trailing whitespace, lines of spaces and a
//! UTF-8 byte-order mark are accepted. A header line that is not a comment is an error, as there.
//!
//! Raw results are rounded to integers (numpy `round`: ties to even) as loaded, and then converted
//! to `x, y, w, h` from the format they were written in:
//!
//! | format | values per line | conversion (the toolkit's strict mode) |
//! |---|---|---|
//! | `ltwh` | 4: x, y, w, h | none |
//! | `ltrb` | 4: left, top, right, bottom | `w = r - l + 1`, `h = b - t + 1` |
//! | `corner` | 8: x1, y1, x2, y1, x2, y2, x1, y2 (or any polygon) | `x = v0`, `y = v1`, `w = v2 - v0 + 1`, `h = v5 - v1 + 1` |
//!
//! The `corner` rule reads four fixed positions. For an axis-aligned box written corner by corner
//! it is the box; for a rotated polygon it is *not* the polygon's bounding box (min/max), and the
//! scores follow the toolkit, not the geometry.

use std::path::{Path, PathBuf};

use super::metrics::{self, Rect32};

/// The formats of raw-result files, by the `rgbt` toolkit's `bbox_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResultFormat {
    /// By the number of values per line: 4 is `ltwh`, 8 is `corner`.
    #[default]
    Auto,
    /// x, y, w, h (left-top corner and size).
    Ltwh,
    /// left, top, right, bottom (pixel-inclusive).
    Ltrb,
    /// The four corners x1, y1, x2, y1, x2, y2, x1, y2.
    Corner,
}

impl ResultFormat {
    fn name(self) -> &'static str {
        match self {
            ResultFormat::Auto => "auto",
            ResultFormat::Ltwh => "ltwh",
            ResultFormat::Ltrb => "ltrb",
            ResultFormat::Corner => "corner",
        }
    }

    fn values_per_line(self) -> &'static [usize] {
        match self {
            ResultFormat::Auto => &[4, 8],
            ResultFormat::Ltwh | ResultFormat::Ltrb => &[4],
            ResultFormat::Corner => &[8],
        }
    }
}

/// Errors reading a box file; each names the file and, for its content, the line.
#[derive(Debug, thiserror::Error)]
pub enum BoxFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} line {line}: `{value}` is not a number (values are separated by ',', ' ' or tab; '#' starts a comment)"
    )]
    NotANumber { path: PathBuf, line: usize, value: String },
    #[error(
        "{path} line {line}: {found} values, but line {first_line} has {expected}; every line needs the same count"
    )]
    Ragged { path: PathBuf, line: usize, found: usize, first_line: usize, expected: usize },
    #[error("{path}: {found} values per line; {format} boxes have {expected}")]
    Width { path: PathBuf, found: usize, format: &'static str, expected: String },
}

/// The rows of numbers of a box file, each parsed as numpy does (float64, then the array's
/// float32).
#[derive(Debug, Clone, PartialEq)]
struct Rows {
    /// Values per row (0 for a file without rows).
    width: usize,
    values: Vec<f32>,
}

impl Rows {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks(self.width.max(1))
    }
}

enum RowsError {
    NotANumber { line: usize, value: String },
    Ragged { line: usize, found: usize, first_line: usize, expected: usize },
}

fn parse_rows(text: &str) -> Result<Rows, RowsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = super::metrics::universal_lines(text);
    let mut values = Vec::new();
    let mut first: Option<(usize, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or_default();
        let fields: Vec<&str> = content.split([',', ' ', '\t']).filter(|s| !s.is_empty()).collect();
        if fields.is_empty() {
            continue;
        }
        match first {
            None => first = Some((i + 1, fields.len())),
            Some((first_line, expected)) if expected != fields.len() => {
                return Err(RowsError::Ragged { line: i + 1, found: fields.len(), first_line, expected });
            }
            Some(_) => {}
        }
        for f in fields {
            // numpy parses to double, then casts to the array's float32.
            let v: f64 = f.parse().map_err(|_| RowsError::NotANumber { line: i + 1, value: f.to_string() })?;
            values.push(v as f32);
        }
    }
    Ok(Rows { width: first.map_or(0, |(_, w)| w), values })
}

fn read_rows(path: &Path) -> Result<Rows, BoxFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| BoxFileError::Io { path: path.into(), source })?;
    rows_of(path, &text)
}

/// The rows of `text`, errors naming `path`.
fn rows_of(path: &Path, text: &str) -> Result<Rows, BoxFileError> {
    parse_rows(text).map_err(|e| match e {
        RowsError::NotANumber { line, value } => BoxFileError::NotANumber { path: path.into(), line, value },
        RowsError::Ragged { line, found, first_line, expected } => {
            BoxFileError::Ragged { path: path.into(), line, found, first_line, expected }
        }
    })
}

/// Ground truth: 4 values per line, as written (`x, y, w, h`, or GTOT's `l, t, r, b`).
pub fn read_ground_truth(path: &Path) -> Result<Vec<Rect32>, BoxFileError> {
    let rows = read_rows(path)?;
    check_width(path, &rows, "ground-truth", &[4])?;
    Ok(rows.iter().map(|r| [r[0], r[1], r[2], r[3]]).collect())
}

/// A raw result as the toolkit holds it: rounded (ties to even), then converted to `x, y, w, h`
/// from `format`.
pub fn read_result(path: &Path, format: ResultFormat) -> Result<Vec<Rect32>, BoxFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| BoxFileError::Io { path: path.into(), source })?;
    parse_result(path, &text, format)
}

/// [`read_result`] on text already read; `path` names it in errors.
pub fn parse_result(path: &Path, text: &str, format: ResultFormat) -> Result<Vec<Rect32>, BoxFileError> {
    let rows = rows_of(path, text)?;
    check_width(path, &rows, format.name(), format.values_per_line())?;
    Ok(convert_result(&rows, format))
}

fn check_width(path: &Path, rows: &Rows, format: &'static str, allowed: &[usize]) -> Result<(), BoxFileError> {
    if rows.is_empty() || allowed.contains(&rows.width) {
        return Ok(());
    }
    let expected = allowed.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" or ");
    Err(BoxFileError::Width { path: path.into(), found: rows.width, format, expected })
}

/// `initial_result_file`: `load_text(...).round(0)`, then the format's conversion to `ltwh`.
/// The rows' width has been checked against the format.
fn convert_result(rows: &Rows, format: ResultFormat) -> Vec<Rect32> {
    rows.iter()
        .map(|r| {
            let v: Vec<f32> = r.iter().map(|x| x.round_ties_even()).collect();
            match *v.as_slice() {
                [_, _, _, _, _, _, _, _] => corner_to_ltwh(&v),
                [l, t, r, b] if format == ResultFormat::Ltrb => metrics::ltrb_to_ltwh(&[l, t, r, b]),
                [x, y, w, h] => [x, y, w, h],
                // Other widths were refused by `check_width`.
                _ => [f32::NAN; 4],
            }
        })
        .collect()
}

/// `rgbt.utils.corner_2_ltwh` (strict): positions 0, 1, 2 and 5 of the 8 values.
pub fn corner_to_ltwh(v: &[f32]) -> Rect32 {
    [v[0], v[1], v[2] - v[0] + 1.0, v[5] - v[1] + 1.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Rows {
        parse_rows(text).unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn files_the_toolkit_reads_give_its_values() {
        // Each case and its values were checked with rgbt.utils.load_text (numpy 2.4).
        let four = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        for text in [
            "1,2,3,4\n5,6,7,8\n",
            "1, 2, 3, 4\n5, 6, 7, 8\n",
            "1\t2\t3\t4\n5\t6\t7\t8\n",
            "1,\t2,3,4\n5,6,7,8\n",
            "1,2,3,4\n\n5,6,7,8\n\n\n",
            "# x,y,w,h\n1,2,3,4\n5,6,7,8\n",
            "1,2,3,4 # first\n5,6,7,8\n",
            "1,2,3,4\r\n5,6,7,8\r\n",
            "1,2,3,4\r5,6,7,8\r",
        ] {
            assert_eq!(rows(text), Rows { width: 4, values: four.clone() }, "{text:?}");
        }
        let r = rows("1e1,2.5E-1,+3,.4\nnan,NaN,-nan,inf\n");
        assert_eq!(&r.values[..4], &[10.0, 0.25, 3.0, 0.4]);
        assert!(r.values[4..7].iter().all(|v| v.is_nan()) && r.values[7] == f32::INFINITY);
        assert_eq!(rows("").len(), 0);
    }

    #[test]
    fn lenient_where_the_toolkit_refuses_but_never_guessing_values() {
        // Refused by np.loadtxt with every separator; accepted here with the obvious values.
        for text in [
            "1  2  3  4\n",
            "  1 2 3 4\n",
            "1 2 3 4  \n",
            "1,2,3,4,\n",
            "1,2,3,4\n   \n",
            "1,2,3,4\n5 6 7 8\n",
            "\u{feff}1,2,3,4\n",
        ] {
            assert_eq!(rows(text).iter().next(), Some(&[1.0f32, 2.0, 3.0, 4.0][..]), "{text:?}");
        }
        // A text header, another separator and ragged rows are errors, as there.
        assert!(matches!(parse_rows("x,y,w,h\n1,2,3,4\n"), Err(RowsError::NotANumber { line: 1, .. })));
        assert!(matches!(parse_rows("1;2;3;4\n"), Err(RowsError::NotANumber { line: 1, .. })));
        assert!(matches!(
            parse_rows("1,2,3,4\n5,6,7\n"),
            Err(RowsError::Ragged { line: 2, found: 3, first_line: 1, expected: 4 })
        ));
    }

    #[test]
    fn corner_lines_follow_the_toolkit_not_the_bounding_box() {
        // An axis-aligned box, corner by corner: (10.4, 20.6)-(49.5, 80.5) rounds to
        // (10, 21)-(50, 80) (ties to even: 49.5 -> 50, 80.5 -> 80).
        let r = rows("10.4,20.6,49.5,20.6,49.5,80.5,10.4,80.5\n");
        assert_eq!(convert_result(&r, ResultFormat::Auto), vec![[10.0, 21.0, 41.0, 60.0]]);
        // A rotated square (a diamond) with corners (10, 0), (20, 10), (10, 20), (0, 10): its
        // bounding box is x, y, w, h = 0, 0, 21, 21, but the toolkit reads v0, v1, v2, v5 =
        // 10, 0, 20, 20: x 10, y 0, w 11, h 21.
        let r = rows("10,0,20,10,10,20,0,10\n");
        assert_eq!(convert_result(&r, ResultFormat::Auto), vec![[10.0, 0.0, 11.0, 21.0]]);
    }

    #[test]
    fn ltrb_lines_are_pixel_inclusive_after_rounding() {
        let r = rows("10.5 20.2 19.4 39.6\n");
        assert_eq!(convert_result(&r, ResultFormat::Ltrb), vec![[10.0, 20.0, 10.0, 21.0]]);
        assert_eq!(convert_result(&r, ResultFormat::Ltwh), vec![[10.0, 20.0, 19.0, 40.0]]);
    }
}
