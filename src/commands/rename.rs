//! `secretport rename`, the face: the CSV of a preview and its summary line. The planning is
//! `naming::preview` (names → mappings, pure) and, for `rename --config`, `engine::preview`
//! (each job's source listed by name and planned); this module only writes what they return, to
//! the writer the caller passes.
//!
//! Input: names, one per line ([`read_names`]). Output: CSV with the header
//! `source,target,changed,reasons`, one row per distinct input line in the order of first
//! occurrence ([`write_csv`]), and a one-line summary ([`summary_line`]).

use std::io::Write;

use crate::csv_safe::escape_formula;
pub use crate::engine::preview::{preview_config, ConfigPreview};
pub use crate::naming::preview::{read_names, run_rename, RenameOutput};

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
    use crate::naming::{NamingRules, Overrides, Policy};

    #[test]
    fn the_summary_counts_names_renames_and_collisions() {
        let out = RenameOutput {
            rows: Vec::new(),
            names: 4,
            renamed: 1,
            collisions: 1,
        };
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
