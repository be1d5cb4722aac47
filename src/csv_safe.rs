//! Escaping of CSV cells against formula injection, reversibly.
//!
//! A spreadsheet that opens a CSV file evaluates a cell that begins with `=`, `+`, `-` or `@`
//! as a formula (and some also do so after a leading tab or carriage return). Every CSV that
//! secretport writes (the `rename` preview, the audit report) passes its free-text cells through
//! [`escape_formula`], which prefixes such a cell with a single quote `'`.
//!
//! The escape must be reversible, or a name read back from a report or a `rename` CSV would be
//! another name: a source path that itself is `'=x` would otherwise read back as `=x`. So a cell
//! that begins with `'` is escaped too (`'=x` → `''=x`), and [`unescape_formula`] drops one
//! leading `'` exactly when escaping added it: every cell reads back as written. The CSV quoting
//! of commas, quotes and line breaks is left to the CSV writer.

use std::borrow::Cow;

/// First characters that make a cell escaped: formula starts (OWASP "CSV injection" list) and the
/// escape character itself.
fn needs_escape(first: u8) -> bool {
    matches!(first, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'')
}

/// Returns `cell` unchanged, or prefixed with `'` when it begins with `=`, `+`, `-`, `@`, a tab,
/// a carriage return, or `'` itself (so the escape can be undone). Borrowed when nothing changes.
///
/// ```
/// use secretport::csv_safe::escape_formula;
/// assert_eq!(escape_formula("=1+1"), "'=1+1");
/// assert_eq!(escape_formula("-abcdef"), "'-abcdef");
/// assert_eq!(escape_formula("'=x"), "''=x");
/// assert_eq!(escape_formula("app/db"), "app/db");
/// assert_eq!(escape_formula(""), "");
/// ```
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(&b) if needs_escape(b) => {
            let mut s = String::with_capacity(cell.len() + 1);
            s.push('\'');
            s.push_str(cell);
            Cow::Owned(s)
        }
        _ => Cow::Borrowed(cell),
    }
}

/// The inverse of [`escape_formula`]: drops a leading `'` when the character after it is one
/// that [`escape_formula`] escapes (`=`, `+`, `-`, `@`, tab, carriage return, `'`). For reading
/// secretport's own CSV back; `unescape_formula(&escape_formula(s)) == s` for every string. A
/// hand-written cell such as `'quoted` is left alone.
///
/// ```
/// use secretport::csv_safe::{escape_formula, unescape_formula};
/// assert_eq!(unescape_formula("'=1+1"), "=1+1");
/// assert_eq!(unescape_formula("''=x"), "'=x");
/// assert_eq!(unescape_formula("'quoted"), "'quoted");
/// assert_eq!(unescape_formula(&escape_formula("-x")), "-x");
/// ```
pub fn unescape_formula(cell: &str) -> &str {
    match cell.as_bytes() {
        [b'\'', second, ..] if needs_escape(*second) => &cell[1..],
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_formula, unescape_formula};
    use std::borrow::Cow;

    #[test]
    fn escapes_formula_starts() {
        for c in ["=", "+", "-", "@", "\t", "\r"] {
            let cell = format!("{c}SUM(A1)");
            assert_eq!(escape_formula(&cell), format!("'{cell}"));
        }
    }

    #[test]
    fn unescape_inverts_escape() {
        for cell in [
            "=a", "+a", "-a", "@a", "\ta", "\ra", "a", "", "'a", "''=a", "'=a", "'", "''",
        ] {
            assert_eq!(unescape_formula(&escape_formula(cell)), cell);
        }
        assert_eq!(unescape_formula("'"), "'");
        assert_eq!(escape_formula("'=x"), "''=x");
        assert_eq!(escape_formula("'"), "''");
    }

    #[test]
    fn leaves_other_cells_borrowed() {
        for cell in ["", "app/db", "a=b", "a-b", " =x", "café", "x'"] {
            assert!(matches!(escape_formula(cell), Cow::Borrowed(c) if c == cell));
        }
    }

    proptest::proptest! {
        /// Every string reads back exactly, whatever it starts with.
        #[test]
        fn escape_then_unescape_is_identity(s in "(['=+@\t\r-]{0,3})\\PC{0,12}", t in ".*") {
            for cell in [s.as_str(), t.as_str()] {
                let escaped = escape_formula(cell);
                proptest::prop_assert_eq!(unescape_formula(&escaped), cell);
                // and the escaped cell never starts a formula
                if let Some(first) = escaped.as_bytes().first() {
                    proptest::prop_assert!(!matches!(first, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
                }
            }
        }
    }
}
