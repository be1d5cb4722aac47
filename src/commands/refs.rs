//! `secretport refs` and `refs scan`: reads the report and the config, maps the rows
//! ([`crate::refs`]), walks the trees, and renders. Read-only; no network call.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::refs::eso::{self, StoreKind};
use crate::refs::scan::{self, FileText, Found, Stores, Syntax};
use crate::refs::{self, Index, Reference, RefsError};

/// The output of `refs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// JSON Lines, one object per reference.
    Json,
    /// `ExternalSecret` manifests (YAML documents).
    ExternalSecrets {
        /// The AWS Secrets Manager store they read from.
        store: String,
        /// Its kind.
        kind: StoreKind,
    },
}

/// The migrated secrets of `report`, their consumer references taken from `config` (only its
/// `[source]` location keys are read: no credential is needed).
pub fn mapping(report: &Path, config: &Path) -> Result<Vec<Reference>, RefsError> {
    let report_err = |message: String| RefsError::Report {
        path: report.display().to_string(),
        message,
    };
    let config_err = |message: String| RefsError::Config {
        path: config.display().to_string(),
        message,
    };
    let text =
        std::fs::read_to_string(report).map_err(|e| report_err(format!("cannot read: {e}")))?;
    let rows = refs::read_report(&text).map_err(report_err)?;
    let cfg =
        std::fs::read_to_string(config).map_err(|e| config_err(format!("cannot read: {e}")))?;
    let origins = refs::origin::read_origins(&cfg).map_err(config_err)?;
    refs::map_rows(&rows, &origins).map_err(report_err)
}

/// Writes `refs` in `format`.
pub fn render(refs: &[Reference], format: &Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Csv => refs::write_csv(refs, out).map_err(std::io::Error::other),
        Format::Json => {
            for r in refs {
                writeln!(out, "{}", refs::to_json(r))?;
            }
            Ok(())
        }
        Format::ExternalSecrets { store, kind } => {
            out.write_all(eso::manifests(refs, store, *kind).as_bytes())
        }
    }
}

/// The closing line of `refs` (stderr), with a warning when nothing was mapped.
pub fn mapping_summary(refs: &[Reference]) -> String {
    if refs.is_empty() {
        "refs: 0 migrated secrets: the report holds no confirmed migration (create, update, unchanged or rename with status ok); a plan's report maps nothing".to_owned()
    } else {
        format!("refs: {} migrated secret(s)", refs.len())
    }
}

/// `refs scan`: checks the inputs, maps the report, scans `dirs`. Every DIR must exist, and a
/// report without a confirmed migration is refused: a gate fed the wrong input must not pass.
pub fn scan_tree(report: &Path, config: &Path, dirs: &[PathBuf]) -> Result<ScanOutcome, RefsError> {
    if let Some(missing) = dirs.iter().find(|d| !d.exists()) {
        return Err(RefsError::Usage(format!(
            "refs scan: {} does not exist",
            missing.display()
        )));
    }
    let mapped = mapping(report, config)?;
    if mapped.is_empty() {
        return Err(RefsError::Report {
            path: report.display().to_string(),
            message: "no confirmed migration in it (create, update, unchanged or rename with status ok): nothing to look for; is it a plan's report?".into(),
        });
    }
    Ok(scan(&mapped, dirs))
}

/// A consumer reference to a migrated secret.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The file.
    pub file: PathBuf,
    /// What was found there.
    pub found: Found,
    /// The migrated secret it names.
    pub reference: Reference,
}

/// What `refs scan` found.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// References to migrated secrets, by file and line.
    pub hits: Vec<Hit>,
    /// Files read.
    pub files: usize,
    /// Files skipped as binary.
    pub binary: usize,
    /// Files skipped as larger than [`scan::MAX_FILE_BYTES`].
    pub(crate) too_large: usize,
    /// References found that name no migrated secret (another mount, a path not migrated).
    pub unmatched: usize,
    /// Files or folders that could not be read.
    pub errors: Vec<String>,
}

impl ScanOutcome {
    /// 2 while references remain, 1 when something could not be read (the tree was not fully
    /// scanned), 0 when none remain.
    pub fn exit_code(&self) -> i32 {
        if !self.hits.is_empty() {
            exit::DRIFT
        } else if !self.errors.is_empty() {
            exit::FAILED
        } else {
            exit::OK
        }
    }

