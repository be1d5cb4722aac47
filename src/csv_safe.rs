//! Escaping of CSV cells against formula injection.
//!
//! A spreadsheet that opens a CSV file evaluates a cell that begins with `=`, `+`, `-` or `@`
//! as a formula (and some also do so after a leading tab or carriage return). Every CSV that
//! secretport writes (the `rename` preview, the audit report) passes its free-text cells through
//! [`escape_formula`], which prefixes such a cell with a single quote `'`. The CSV quoting of
//! commas, quotes and line breaks is left to the CSV writer.

use std::borrow::Cow;

/// Returns `cell` unchanged, or prefixed with `'` when it begins with `=`, `+`, `-`, `@`, a tab
/// or a carriage return (OWASP "CSV injection" list). Borrowed when nothing changes.
///
/// ```
/// use secretport::csv_safe::escape_formula;
/// assert_eq!(escape_formula("=1+1"), "'=1+1");
/// assert_eq!(escape_formula("-abcdef"), "'-abcdef");
/// assert_eq!(escape_formula("app/db"), "app/db");
/// assert_eq!(escape_formula(""), "");
/// ```
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => {
            let mut s = String::with_capacity(cell.len() + 1);
            s.push('\'');
            s.push_str(cell);
            Cow::Owned(s)
        }
        _ => Cow::Borrowed(cell),
    }
}

/// The inverse of [`escape_formula`]: drops a leading `'` when it is followed by `=`, `+`,
/// `-`, `@`, a tab or a carriage return. For reading secretport's own CSV back.
///
/// ```
/// use secretport::csv_safe::{escape_formula, unescape_formula};
/// assert_eq!(unescape_formula("'=1+1"), "=1+1");
/// assert_eq!(unescape_formula("'quoted"), "'quoted");
/// assert_eq!(unescape_formula(&escape_formula("-x")), "-x");
/// ```
pub fn unescape_formula(cell: &str) -> &str {
    match cell.as_bytes() {
        [b'\'', b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r', ..] => &cell[1..],
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
        for cell in ["=a", "+a", "-a", "@a", "\ta", "\ra", "a", "", "'a", "''=a"] {
            assert_eq!(unescape_formula(&escape_formula(cell)), cell);
        }
        assert_eq!(unescape_formula("'"), "'");
    }

    #[test]
    fn leaves_other_cells_borrowed() {
        for cell in ["", "app/db", "a=b", "a-b", " =x", "'=x", "café"] {
            assert!(matches!(escape_formula(cell), Cow::Borrowed(c) if c == cell));
        }
    }
}
