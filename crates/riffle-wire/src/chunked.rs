//! `aws-chunked` request bodies, sans-IO: how the AWS CLI and SDKs stream
//! S3 uploads whose length or hash is not known up front.
//!
//! ```text
//! <hex size>[;chunk-signature=<64 hex>]\r\n<size bytes>\r\n   (repeated)
//! 0[;chunk-signature=<64 hex>]\r\n                           (the last chunk)
//! [<trailer name>:<value>\r\n]*                              (optional trailers)
//! \r\n
//! ```
//!
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` signs every chunk, chaining on the
//! previous signature (the request's own is the seed);
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER` has no chunk signatures and ends
//! with a trailing checksum such as `x-amz-checksum-crc32:<base64>`.
//! [`Decoder::feed`] takes the body in pieces as they arrive and hands the
//! payload bytes to a sink; [`Decoder::finish`] checks the body ended where
//! it should and returns the trailers.

use sha2::{Digest, Sha256};

use crate::sigv4;

/// Why a chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed chunk: {0}")]
    Malformed(&'static str),
    #[error("a chunk signature does not match")]
    Signature,
    #[error("the body ended before its last chunk")]
    Incomplete,
}

/// What checks chunk signatures: the signing key and the request's
/// signature (the seed of the chain).
pub struct ChunkSigner {
    pub key: Vec<u8>,
    pub signature: sigv4::Signature,
    previous: String,
}

impl ChunkSigner {
    pub fn new(key: Vec<u8>, signature: sigv4::Signature) -> ChunkSigner {
        let previous = signature.signature.clone();
        ChunkSigner {
            key,
            signature,
            previous,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line.
    Header,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the empty one.
    Trailers,
    Done,
}

/// Longest header or trailer line accepted.
const MAX_LINE: usize = 4096;

/// A streaming `aws-chunked` decoder.
pub struct Decoder {
    state: State,
    line: Vec<u8>,
    signer: Option<ChunkSigner>,
    /// The signature the current chunk claims, and a hash of its data.
    claimed: Option<String>,
    hasher: Option<Sha256>,
    trailers: Vec<(String, String)>,
    decoded: u64,
}

impl Decoder {
    /// A decoder; with `signer`, every chunk's signature is checked.
    pub fn new(signer: Option<ChunkSigner>) -> Decoder {
        Decoder {
            state: State::Header,
            line: Vec::new(),
            signer,
            claimed: None,
            hasher: None,
            trailers: Vec::new(),
            decoded: 0,
        }
    }

    /// Payload bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Decodes `input`, passing payload bytes to `sink` in order.
    pub fn feed<E>(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), FeedError<E>> {
        while !input.is_empty() {
            match self.state {
                State::Header | State::Trailers => {
                    let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                        self.push_line(input)?;
                        return Ok(());
                    };
                    self.push_line(&input[..nl])?;
                    input = &input[nl + 1..];
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if self.state == State::Header {
                        self.header(&line)?;
                    } else {
                        self.trailer(&line)?;
                    }
                }
                State::Data(left) => {
                    let n = (left as usize).min(input.len());
                    let (data, rest) = input.split_at(n);
                    if let Some(h) = &mut self.hasher {
                        h.update(data);
                    }
                    sink(data).map_err(FeedError::Sink)?;
                    self.decoded += n as u64;
                    input = rest;
                    self.state = if left == n as u64 {
                        State::DataEnd
                    } else {
                        State::Data(left - n as u64)
                    };
                }
                State::DataEnd => {
                    let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                        self.push_line(input)?;
                        return Ok(());
                    };
                    self.push_line(&input[..nl])?;
                    input = &input[nl + 1..];
                    let line = std::mem::take(&mut self.line);
                    if !(line.is_empty() || line == b"\r") {
                        return Err(ChunkError::Malformed("no CRLF after chunk data").into());
                    }
                    self.end_chunk()?;
                    self.state = State::Header;
                }
                State::Done => {
                    if input.iter().all(|b| b.is_ascii_whitespace()) {
                        return Ok(());
                    }
                    return Err(ChunkError::Malformed("data after the last chunk").into());
                }
            }
        }
        Ok(())
    }

