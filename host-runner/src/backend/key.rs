//! Key syntax every store enforces, so that no key can name anything outside the
//! store's root, whatever the store maps keys onto (files, object names).

use super::BackendError;

/// Longest key accepted, in bytes (well under PATH_MAX once joined to a root).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest `/`-separated segment accepted, in bytes (NAME_MAX on common filesystems).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Accepts a full object key: relative, `/`-separated, non-empty segments other than `.` and `..`.
pub fn validate_key(key: &str) -> Result<(), BackendError> {
    if key.is_empty() {
        return Err(refuse(key, "is empty"));
    }
    check_text(key)?;
    for segment in key.split('/') {
        check_segment(key, segment)?;
    }
    Ok(())
}

/// Accepts a listing prefix: like a key, but it may be empty, and its last segment
/// may be partial or empty (`shares/aa/` or `shares/aa/abc`).
pub fn validate_prefix(prefix: &str) -> Result<(), BackendError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_text(prefix)?;
    let (complete, last) = match prefix.rsplit_once('/') {
        Some((complete, last)) => (Some(complete), last),
        None => (None, prefix),
    };
    if let Some(complete) = complete {
        for segment in complete.split('/') {
            check_segment(prefix, segment)?;
        }
    }
    if !last.is_empty() {
        check_segment(prefix, last)?;
    }
    Ok(())
}

/// Checks that concern the whole text rather than one segment.
fn check_text(key: &str) -> Result<(), BackendError> {
    if key.len() > MAX_KEY_LEN {
        return Err(refuse(key, &format!("is longer than {MAX_KEY_LEN} bytes")));
    }
    if key.starts_with('/') {
        return Err(refuse(key, "is absolute (starts with `/`)"));
    }
    if key.contains('\0') {
        return Err(refuse(key, "contains a NUL byte"));
    }
    // A backslash is a separator on some hosts; refusing it keeps keys portable.
    if key.contains('\\') {
        return Err(refuse(key, "contains a backslash"));
    }
    Ok(())
}

fn check_segment(key: &str, segment: &str) -> Result<(), BackendError> {
    match segment {
        "" => Err(refuse(key, "has an empty segment")),
        "." | ".." => Err(refuse(key, &format!("has a `{segment}` segment"))),
        _ if segment.len() > MAX_SEGMENT_LEN => Err(refuse(
            key,
            &format!("has a segment longer than {MAX_SEGMENT_LEN} bytes"),
        )),
        _ => Ok(()),
    }
}

fn refuse(key: &str, reason: &str) -> BackendError {
    // Debug formatting escapes NUL and control characters, so the message stays one readable line.
    let shown: String = if key.len() > 80 {
        format!("{:?}…", &key[..key.floor_char_boundary(80)])
    } else {
        format!("{key:?}")
    };
    BackendError::InvalidKey(format!("key {shown} {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(key: &str) -> bool {
        matches!(validate_key(key), Err(BackendError::InvalidKey(_)))
    }

    #[test]
    fn share_keys_are_accepted() {
        assert_eq!(
            validate_key("shares/aa/aaaaaaaaaaaaaaaaaaaaaaaaaa/0"),
            Ok(())
        );
        assert_eq!(
            validate_key("shares/aa/aaaaaaaaaaaaaaaaaaaaaaaaaa/12.3"),
            Ok(())
        );
        assert_eq!(validate_key("a..b/c.d"), Ok(()));
    }

    #[test]
    fn escapes_and_malformed_keys_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../b",
            "a/./b",
            "./a",
            "a//b",
            "a/",
            "a\0b",
            "a\\b",
        ] {
            assert!(refused(key), "{key:?} should be refused");
        }
        assert!(refused(&"a".repeat(MAX_SEGMENT_LEN + 1)));
        assert!(refused(
            "a/".repeat(MAX_KEY_LEN / 2 + 1).trim_end_matches('/')
        ));
    }

    #[test]
    fn refusal_names_key_and_reason() {
        let Err(BackendError::InvalidKey(text)) = validate_key("a/../b") else {
            panic!()
        };
        assert!(
            text.contains("\"a/../b\"") && text.contains("`..`"),
            "{text}"
        );
        let Err(BackendError::InvalidKey(text)) = validate_key("a\0b") else {
            panic!()
        };
        assert!(text.contains("NUL") && !text.contains('\0'), "{text}");
    }

    #[test]
    fn prefixes_may_be_empty_or_partial() {
        for prefix in ["", "shares/", "shares/aa/", "shares/a", "sh"] {
            assert_eq!(validate_prefix(prefix), Ok(()), "{prefix:?}");
        }
        for prefix in [
            "/",
            "/shares",
            "../",
            "a/../",
            "a//",
            "a\0",
            "shares/..",
            "./",
        ] {
            assert!(
                validate_prefix(prefix).is_err(),
                "{prefix:?} should be refused"
            );
        }
    }
}
