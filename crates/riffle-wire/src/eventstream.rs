//! `application/vnd.amazon.eventstream` framing, used by SubscribeToShard.
//!
//! ```text
//! u32 total_len | u32 headers_len | u32 prelude_crc | headers | payload | u32 message_crc
//! header: u8 name_len | name | u8 type (7 = string) | u16 value_len | value
//! ```
//! All integers big-endian; both CRCs are CRC-32 (IEEE), the prelude CRC over
//! the first 8 bytes, the message CRC over everything before it.

use crate::DecodeError;

const PRELUDE: usize = 12;
const STRING: u8 = 7;

/// Encodes one message with string headers.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers_len: usize = headers.iter().map(|(k, v)| 1 + k.len() + 3 + v.len()).sum();
    let total = PRELUDE + headers_len + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    for (k, v) in headers {
        out.push(k.len() as u8);
        out.extend_from_slice(k.as_bytes());
        out.push(STRING);
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An event: `:message-type` `event`, with `:event-type` and `:content-type`.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// A modeled error: `:message-type` `exception`.
pub fn exception(error_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":message-type", "exception"),
            (":exception-type", error_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// A decoded message: its string headers and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes the first message of `buf`; returns it and the bytes it used, or
/// `Ok(None)` when more bytes are needed.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    if buf.len() < PRELUDE {
        return Ok(None);
    }
    let be = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (total, headers_len) = (be(0) as usize, be(4) as usize);
    if crc32fast::hash(&buf[..8]) != be(8) {
        return Err(DecodeError("event stream prelude CRC mismatch".into()));
    }
    if total < PRELUDE + headers_len + 4 {
        return Err(DecodeError("event stream lengths are inconsistent".into()));
    }
    if buf.len() < total {
        return Ok(None);
    }
    if crc32fast::hash(&buf[..total - 4]) != be(total - 4) {
        return Err(DecodeError("event stream message CRC mismatch".into()));
    }
    let mut headers = Vec::new();
    let mut h = &buf[PRELUDE..PRELUDE + headers_len];
    let bad = || DecodeError("malformed event stream header".into());
    while !h.is_empty() {
        let n = h[0] as usize;
        let name = h.get(1..1 + n).ok_or_else(bad)?;
        let rest = &h[1 + n..];
        if rest.first() != Some(&STRING) || rest.len() < 3 {
            return Err(bad());
        }
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let value = rest.get(3..3 + len).ok_or_else(bad)?;
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        h = &rest[3 + len..];
    }
    let payload = buf[PRELUDE + headers_len..total - 4].to_vec();
    Ok(Some((Message { headers, payload }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_response_bytes() {
        let frame = event("initial-response", "application/x-amz-json-1.1", b"{}");
        // total, headers length and both CRCs, checked against the spec's layout.
        assert_eq!(&frame[0..4], &(frame.len() as u32).to_be_bytes());
        assert_eq!(u32::from_be_bytes(frame[4..8].try_into().unwrap()), 96);
        assert_eq!(&frame[frame.len() - 6..frame.len() - 4], b"{}");
        let (msg, used) = decode(&frame).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(msg.header(":event-type"), Some("initial-response"));
        assert_eq!(msg.header(":message-type"), Some("event"));
        assert_eq!(msg.payload, b"{}");
    }

    #[test]
    fn detects_corruption_and_partial_frames() {
        let mut frame = event(
            "SubscribeToShardEvent",
            "application/x-amz-json-1.1",
            b"{\"a\":1}",
        );
        assert_eq!(decode(&frame[..frame.len() - 1]).unwrap(), None);
        let n = frame.len();
        frame[n - 5] ^= 1;
        assert!(decode(&frame).is_err());
        frame[1] ^= 1;
        assert!(decode(&frame).is_err());
    }
}