    /// The closing line (stderr).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "refs scan: {} reference(s) to migrated secrets remain in {} file(s) ({} files scanned; {} binary and {} over {} MiB skipped; {} reference(s) to secrets not in the report left alone)",
            self.hits.len(),
            {
                let mut f: Vec<&Path> = self.hits.iter().map(|h| h.file.as_path()).collect();
                f.dedup();
                f.len()
            },
            self.files,
            self.binary,
            self.too_large,
            scan::MAX_FILE_BYTES / (1024 * 1024),
            self.unmatched,
        );
        if !self.errors.is_empty() {
            s.push_str(&format!("; {} could not be read", self.errors.len()));
        }
        s
    }
}

fn read(path: &Path, out: &mut ScanOutcome) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => match scan::file_text(bytes) {
            FileText::Text(t) => Some(t),
            FileText::Binary => {
                out.binary += 1;
                None
            }
            FileText::TooLarge => {
                out.too_large += 1;
                None
            }
        },
        Err(e) => {
            out.errors.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

/// Scans `dirs` for references to `refs`. Two passes over the files, each reading one file at
/// a time (memory stays at one file, whatever the tree's size): the first learns the ESO stores
/// the tree defines, so the second reads each `ExternalSecret` key against its store.
pub fn scan(refs: &[Reference], dirs: &[PathBuf]) -> ScanOutcome {
    let mut out = ScanOutcome::default();
    let (files, errors) = scan::walk(dirs);
    out.errors = errors;
    let mut stores = Stores::new();
    let mut text_files = Vec::new();
    for f in files {
        if let Some(t) = read(&f, &mut out) {
            stores.extend(scan::stores_in(&t));
            text_files.push(f);
        }
    }
    out.files = text_files.len();
    let index = Index::new(refs);
    for file in text_files {
        // read again: a file that vanished or turned binary since is reported, not scanned
        let Some(text) = read(&file, &mut out) else {
            continue;
        };
        for found in scan::scan_text(&text, &stores) {
            match index.lookup(&found.written, found.store, found.mount.as_deref()) {
                Some(r) => out.hits.push(Hit {
                    file: file.clone(),
                    found,
                    reference: r.clone(),
                }),
                None => out.unmatched += 1,
            }
        }
    }
    out
}

fn new_id(r: &Reference) -> &str {
    if r.target_arn.is_empty() {
        &r.target_name
    } else {
        &r.target_arn
    }
}

/// Writes the hits: `file:line: syntax "old" -> name (arn)` per line, or JSON Lines with a
/// final `{"summary": …}` object.
pub fn render_scan(o: &ScanOutcome, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    for h in &o.hits {
        if json {
            let v = serde_json::json!({
                "file": h.file.display().to_string(),
                "line": h.found.line,
                "syntax": h.found.syntax.as_str(),
                "written": h.found.written,
                "store": h.found.store_ref,
                "job": h.reference.job,
                "source_path": h.reference.source_path,
                "reference": h.reference.reference,
                "target_name": h.reference.target_name,
                "target_arn": h.reference.target_arn,
                "replace_with": replacement(h),
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{}:{}: {} {:?} -> {} ({})",
                h.file.display(),
                h.found.line,
                h.found.syntax.as_str(),
                h.found.written,
                h.reference.target_name,
                new_id(&h.reference),
            )?;
        }
    }
    if json {
        let v = serde_json::json!({"summary": {
            "references": o.hits.len(),
            "files_scanned": o.files,
            "binary_skipped": o.binary,
            "too_large_skipped": o.too_large,
            "unmatched": o.unmatched,
            "errors": o.errors,
            "exit_code": o.exit_code(),
        }});
        writeln!(out, "{v}")?;
    }
    Ok(())
}

/// What the consumer should name instead: the ARN for ECS and CloudFormation (which take a
/// Secrets Manager ARN), the name elsewhere (ESO keys, scripts).
pub(crate) fn replacement(h: &Hit) -> String {
    match h.found.syntax {
        Syntax::ValueFrom | Syntax::CloudFormation => new_id(&h.reference).to_owned(),
        _ => h.reference.target_name.clone(),
    }
}
