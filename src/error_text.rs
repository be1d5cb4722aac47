//! One-line error messages with their causes, for reports, logs and the final `error:` line,
//! and the scrubbing of server text of the value being written.
//!
//! SDK and HTTP errors keep the useful part ("Connection refused") several causes deep, and some
//! error types repeat their cause's text in their own. [`chain`] renders the chain once, without
//! the `Debug` dumps that `aws_smithy_types`' `DisplayErrorContext` appends (noise to a reader,
//! and more surface than a message needs).
//!
//! AWS itself never quotes a request's value in an error, but what answers may not be AWS: a
//! proxy, a WAF or an error page can echo the request body, and that text would reach the log
//! line, the terminal and the report. [`scrub`] removes the value from any such text in every
//! form it takes on the way: raw, JSON-escaped as it sits inside the request body (and escaped
//! again, ASCII-only, or HTML-escaped, as an echoing server may re-encode it), and base64 (how a
//! `SecretBinary` travels). A truncated echo is caught too: any run of at least
//! [`MIN_PREFIX`] bytes of the start of a form is removed. A value too short to search for
//! without hitting innocent text withholds the whole text instead.

use std::error::Error;
use std::ops::Range;

use base64::Engine;
use zeroize::Zeroizing;

use crate::secret::SecretValue;

/// What replaces a removed value.
pub const REDACTED: &str = "[REDACTED]";

/// The shortest start of a value's form that counts as an echo of it (a server that truncates
/// the body it quotes still leaks its start).
pub(crate) const MIN_PREFIX: usize = 16;

/// Values shorter than this (in bytes) are not searched for piecewise: any occurrence withholds
/// the whole text (a two-character value would otherwise blank every matching letter).
pub(crate) const MIN_SEARCHABLE: usize = 4;

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

/// The forms a value can take in text that quotes a request (see the module docs). Every form
/// is zeroized on drop.
fn forms(value: &SecretValue) -> Vec<Zeroizing<String>> {
    let bytes = value.expose_bytes();
    let mut out: Vec<Zeroizing<String>> = Vec::new();
    // padded: an echo holds the padding too, and a prefix match covers an unpadded echo
    out.push(Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ));
    out.push(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE.encode(bytes),
    ));
    out.push(Zeroizing::new(
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes),
    ));
    if let Ok(raw) = std::str::from_utf8(bytes) {
        let json = Zeroizing::new(json_escape(raw, false));
        out.push(Zeroizing::new(json_escape(&json, false)));
        out.push(Zeroizing::new(json_escape(raw, true)));
        out.push(Zeroizing::new(json_escape(raw, true).to_uppercase_hex()));
        out.push(Zeroizing::new(html_escape(raw)));
        out.push(Zeroizing::new(html_escape(&json)));
        out.push(json);
        out.push(Zeroizing::new(raw.to_owned()));
        // [`chain`] puts a message on one line: an echoed multi-line value arrives that way
        out.push(Zeroizing::new(raw.replace(['\n', '\r'], " ")));
    }
    out.retain(|f| !f.is_empty());
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    out.dedup_by(|a, b| a.as_str() == b.as_str());
    out
}

/// Upper-case hex digits in `\uXXXX` escapes (some encoders write `\u00E9`).
trait UpperHex {
    fn to_uppercase_hex(&self) -> String;
}

impl UpperHex for String {
    fn to_uppercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut rest = self.as_str();
        while let Some(i) = rest.find("\\u") {
            out.push_str(&rest[..i + 2]);
            let hex_end = (i + 6).min(rest.len());
            out.push_str(&rest[i + 2..hex_end].to_ascii_uppercase());
            rest = &rest[hex_end..];
        }
        out.push_str(rest);
        out
    }
}

