//! Exact JSON text out of Vault answers.
//!
//! Vault's KV data is a JSON object; secretport stores it as the JSON `SecretString`. Parsing it
//! into `serde_json::Value` and printing it again would change number literals (`1.50` becomes
//! `1.5`, integers beyond 64 bits become floats), so the data is copied from the answer instead:
//! [`find`] locates the value of a key path without building it, and [`compact`] rewrites that
//! span with whitespace removed, number literals, `true`/`false`/`null` and key order copied
//! verbatim, and strings re-escaped the way `serde_json` writes them (Go's `\u003c`-style HTML
//! escapes become plain characters; the JSON meaning is identical). `serde_json` does the
//! validation of every string and number.
//!
//! Buffers holding decoded strings are zeroized; the output is allocated once at its final size
//! (it is never longer than the input span), so no partial copy of a value is left behind by a
//! reallocation.

use std::ops::Range;

use serde::de::IgnoredAny;
use zeroize::Zeroizing;

/// Nesting limit, as `serde_json`'s own.
const MAX_DEPTH: usize = 128;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    /// Parses one JSON value of type `T` at the cursor with `serde_json`, advancing past it.
    fn parse<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        let mut it = serde_json::Deserializer::from_slice(&self.b[self.i..]).into_iter::<T>();
        match it.next() {
            Some(Ok(v)) => {
                self.i += it.byte_offset();
                Ok(v)
            }
            Some(Err(e)) => Err(format!("invalid JSON near byte {}: {}", self.i, e)),
            None => Err("unexpected end of JSON".to_owned()),
        }
    }

    fn skip_value(&mut self) -> Result<(), String> {
        self.ws();
        self.parse::<IgnoredAny>().map(|_| ())
    }

    fn string(&mut self) -> Result<Zeroizing<String>, String> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.parse::<String>().map(Zeroizing::new)
    }

    /// Copies an object or array (the opening byte is next) into `out`: `element` copies one
    /// member or item; members are separated by `,` and the container ends with `close`.
    fn copy_container(
        &mut self,
        out: &mut String,
        close: u8,
        element: impl Fn(&mut Self, &mut String) -> Result<(), String>,
    ) -> Result<(), String> {
        if let Some(open) = self.peek() {
            self.i += 1;
            out.push(open as char);
        }
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            out.push(close as char);
            return Ok(());
        }
        loop {
            element(self, out)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    out.push(',');
                }
                Some(c) if c == close => {
                    self.i += 1;
                    out.push(close as char);
                    return Ok(());
                }
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at byte {}",
                        close as char, self.i
                    ))
                }
            }
        }
    }

    /// Copies one value into `out`, compacted.
    fn copy_value(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("JSON nested too deeply".to_owned());
        }
        self.ws();
        match self.peek() {
            Some(b'{') => self.copy_container(out, b'}', |p, out| {
                let key = p.string()?;
                escape_into(&key, out);
                p.expect(b':')?;
                out.push(':');
                p.copy_value(out, depth + 1)
            }),
            Some(b'[') => self.copy_container(out, b']', |p, out| p.copy_value(out, depth + 1)),
            Some(b'"') => {
                let s = self.string()?;
                escape_into(&s, out);
                Ok(())
            }
            Some(b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
                // literal or number: validated by serde_json, copied verbatim
                let start = self.i;
                self.parse::<IgnoredAny>()?;
                let raw = std::str::from_utf8(&self.b[start..self.i])
                    .map_err(|_| "invalid UTF-8 in a number".to_owned())?;
                out.push_str(raw.trim_end());
                Ok(())
            }
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }
}

/// Writes `s` as a JSON string the way `serde_json` does (the escaping the error scrubber
/// also matches against).
fn escape_into(s: &str, out: &mut String) {
    out.push('"');
    out.push_str(&crate::error_text::json_escape(s, false));
    out.push('"');
}