    /// Checks the body is complete and returns its trailers (lower-cased
    /// names).
    pub fn finish(self) -> Result<Vec<(String, String)>, ChunkError> {
        match self.state {
            State::Done => Ok(self.trailers),
            // A body with no trailers may end right after the last chunk's
            // header, without the empty line.
            State::Trailers if self.line.is_empty() => Ok(self.trailers),
            _ => Err(ChunkError::Incomplete),
        }
    }

    fn push_line(&mut self, part: &[u8]) -> Result<(), ChunkError> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(ChunkError::Malformed("line too long"));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn header(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let text = std::str::from_utf8(line).map_err(|_| ChunkError::Malformed("header"))?;
        let (size, ext) = text.split_once(';').unwrap_or((text, ""));
        let size = u64::from_str_radix(size.trim(), 16)
            .map_err(|_| ChunkError::Malformed("chunk size"))?;
        self.claimed = ext
            .split(';')
            .find_map(|e| e.trim().strip_prefix("chunk-signature="))
            .map(str::to_owned);
        if self.signer.is_some() {
            if self.claimed.is_none() {
                return Err(ChunkError::Signature);
            }
            self.hasher = Some(Sha256::new());
        }
        if size == 0 {
            self.end_chunk()?;
            self.state = State::Trailers;
        } else {
            self.state = State::Data(size);
        }
        Ok(())
    }

    fn end_chunk(&mut self) -> Result<(), ChunkError> {
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        let hash = hex::encode(self.hasher.take().unwrap_or_default().finalize());
        let expected =
            sigv4::chunk_signature(&signer.key, &signer.signature, &signer.previous, &hash);
        if self.claimed.as_deref() != Some(expected.as_str()) {
            return Err(ChunkError::Signature);
        }
        signer.previous = expected;
        Ok(())
    }

    fn trailer(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| ChunkError::Malformed("trailer"))?;
        let (k, v) = text
            .split_once(':')
            .ok_or(ChunkError::Malformed("trailer"))?;
        self.trailers
            .push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        Ok(())
    }
}

/// A failure while feeding: the body's, or the sink's.
#[derive(Debug)]
pub enum FeedError<E> {
    Chunk(ChunkError),
    Sink(E),
}

impl<E> From<ChunkError> for FeedError<E> {
    fn from(e: ChunkError) -> Self {
        FeedError::Chunk(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(body: &[u8], piece: usize) -> (Vec<u8>, Vec<(String, String)>) {
        let mut d = Decoder::new(None);
        let mut out = Vec::new();
        for p in body.chunks(piece) {
            d.feed::<()>(p, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        (out, d.finish().unwrap())
    }

    #[test]
    fn unsigned_with_trailer_in_any_pieces() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for piece in 1..body.len() {
            let (out, trailers) = decode_in_pieces(body, piece);
            assert_eq!(out, b"hello world");
            assert_eq!(
                trailers,
                vec![("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]
            );
        }
    }

    #[test]
    fn truncated_body_is_incomplete() {
        let mut d = Decoder::new(None);
        d.feed::<()>(b"5\r\nhel", &mut |_| Ok(())).unwrap();
        assert_eq!(d.finish(), Err(ChunkError::Incomplete));
    }

    /// The example of AWS's "Signature Calculations for the Authorization
    /// Header: Transferring Payload in Multiple Chunks" page: 65 KiB of 'a'
    /// in a 64 KiB chunk and a 1 KiB chunk.
    #[test]
    fn signed_chunks_as_aws_documents() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let headers = [("authorization", auth), ("x-amz-date", "20130524T000000Z")];
        let sig = sigv4::parse(&sigv4::Request {
            method: "PUT",
            path: "/examplebucket/chunkObject.txt",
            query: "",
            headers: &headers,
            body: b"",
        })
        .unwrap();
        let key = sigv4::signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &sig);
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        let mut d = Decoder::new(Some(ChunkSigner::new(key.clone(), sig.clone())));
        let mut n = 0;
        d.feed::<()>(&body, &mut |b| {
            n += b.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 66560);
        assert_eq!(d.finish(), Ok(vec![]));

        body[70] ^= 1; // inside the first chunk's data
        let mut d = Decoder::new(Some(ChunkSigner::new(key, sig)));
        let r = d.feed::<()>(&body, &mut |_| Ok(()));
        assert!(matches!(r, Err(FeedError::Chunk(ChunkError::Signature))));
    }
}