/// `s` as the inside of a JSON string: what `serde_json` and the AWS SDK write (`"`, `\\` and
/// control characters escaped), or with every non-ASCII character as `\uXXXX` (surrogate pairs
/// above U+FFFF) as ASCII-only encoders such as Python's `json.dumps` write.
pub(crate) fn json_escape(s: &str, ascii_only: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ascii_only && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` HTML-escaped (an error page quoting the body).
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of `text` that hold `form` or a start of it at least [`MIN_PREFIX`] bytes long.
fn occurrences(text: &str, form: &str, out: &mut Vec<Range<usize>>) {
    let head = floor_boundary(form, MIN_PREFIX.min(form.len()));
    if head == 0 {
        return;
    }
    let (t, f) = (text.as_bytes(), form.as_bytes());
    for (i, _) in text.match_indices(&form[..head]) {
        let mut j = head;
        while j < f.len() && i + j < t.len() && t[i + j] == f[j] {
            j += 1;
        }
        out.push(i..i + floor_boundary(form, j));
    }
}

/// `text` with every occurrence of `value` removed, in any of the forms a server may quote it in
/// (see the module docs). Call it on any text a server provided while `value` was being sent.
pub(crate) fn scrub(text: &str, value: &SecretValue) -> String {
    if value.is_empty() || text.is_empty() {
        return text.to_owned();
    }
    let forms = forms(value);
    let mut ranges = Vec::new();
    for f in &forms {
        occurrences(text, f, &mut ranges);
    }
    if ranges.is_empty() {
        return text.to_owned();
    }
    if value.len() < MIN_SEARCHABLE {
        return format!(
            "{REDACTED} (server text withheld: it contains the {}-byte value being written)",
            value.len()
        );
    }
    ranges.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in ranges {
        if r.end <= at {
            continue;
        }
        let start = r.start.max(at);
        if start > at || out.is_empty() || !out.ends_with(REDACTED) {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
        }
        at = r.end;
    }
    out.push_str(&text[at..]);
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

    const PLANTED: &str = "Pl4nted\"S3cret<&>'\\ é😀 value with a long tail 0123456789";

    fn all_forms(v: &str) -> Vec<String> {
        let b = base64::engine::general_purpose::STANDARD.encode(v);
        vec![
            v.to_owned(),
            serde_json::to_string(v)
                .unwrap()
                .trim_matches('"')
                .to_owned(),
            json_escape(v, true),
            json_escape(v, true).to_uppercase_hex(),
            serde_json::to_string(&serde_json::to_string(v).unwrap()).unwrap(),
            html_escape(v),
            b.clone(),
            b.trim_end_matches('=').to_owned(),
        ]
    }

    #[test]
    fn every_form_is_removed() {
        let value = SecretValue::text(PLANTED.to_owned());
        for form in all_forms(PLANTED) {
            let text = format!("HTTP 400: request body {{\"SecretString\":\"{form}\"}} rejected");
            let out = scrub(&text, &value);
            assert!(!out.contains(&form), "{out}");
            assert!(
                !out.contains("Pl4nted") && !out.contains("UGw0bnRlZ"),
                "{out}"
            );
            assert!(
                out.starts_with("HTTP 400: request body") && out.ends_with("rejected"),
                "{out}"
            );
            assert!(out.contains(REDACTED), "{out}");
        }
    }

    #[test]
    fn multi_line_values_flattened_by_chain_are_removed() {
        let value = SecretValue::text("first-line-of-secret\nsecond-line".into());
        let e = std::io::Error::other("echo: first-line-of-secret\nsecond-line!");
        let out = scrub(&chain(&e), &value);
        assert_eq!(out, format!("echo: {REDACTED}!"));
    }

    #[test]
    fn truncated_echo_is_removed() {
        let value = SecretValue::text(PLANTED.to_owned());
        let json = serde_json::to_string(PLANTED).unwrap();
        let cut = &json[..30];
        let out = scrub(&format!("body: {cut}... (truncated)"), &value);
        assert_eq!(out, format!("body: \"{REDACTED}... (truncated)"));
    }

    #[test]
    fn binary_values_in_base64() {
        let bytes: Vec<u8> = (0u8..=255).rev().collect();
        let value = SecretValue::binary(bytes.clone());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let out = scrub(&format!("{{\"SecretBinary\":\"{b64}\"}}"), &value);
        assert!(!out.contains(&b64[..20]), "{out}");
        assert_eq!(out, format!("{{\"SecretBinary\":\"{REDACTED}\"}}"));
    }

    #[test]
    fn short_values_withhold_the_text_only_when_present() {
        let value = SecretValue::text("42".into());
        assert_eq!(scrub("AccessDenied", &value), "AccessDenied");
        let out = scrub("body {\"SecretString\":\"42\"}", &value);
        assert!(!out.contains("42") || out.contains("2-byte"), "{out}");
        assert!(out.starts_with(REDACTED), "{out}");
    }

    #[test]
    fn unrelated_text_is_untouched() {
        let value = SecretValue::text(PLANTED.to_owned());
        let t = "ResourceExistsException: the secret devops/x already exists";
        assert_eq!(scrub(t, &value), t);
        assert_eq!(scrub(t, &SecretValue::text(String::new())), t);
    }
}
