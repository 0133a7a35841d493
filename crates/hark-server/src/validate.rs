//! Checks on what people type: names, titles, passwords and message text.

use crate::error::{ApiError, ApiResult};
use hark_proto::ErrorCode;

pub(crate) fn username(name: &str) -> ApiResult<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(3..=32).contains(&name.len()) || !ok_chars {
        return Err(ApiError::invalid(
            "username: 3 to 32 characters of a-z, A-Z, 0-9, '_', '.', '-'",
        ));
    }
    if name.to_ascii_lowercase().starts_with("deleted-") {
        return Err(ApiError::invalid(
            "username: names starting with deleted- are kept for deleted accounts",
        ));
    }
    Ok(())
}

pub(crate) fn password(password: &str) -> ApiResult<()> {
    if !(8..=1024).contains(&password.len()) {
        return Err(ApiError::invalid("password: 8 to 1024 bytes"));
    }
    Ok(())
}

/// A short human label (display name, device name, group title): trimmed,
/// 1 to `max` characters, no control characters.
pub(crate) fn label(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    let count = value.chars().count();
    if count == 0 || count > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field}: 1 to {max} characters, no control characters"
        )));
    }
    Ok(value.to_owned())
}

/// A file's caption: like a message's text, but it may be empty.
pub(crate) fn caption(text: &str, max_bytes: usize) -> ApiResult<()> {
    if text.is_empty() {
        return Ok(());
    }
    self::text(text, max_bytes)
}

/// An encrypted chat's message: a JSON object of at most `max_bytes`, and no text.
pub(crate) fn ciphertext(
    content: &serde_json::Value,
    text: &str,
    max_bytes: usize,
) -> ApiResult<()> {
    if !content.is_object() {
        return Err(ApiError::invalid("encrypted must be a JSON object"));
    }
    if content.to_string().len() > max_bytes {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("encrypted is larger than {max_bytes} bytes"),
        ));
    }
    if !text.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EncryptionRequired,
            "an encrypted message's text must be empty: its content is in `encrypted`",
        ));
    }
    Ok(())
}

pub(crate) fn text(text: &str, max_bytes: usize) -> ApiResult<()> {
    if text.len() > max_bytes {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("text is longer than {max_bytes} bytes"),
        ));
    }
    if text.trim().is_empty() {
        return Err(ApiError::invalid("text must not be empty"));
    }
    Ok(())
}

/// A reaction: one short emoji (a grapheme cluster can take several code
/// points), no letters, digits, spaces or control characters.
pub(crate) fn emoji(emoji: &str) -> ApiResult<()> {
    let ok = !emoji.is_empty()
        && emoji.len() <= 32
        && emoji.chars().count() <= 10
        && !emoji
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("emoji: one emoji, at most 32 bytes"))
    }
}

/// Whether JSON text (already known to parse) holds a string with U+0000:
/// a `\u0000` escape whose backslash is not itself escaped. PostgreSQL's
/// `TEXT` cannot store that character, and no message, name or key needs
/// it, so every request refuses it on both backends alike.
pub(crate) fn json_has_nul(json: &[u8]) -> bool {
    let mut from = 0;
    while let Some(at) = find(&json[from..], b"\\u0000").map(|i| from + i) {
        let backslashes = json[..=at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Whether a raw (still percent-encoded) path or query holds U+0000.
pub(crate) fn uri_has_nul(raw: &str) -> bool {
    find(raw.as_bytes(), b"%00").is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Why a request with a U+0000 anywhere is refused (`invalid_field`).
pub(crate) const NUL_REFUSED: &str = "strings must not contain U+0000 (NUL)";

/// The refusal for a U+0000 anywhere in a request.
pub(crate) fn nul_refused() -> ApiError {
    ApiError::invalid(NUL_REFUSED)
}

#[cfg(test)]
mod tests {
    use super::{json_has_nul, uri_has_nul};

    #[test]
    fn a_nul_is_found_only_where_it_is_one() {
        assert!(json_has_nul(br#"{"text":"a\u0000b"}"#));
        assert!(json_has_nul(br#"{"text":"\\\u0000"}"#));
        // An escaped backslash followed by the letters u0000 is six characters of text.
        assert!(!json_has_nul(br#"{"text":"\\u0000"}"#));
        assert!(!json_has_nul(br#"{"text":"\\\\u0000"}"#));
        assert!(!json_has_nul(br#"{"text":"\u0001 u0000"}"#));
        assert!(uri_has_nul("q=a%00b"));
        assert!(!uri_has_nul("q=a%2500b"));
    }
}
