//! The name a file was uploaded with, made safe to keep and show.

/// A file name as it may be stored and shown: its last path part, without
/// control characters, at most 255 bytes; `None` when nothing is left.
pub fn clean_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean = String::new();
    for c in last.chars().filter(|c| !c.is_control()) {
        if clean.len() + c.len_utf8() > 255 {
            break;
        }
        clean.push(c);
    }
    // No leading dots (no `..`, nothing hidden), whatever spaces are
    // between them.
    let clean = clean
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end()
        .to_owned();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_lose_their_paths_and_controls() {
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            clean_name("C:\\x\\report.pdf").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(clean_name("a\u{0}b\nc.txt").as_deref(), Some("abc.txt"));
        assert_eq!(clean_name("..").as_deref(), None);
        assert_eq!(clean_name(&"é".repeat(300)).unwrap().len(), 254);
    }

    #[test]
    fn no_name_starts_with_a_dot() {
        // Found by fuzzing (fuzz/corpus/file_name/regression-dots-between-spaces):
        // dots left after spaces were trimmed came back as "...".
        assert_eq!(clean_name(". ...").as_deref(), None);
        assert_eq!(clean_name(" . ..").as_deref(), None);
        assert_eq!(clean_name(". .x").as_deref(), Some("x"));
        assert_eq!(clean_name(" .profile ").as_deref(), Some("profile"));
    }
}