/// The byte range of the value at `path` (object keys from the top), `None` when a key is
/// missing or a level is not an object. Errors only for malformed JSON.
pub(super) fn find(doc: &[u8], path: &[&str]) -> Result<Option<Range<usize>>, String> {
    let mut c = Cursor { b: doc, i: 0 };
    for key in path {
        c.ws();
        if c.peek() != Some(b'{') {
            return Ok(None);
        }
        c.i += 1;
        c.ws();
        if c.peek() == Some(b'}') {
            return Ok(None);
        }
        loop {
            let k = c.string()?;
            c.expect(b':')?;
            if k.as_str() == *key {
                break;
            }
            c.skip_value()?;
            c.ws();
            match c.peek() {
                Some(b',') => c.i += 1,
                Some(b'}') => return Ok(None),
                _ => return Err(format!("expected ',' or '}}' at byte {}", c.i)),
            }
        }
    }
    c.ws();
    let start = c.i;
    c.skip_value()?;
    Ok(Some(start..c.i))
}

/// The JSON value in `raw`, compacted (see the module docs). `raw` holds exactly one value.
pub(super) fn compact(raw: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut c = Cursor { b: raw, i: 0 };
    c.copy_value(&mut out, 0)?;
    c.ws();
    if c.i != raw.len() {
        return Err(format!("trailing characters at byte {}", c.i));
    }
    Ok(out)
}

/// Whether the span is the literal `null`.
pub(super) fn is_null(raw: &[u8]) -> bool {
    raw.trim_ascii() == b"null"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(doc: &'a str, path: &[&str]) -> Option<&'a str> {
        find(doc.as_bytes(), path).unwrap().map(|r| &doc[r])
    }

    #[test]
    fn finds_nested_values_in_any_key_order() {
        let doc = r#"{"request_id":"x","data":{"metadata":{"version":3},"data":{"a":[1,{"}":"{"}]}},"warnings":null}"#;
        assert_eq!(at(doc, &["data", "data"]), Some(r#"{"a":[1,{"}":"{"}]}"#));
        assert_eq!(at(doc, &["data", "metadata"]), Some(r#"{"version":3}"#));
        assert_eq!(at(doc, &["warnings"]), Some("null"));
        assert_eq!(at(doc, &["data", "nope"]), None);
        assert_eq!(at(doc, &["warnings", "x"]), None);
        assert_eq!(at("{}", &["data"]), None);
        assert_eq!(at(r#"{ "data" : 12 }"#, &["data"]), Some("12"));
        assert!(find(br#"{"data":"#, &["data"]).is_err());
    }

    #[test]
    fn compacts_keeping_numbers_and_order_verbatim() {
        let raw = "{ \"z\": 1.50, \"a\" : [1e3, -0, 123456789012345678901234567890, true, false, null],\n \"m\": {} , \"e\": [] }";
        assert_eq!(
            compact(raw.as_bytes()).unwrap(),
            r#"{"z":1.50,"a":[1e3,-0,123456789012345678901234567890,true,false,null],"m":{},"e":[]}"#
        );
    }

    #[test]
    fn out_of_range_numbers_are_copied_not_refused() {
        // serde_json would call 1e400 "out of range" if it parsed it as f64; IgnoredAny only
        // checks the syntax, and the literal is copied
        let raw = r#"{"a":1e400,"b":-1e-400,"c":123456789012345678901234567890123456789012345678901234567890}"#;
        assert_eq!(compact(raw.as_bytes()).unwrap(), raw);
    }

    #[test]
    fn strings_are_rewritten_as_serde_json_would() {
        let raw = r#"{"html":"a\u003cb\u003e\u0026c","u":"caf\u00e9 \ud83d\ude00 é","c":"\u0001\n\t\"\\\/","k\u0041":"x"}"#;
        let ours = compact(raw.as_bytes()).unwrap();
        assert_eq!(
            ours,
            "{\"html\":\"a<b>&c\",\"u\":\"café 😀 é\",\"c\":\"\\u0001\\n\\t\\\"\\\\/\",\"kA\":\"x\"}"
        );
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(ours, serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn rejects_malformed_json() {
        for bad in [
            "{",
            "{\"a\" 1}",
            "[1,]",
            "{\"a\":01}",
            "\"abc",
            "{\"a\":1} x",
            "nul",
        ] {
            assert!(compact(bad.as_bytes()).is_err(), "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(compact(deep.as_bytes()).is_err());
    }

    #[test]
    fn output_never_exceeds_input() {
        let raw = r#"{"a":"\u0041\u00e9\ud83d\ude00\u001f\/"}"#;
        let out = compact(raw.as_bytes()).unwrap();
        assert!(out.len() <= raw.len());
    }

    #[test]
    fn null_detection() {
        assert!(is_null(b" null "));
        assert!(!is_null(b"{}"));
    }
}
