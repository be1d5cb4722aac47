//! The rename preview's planning (`secretport rename`): names in, one mapping per distinct
//! name out, in the order they first appear. Pure: no source, no target; the preview of a
//! config's jobs (`engine::preview`) lists each source and hands its names here.

use rayon::slice::ParallelSliceMut;

use super::{
    plan_names_with_first, Mapping, NamingError, NamingRules, Overrides, Reason, NO_STICKY,
};

/// The planned renames of one `rename` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameOutput {
    /// One mapping per distinct input name, in order of first occurrence.
    pub rows: Vec<Mapping>,
    /// Number of distinct names.
    pub names: usize,
    /// Mappings with `changed == true` (rewritten beyond the prefix).
    pub renamed: usize,
    /// Mappings with reason `collision`.
    pub collisions: usize,
}

/// Splits input bytes into names: one per line, any UTF-8, `\n` or `\r\n` line ends, a UTF-8
/// byte-order mark at the start ignored. Lines that are empty or only whitespace are ignored;
/// other names are kept verbatim (leading and trailing spaces are part of a Vault path).
/// A line that is not UTF-8 is an error naming its 1-based number.
pub fn read_names(bytes: &[u8]) -> Result<Vec<String>, NamingError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut names = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let s = std::str::from_utf8(line)
            .map_err(|_| NamingError::InvalidUtf8 { line: i as u64 + 1 })?;
        if s.trim().is_empty() {
            continue;
        }
        names.push(s.to_owned());
    }
    Ok(names)
}

/// Plans the names (no sticky names: a preview knows nothing of the target) and orders the
/// result by first occurrence in `names`.
pub fn run_rename(
    names: &[String],
    rules: &NamingRules,
    overrides: &Overrides,
) -> Result<RenameOutput, NamingError> {
    let (planned, first) = plan_names_with_first(names, rules, overrides, &NO_STICKY)?;
    let mut rows: Vec<Mapping> = planned
        .into_iter()
        .zip(&first)
        .map(|(p, &i)| p.for_source(names.get(i).cloned().unwrap_or_default()))
        .collect();
    // Rows are sorted by source; put them in order of first occurrence, in place.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.par_sort_unstable_by_key(|&j| first[j]);
    let mut rank = vec![0usize; rows.len()];
    for (k, &j) in order.iter().enumerate() {
        rank[j] = k;
    }
    drop(order);
    for i in 0..rows.len() {
        while rank[i] != i {
            let r = rank[i];
            rows.swap(i, r);
            rank.swap(i, r);
        }
    }
    Ok(RenameOutput {
        names: rows.len(),
        renamed: rows.iter().filter(|m| m.changed).count(),
        collisions: rows.iter().filter(|m| m.has(Reason::Collision)).count(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::Policy;

    #[test]
    fn reads_lines() {
        let names = read_names(b"\xef\xbb\xbfa\r\nb c\n\n  \nd/e \n\xc3\xa9").unwrap();
        assert_eq!(names, ["a", "b c", "d/e ", "é"]);
        assert!(read_names(b"").unwrap().is_empty());
        assert_eq!(
            read_names(b"a\nb\n\xff\n").unwrap_err(),
            NamingError::InvalidUtf8 { line: 3 }
        );
        assert!(read_names(b"a\nb\n\xff\n")
            .unwrap_err()
            .to_string()
            .contains("line 3"));
    }

    #[test]
    fn rows_in_first_occurrence_order_and_counts() {
        let rules = NamingRules::new(Some("devops"), Policy::Aws);
        let names: Vec<String> = ["z", "a b", "z", "a_b", "m"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = run_rename(&names, &rules, &Overrides::default()).unwrap();
        let srcs: Vec<_> = out.rows.iter().map(|m| m.source.as_str()).collect();
        assert_eq!(srcs, ["z", "a b", "a_b", "m"]);
        assert_eq!((out.names, out.renamed, out.collisions), (4, 1, 1));
    }
}
