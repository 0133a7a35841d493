//! What the fuzz targets share: JSON decoded the way the server and the
//! SDK decode it, and the check that whatever decodes encodes back to
//! itself (what a client builds from these types, the server reads as it
//! was meant).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Debug;

/// `bytes` decoded as the server's JSON body extractor does: axum 0.8's
/// `Json::from_bytes` (serde_path_to_error over a slice deserializer, then
/// nothing but whitespace after the value), which `Body` in
/// crates/hark-server/src/http/extract.rs wraps.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// A client frame decoded as crates/hark-server/src/ws/frames.rs `decode`
/// does: any JSON value first (so an error can name the request's id),
/// then the frame from that value.
pub fn decode_client_frame(text: &str) -> Option<hark_proto::ClientFrame> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    serde_json::from_value(value).ok()
}

/// Panics unless `value` encodes to JSON that decodes to the same value:
/// what a client encodes from these types, the server reads as meant.
///
/// Floats (only inside opaque JSON: end-to-end encrypted content, keys) may
/// come back a unit in the last place off: serde_json without its
/// `float_roundtrip` feature parses some 17-digit floats to a neighbour
/// (documented; none of the JSON a client sends there has floats).
pub fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = match serde_json::to_string(value) {
        Ok(json) => json,
        Err(e) => panic!("{value:?} does not encode: {e}"),
    };
    let back: T = match serde_json::from_str(&json) {
        Ok(back) => back,
        Err(e) => panic!("{json}, encoded from {value:?}, does not decode: {e}"),
    };
    if back != *value {
        let (a, b) = (serde_json::to_value(&back), serde_json::to_value(value));
        let same = matches!((&a, &b), (Ok(a), Ok(b)) if same_but_floats(a, b));
        assert!(same, "{json} decodes to {back:?}, not {value:?}");
    }
}

/// Whether `a` and `b` are the same JSON but for floats a few units in the
/// last place apart.
fn same_but_floats(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x != y => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
            }
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_but_floats(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, x), (ky, y))| kx == ky && same_but_floats(x, y))
        }
        _ => a == b,
    }
}
