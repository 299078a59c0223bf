//! Classic CDR (XCDR1) with the 4-byte encapsulation header, as ROS 2 puts it on the wire, in
//! rosbag2 files and in r2r's raw subscriptions/publishers.
//!
//! The header is `00 01 00 00` for little endian (what every ROS 2 RMW writes on x86/ARM) and
//! `00 00 00 00` for big endian. The last two bytes are encapsulation options; RMWs may use
//! them to announce up to 3 bytes of alignment padding at the end of the payload, so decoding
//! tolerates up to 3 trailing bytes and ignores the options. Alignment inside the payload is
//! counted from the first byte after the header.
//!
//! The body is (de)serialised with the `cdr-encoding` crate. Its decoder checks every length
//! against the remaining input before slicing, and serde's `Vec` visitor gets no size hint from
//! it, so a hostile length field costs an `Eof` error rather than a large allocation (checked in
//! `tests/codecs.rs` with a counting allocator).

use byteorder::{BigEndian, LittleEndian};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encapsulation identifier of little-endian classic CDR (`CDR_LE`).
pub const ENCAPSULATION_CDR_LE: [u8; 2] = [0x00, 0x01];
/// Encapsulation identifier of big-endian classic CDR (`CDR_BE`).
pub const ENCAPSULATION_CDR_BE: [u8; 2] = [0x00, 0x00];
/// Length of the encapsulation header (identifier + options) in bytes.
pub const ENCAPSULATION_HEADER_LEN: usize = 4;
/// Most trailing padding a writer may append to round the payload up to 4 bytes.
pub const MAX_TRAILING_PADDING: usize = 3;

/// Errors of the ROS message codecs.
#[derive(Debug, thiserror::Error)]
pub enum MsgError {
    #[error("{type_name}: {len}-byte payload is shorter than the 4-byte CDR encapsulation header")]
    MissingHeader { type_name: &'static str, len: usize },
    #[error(
        "{type_name}: unsupported encapsulation {id:02x?}; only classic CDR \
         (00 01 little endian, 00 00 big endian) is supported, not XCDR2"
    )]
    UnsupportedEncapsulation { type_name: &'static str, id: [u8; 2] },
    #[error("{type_name}: malformed CDR: {source}")]
    Decode {
        type_name: &'static str,
        #[source]
        source: cdr_encoding::Error,
    },
    #[error(
        "{type_name}: {count} bytes left after the message (at most 3 bytes of padding are \
         allowed); wrong message type?"
    )]
    TrailingBytes { type_name: &'static str, count: usize },
    #[error("{type_name}: CDR encoding failed: {source}")]
    Encode {
        type_name: &'static str,
        #[source]
        source: cdr_encoding::Error,
    },
}

/// Encodes `value` as little-endian CDR with the encapsulation header into `out` (cleared
/// first), so a publisher can reuse one buffer per topic.
pub fn encode_into<T: Serialize>(type_name: &'static str, value: &T, out: &mut Vec<u8>) -> Result<(), MsgError> {
    out.clear();
    out.extend_from_slice(&ENCAPSULATION_CDR_LE);
    out.extend_from_slice(&[0x00, 0x00]);
    cdr_encoding::to_writer::<T, LittleEndian, _>(&mut *out, value)
        .map_err(|source| MsgError::Encode { type_name, source })
}

/// Encodes `value` as little-endian CDR with the encapsulation header.
pub fn encode<T: Serialize>(type_name: &'static str, value: &T) -> Result<Vec<u8>, MsgError> {
    let mut out = Vec::new();
    encode_into(type_name, value, &mut out)?;
    Ok(out)
}

/// Decodes CDR with the encapsulation header (either byte order).
pub fn decode<T: DeserializeOwned>(type_name: &'static str, bytes: &[u8]) -> Result<T, MsgError> {
    let Some((header, body)) = bytes.split_first_chunk::<ENCAPSULATION_HEADER_LEN>() else {
        return Err(MsgError::MissingHeader { type_name, len: bytes.len() });
    };
    let id = [header[0], header[1]];
    let decoded = match id {
        ENCAPSULATION_CDR_LE => cdr_encoding::from_bytes::<T, LittleEndian>(body),
        ENCAPSULATION_CDR_BE => cdr_encoding::from_bytes::<T, BigEndian>(body),
        _ => return Err(MsgError::UnsupportedEncapsulation { type_name, id }),
    };
    let (value, consumed_bytes) = decoded.map_err(|source| MsgError::Decode { type_name, source })?;
    let trailing = body.len().saturating_sub(consumed_bytes);
    if trailing > MAX_TRAILING_PADDING {
        return Err(MsgError::TrailingBytes { type_name, count: trailing });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        flag: u8,
        value: f64,
        name: String,
    }

    fn sample() -> Sample {
        Sample { flag: 7, value: -1.25, name: "ab".into() }
    }

    #[test]
    fn little_endian_layout_aligns_after_the_header() {
        let bytes = encode("test/Sample", &sample()).unwrap();
        // u8, 7 bytes of padding to the f64 (alignment counted from the body start), f64,
        // u32 length 3, "ab\0".
        let mut expected = vec![0, 1, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(&(-1.25f64).to_le_bytes());
        expected.extend_from_slice(&[3, 0, 0, 0, b'a', b'b', 0]);
        assert_eq!(bytes, expected);
        assert_eq!(decode::<Sample>("test/Sample", &bytes).unwrap(), sample());
    }

    #[test]
    fn big_endian_is_decoded() {
        let mut bytes = vec![0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&(-1.25f64).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', 0]);
        assert_eq!(decode::<Sample>("test/Sample", &bytes).unwrap(), sample());
    }

    #[test]
    fn padding_up_to_three_bytes_is_accepted_more_is_not() {
        let mut bytes = encode("test/Sample", &sample()).unwrap();
        bytes.extend_from_slice(&[0, 0, 0]);
        assert!(decode::<Sample>("test/Sample", &bytes).is_ok());
        bytes.push(0);
        assert!(matches!(decode::<Sample>("test/Sample", &bytes), Err(MsgError::TrailingBytes { count: 4, .. })));
    }

    #[test]
    fn header_problems_are_typed_errors() {
        assert!(matches!(decode::<Sample>("test/Sample", &[0, 1, 0]), Err(MsgError::MissingHeader { len: 3, .. })));
        let mut xcdr2 = encode("test/Sample", &sample()).unwrap();
        xcdr2[1] = 0x07; // PLAIN_CDR2_LE
        assert!(matches!(
            decode::<Sample>("test/Sample", &xcdr2),
            Err(MsgError::UnsupportedEncapsulation { id: [0, 7], .. })
        ));
    }

    #[test]
    fn encode_into_reuses_the_buffer() {
        let mut out = vec![9; 100];
        encode_into("test/Sample", &sample(), &mut out).unwrap();
        assert_eq!(out, encode("test/Sample", &sample()).unwrap());
    }
}
