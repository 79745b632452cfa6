//! The AWS wire protocol, sans-IO: nothing here touches a socket or a runtime.
//!
//! - [`value::Value`]: the document tree both body codecs share.
//! - [`json`] and [`cbor`]: `application/x-amz-json-1.1` and
//!   `application/x-amz-cbor-1.1` bodies; [`Encoding`] picks one by content type.
//! - [`shape`]: service-model shapes and the validator that turns a decoded
//!   body into a normalised, checked one (or AWS's serialization/validation
//!   error).
//! - [`error`]: AWS error envelopes.
//! - [`eventstream`]: the framing SubscribeToShard streams.
//! - [`sigv4`]: parsing and verification of Signature Version 4.
//! - [`sigv2`]: S3's Signature Version 2 (boto3's default presigned URLs).
//! - [`chunked`]: `aws-chunked` upload bodies (S3), with chunk signatures.

pub mod cbor;
pub mod chunked;
pub mod error;
pub mod eventstream;
pub mod json;
pub mod shape;
pub mod sigv2;
pub mod sigv4;
pub mod value;

pub use value::{Map, Value};

/// A body that is not well-formed JSON or CBOR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The body encoding of a request, and so of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Cbor,
}

impl Encoding {
    /// Picks the encoding from a `Content-Type`; anything that is not CBOR is
    /// treated as JSON, as AWS does for `application/json` and friends.
    pub fn from_content_type(ct: Option<&str>) -> Encoding {
        match ct {
            Some(ct)
                if ct
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-amz-cbor") =>
            {
                Encoding::Cbor
            }
            _ => Encoding::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/x-amz-json-1.1",
            Encoding::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    pub fn decode(self, body: &[u8]) -> Result<Value, DecodeError> {
        match self {
            Encoding::Json => json::decode(body),
            Encoding::Cbor => cbor::decode(body),
        }
    }

    /// Decodes only when `wanted`.
    pub fn decode_if(self, wanted: bool, body: &[u8]) -> Option<Result<Value, DecodeError>> {
        wanted.then(|| self.decode(body))
    }

    pub fn encode(self, v: &Value) -> Vec<u8> {
        match self {
            Encoding::Json => json::encode(v),
            Encoding::Cbor => cbor::encode(v),
        }
    }
}
