//! Turning a server address into the HTTP base URL and the WebSocket URL.

use crate::{Error, Result};

/// `http://host:port` from `http(s)://host:port[/]` or `ws(s)://host:port[/v1/ws]`.
pub(crate) fn http_base(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/v1/ws").unwrap_or(url);
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::InvalidUrl(url.to_owned()))?;
    let scheme = match scheme {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return Err(Error::InvalidUrl(url.to_owned())),
    };
    if rest.is_empty() {
        return Err(Error::InvalidUrl(url.to_owned()));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// `ws://host:port/v1/ws` from any form [`http_base`] accepts.
pub(crate) fn ws_url(url: &str) -> Result<String> {
    let base = http_base(url)?;
    let ws = match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.trim_start_matches("http://")),
    };
    Ok(format!("{ws}/v1/ws"))
}

/// `text` as one path segment: everything but unreserved characters escaped.
pub(crate) fn segment(text: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(text, KEEP).to_string()
}

/// `text` as a query parameter's value: everything but unreserved
/// characters, `:` and `/` escaped (those two may stand in a query, RFC
/// 3986 §3.4, so a URL there stays readable).
pub(crate) fn query_value(text: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b':')
        .remove(b'/');
    utf8_percent_encode(text, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_value_is_escaped() {
        assert_eq!(
            query_value("http://127.0.0.1:4000/"),
            "http://127.0.0.1:4000/"
        );
        assert_eq!(query_value("/a?b=c&d#e f"), "/a%3Fb%3Dc%26d%23e%20f");
    }

    #[test]
    fn a_segment_is_escaped() {
        assert_eq!(segment("m.room.encrypted"), "m.room.encrypted");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn addresses_normalise() {
        assert_eq!(http_base("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(http_base("ws://h:1/v1/ws").unwrap(), "http://h:1");
        assert_eq!(ws_url("http://h:1").unwrap(), "ws://h:1/v1/ws");
        assert_eq!(ws_url("https://h").unwrap(), "wss://h/v1/ws");
        assert_eq!(ws_url("ws://h:2/v1/ws").unwrap(), "ws://h:2/v1/ws");
        assert!(http_base("h:1").is_err());
        assert!(http_base("ftp://h").is_err());
    }
}
