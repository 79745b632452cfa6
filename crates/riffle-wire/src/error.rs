//! AWS error envelopes: `{"__type": "...", "message": "..."}`, in the
//! request's encoding.

use crate::value::{Map, Value};
use crate::Encoding;

/// Encodes an error body. AWS spells the message member `Message` for
/// `SerializationException` and `message` for everything else.
pub fn encode(encoding: Encoding, error_type: &str, message: Option<&str>) -> Vec<u8> {
    let mut m = Map::new();
    m.put("__type", Value::Str(error_type.to_owned()));
    if let Some(msg) = message {
        let key = if error_type == "SerializationException" {
            "Message"
        } else {
            "message"
        };
        m.put(key, Value::Str(msg.to_owned()));
    }
    encoding.encode(&Value::Map(m))
}
