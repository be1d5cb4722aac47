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
