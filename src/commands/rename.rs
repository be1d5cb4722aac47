//! `secretport rename`: the dry-run rename preview (library side; no file or terminal I/O here
//! beyond the writer the caller passes).
//!
//! Input: names, one per line ([`read_names`]). Output: CSV with the header
//! `source,target,changed,reasons`, one row per distinct input line in the order of first
//! occurrence ([`write_csv`]), and a one-line summary ([`summary_line`]).

use std::io::Write;

use rayon::slice::ParallelSliceMut;

use crate::csv_safe::escape_formula;
use crate::naming::{
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

/// Writes the CSV: header `source,target,changed,reasons`, then one row per mapping;
/// `changed` is `true`/`false`, `reasons` `;`-separated codes. Cells that begin with
/// `= + - @` (or a tab / CR) are prefixed with `'` against formula injection
/// ([`escape_formula`]), so a target `-x` reads `'-x` in the CSV.
pub fn write_csv<W: Write>(out: &RenameOutput, w: W) -> std::io::Result<()> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(["source", "target", "changed", "reasons"])?;
    let mut reasons = String::new();
    for m in &out.rows {
        reasons.clear();
        for (i, r) in m.reasons.iter().enumerate() {
            if i > 0 {
                reasons.push(';');
            }
            reasons.push_str(r.as_str());
        }
        wtr.write_record([
            escape_formula(&m.source).as_ref(),
            escape_formula(&m.target).as_ref(),
            if m.changed { "true" } else { "false" },
            reasons.as_str(),
        ])?;
    }
    wtr.flush()
}

/// A preview of one job's names.
pub struct ConfigPreview {
    /// The job.
    pub job: String,
    /// The planned names, in listing order (after the job's include/exclude filter).
    pub output: RenameOutput,
    /// Entries the listing could not produce (each also makes the exit code 1).
    pub problems: Vec<String>,
}

/// `rename --config`: lists every job's source (references only: no value is read, and the
/// target is never contacted, so no AWS credentials are needed for a Vault or file source),
/// applies the job's filter and plans its names with its prefix, policy and overrides.
pub async fn preview_config(
    cfg: &crate::config::Config,
) -> Result<Vec<ConfigPreview>, crate::engine::RunError> {
    let limits = std::sync::Arc::new(crate::limits::Limits::new(&cfg.limits));
    let policy = crate::retry::RetryPolicy::new(cfg.limits.max_attempts);
    let mut out = Vec::with_capacity(cfg.jobs.len());
    for job in &cfg.jobs {
        let source = crate::engine::open_source(job, &cfg.limits, &limits, policy).await?;
        let listing = source.list_names().await?;
        let names: Vec<String> = listing
            .refs
            .iter()
            .filter(|r| job.filter.admits(&r.path))
            .map(|r| r.path.clone())
            .collect();
        let output = run_rename(&names, &job.naming_rules(), &job.naming.overrides)?;
        let problems = listing.problems.iter().map(|p| {
            let line = p.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            format!("{line}{}: {}", p.path, p.error)
        });
        out.push(ConfigPreview {
            job: job.name.clone(),
            output,
            problems: problems.collect(),
        });
    }
    Ok(out)
}

/// [`write_csv`] of several jobs' previews in one CSV, with a trailing `job` column (for
/// `rename --config`).
pub fn write_csv_with_job<W: Write>(previews: &[ConfigPreview], w: W) -> std::io::Result<()> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(["source", "target", "changed", "reasons", "job"])?;
    for p in previews {
        for m in &p.output.rows {
            let reasons: Vec<&str> = m.reasons.iter().map(|r| r.as_str()).collect();
            wtr.write_record([
                escape_formula(&m.source).as_ref(),
                escape_formula(&m.target).as_ref(),
                if m.changed { "true" } else { "false" },
                reasons.join(";").as_str(),
                escape_formula(&p.job).as_ref(),
            ])?;
        }
    }
    wtr.flush()
}

/// `"N names, M renamed, K collisions"`.
pub fn summary_line(out: &RenameOutput) -> String {
    format!(
        "{} names, {} renamed, {} collisions",
        out.names, out.renamed, out.collisions
    )
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
        assert_eq!(summary_line(&out), "4 names, 1 renamed, 1 collisions");
    }

    #[test]
    fn csv_output_is_escaped_and_quoted() {
        let rules = NamingRules::new(None, Policy::Aws);
        let names: Vec<String> = ["=cmd", "a,b", "-x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = run_rename(&names, &rules, &Overrides::default()).unwrap();
        let mut buf = Vec::new();
        write_csv(&out, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "source,target,changed,reasons\n\
             '=cmd,'=cmd,false,\n\
             \"a,b\",a_b,true,charset\n\
             '-x,'-x,false,\n"
        );
    }
}
