//! One-line error messages with their causes, for reports, logs and the final `error:` line.
//!
//! SDK and HTTP errors keep the useful part ("Connection refused") several causes deep, and some
//! error types repeat their cause's text in their own. This renders the chain once, without the
//! `Debug` dumps that `aws_smithy_types`' `DisplayErrorContext` appends (noise to a reader, and
//! more surface than a message needs).

use std::error::Error;

/// `e` and each cause, separated by `": "`, on one line (line breaks become spaces: the text goes
/// into report cells and log lines). See [`join`].
pub fn chain<E: Error + ?Sized>(e: &E) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    join(parts).replace(['\n', '\r'], " ")
}

/// Joins messages, outermost first, with `": "`; a message the text so far already contains (an
/// error that prints its cause itself) is skipped. Line breaks inside messages are kept (a
/// config error lists its problems one per line).
pub fn join<I: IntoIterator<Item = String>>(parts: I) -> String {
    let mut out = String::new();
    for s in parts {
        if s.is_empty() || out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

/// `text` with every occurrence of `value` removed: its raw text, its JSON-escaped form (as it
/// stands inside a JSON request body) and its base64 form (as binary values travel), each
/// replaced by `<redacted>`. Applied to any text a server sends back about a request that
/// carried the value (an error page that echoes the body, a WAF, a proxy).
pub fn scrub(text: &str, value: &crate::secret::SecretValue) -> String {
    use base64::Engine;
    let bytes = value.expose_bytes();
    if bytes.is_empty() {
        return text.to_owned();
    }
    let mut forms: Vec<String> = Vec::new();
    if let Ok(raw) = std::str::from_utf8(bytes) {
        forms.push(raw.to_owned());
        if let Ok(json) = serde_json::to_string(raw) {
            forms.push(json[1..json.len() - 1].to_owned());
        }
        // a JSON value re-rendered on one line by an error page
        forms.push(raw.replace(['\n', '\r'], " "));
    }
    forms.push(base64::engine::general_purpose::STANDARD.encode(bytes));
    forms.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes));
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let mut out = text.to_owned();
    for f in forms.iter().filter(|f| !f.is_empty()) {
        out = out.replace(f.as_str(), "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_once_on_one_line() {
        let e = Outer(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused\nreally",
        )));
        assert_eq!(chain(&e), "outer: middle: refused really");
    }

    #[test]
    fn join_skips_repeats_and_empties() {
        let parts = ["source: x: y", "x: y", "", "z"].map(String::from);
        assert_eq!(join(parts), "source: x: y: z");
    }
}
