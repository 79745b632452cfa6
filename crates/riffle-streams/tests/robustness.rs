//! Arbitrary bytes and arbitrary documents never make a decoder or the
//! validator panic: bad input always ends as a value or an AWS error.

use proptest::prelude::*;
use riffle_core::iterator::IteratorCodec;
use riffle_streams::{fast, model};
use riffle_wire::{eventstream, shape, sigv4, Encoding};

fn json_like() -> impl Strategy<Value = String> {
    // Fragments of the bodies clients send, shuffled into near-valid JSON.
    let parts = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"StreamName\"".to_owned()),
        Just("\"Records\"".to_owned()),
        Just("\"Data\"".to_owned()),
        Just("\"PartitionKey\"".to_owned()),
        Just("\"ExplicitHashKey\"".to_owned()),
        Just("\"aGk=\"".to_owned()),
        Just("\"s\"".to_owned()),
        Just("1".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "\"[a-z\\\\\"]{0,5}\"",
    ];
    prop::collection::vec(parts, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn json_bodies_never_panic(body in json_like()) {
        let _ = fast::put_records_json(body.as_bytes());
        if let Ok(v) = Encoding::Json.decode(body.as_bytes()) {
            for (_, shape) in model::OPERATIONS {
                let _ = shape::validate(shape, v.clone());
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = fast::put_records_json(&bytes);
        let _ = Encoding::Json.decode(&bytes);
        if let Ok(v) = Encoding::Cbor.decode(&bytes) {
            let _ = shape::validate(&model::PUT_RECORDS_INPUT, v);
        }
        let _ = eventstream::decode(&bytes);
        let codec = IteratorCodec::new([1; 32]);
        let text = String::from_utf8_lossy(&bytes);
        let _ = codec.decode(&text);
        let _ = riffle_core::seqnum::SeqNum::decode(&text);
        let _ = riffle_core::names::parse_consumer_arn(&text);
        let headers = [("authorization", text.as_ref()), ("x-amz-date", "20260101T000000Z")];
        let req = sigv4::Request { method: "POST", path: "/", query: &text, headers: &headers, body: &bytes };
        if let Ok(sig) = sigv4::parse(&req) {
            let _ = sigv4::verify(&req, &sig, "secret", 0);
        }
    }
}
