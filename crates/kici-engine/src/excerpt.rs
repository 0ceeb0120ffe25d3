//! Quoting user input in messages: at most [`QUOTE_LIMIT`] characters of it, so a hostile lock
//! file or payload cannot flood a log line, a failure reason or an error body.

use std::borrow::Cow;

/// The most characters of one piece of user input a message quotes.
pub const QUOTE_LIMIT: usize = 200;

/// `text` itself when short, otherwise its first [`QUOTE_LIMIT`] characters followed by
/// `… (<n> more characters)`.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(QUOTE_LIMIT) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let more = text[cut..].chars().count();
            Cow::Owned(format!("{}… ({more} more characters)", &text[..cut]))
        }
    }
}

/// A `serde_json` error's text with the message part shortened: serde quotes the offending
/// value whole (`invalid type: string "…"`), while the position suffix is what a reader needs.
pub fn json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) if err.line() > 0 => format!("{}{}", excerpt(&text[..at]), &text[at..]),
        _ => excerpt(&text).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_is_cut() {
        assert_eq!(excerpt("main"), "main");
        let exact = "é".repeat(QUOTE_LIMIT);
        assert_eq!(excerpt(&exact), exact);
        let long = format!("{}{}", "a".repeat(QUOTE_LIMIT), "b".repeat(1000));
        assert_eq!(
            excerpt(&long),
            format!("{}… (1000 more characters)", "a".repeat(QUOTE_LIMIT))
        );
    }

    #[test]
    fn json_errors_keep_their_position() {
        let value = format!("{{\"n\": \"{}\"}}", "x".repeat(100_000));
        let err = serde_json::from_str::<std::collections::HashMap<String, u64>>(&value).unwrap_err();
        let text = json_error(&err);
        assert!(text.len() < 400, "{text}");
        assert!(text.starts_with("invalid type: string \"xxx"), "{text}");
        assert!(text.ends_with("at line 1 column 100008"), "{text}");
    }
}
