//! The CSV audit trail.
//!
//! Every command that plans or writes leaves one CSV file with one row per thing it did or
//! would do, written and flushed row by row so an interrupted run still leaves its trail. The
//! row type holds only strings and numbers that describe an operation; it has no field that
//! could carry a [`crate::secret::SecretValue`], and every cell passes through the formula
//! escape (cells beginning with `= + - @` are read as formulas by spreadsheets).
//!
//! [`Counts`] is what the rows add up to (by action and status): the one type summaries, exit
//! codes, the JSON summary, the sidecar and the metrics read. [`Sink`] (`report/sink.rs`) is how
//! the engine hands rows to the run's one report.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::csv_safe::escape_formula;

mod sink;
pub use sink::Sink;

/// Report columns, in order.
pub(crate) const COLUMNS: [&str; 16] = [
    "timestamp",
    "run_id",
    "command",
    "source_path",
    "source_version",
    "target_name",
    "target_arn",
    "action",
    "status",
    "attempts",
    "error",
    "duration_ms",
    "job",
    "version_id",
    "previous_version_id",
    "reasons",
];

/// What was (or would be) done to a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// New secret.
    Create,
    /// New value for an existing secret.
    Update,
    /// Nothing to do.
    Unchanged,
    /// The name is held by a secret that is not ours.
    Conflict,
    /// Not migrated (deleted in source, scheduled for deletion, too large, unreadable, bad).
    Skip,
    /// Ours, but its source is gone.
    Orphan,
    /// Tags repaired.
    Retag,
    /// Scheduled for deletion (with a recovery window).
    Delete,
    /// Restored from scheduled deletion.
    Restore,
    /// Created under a new name because its mapping changed (the old name becomes an orphan).
    Rename,
    /// A write of an earlier run undone by `rollback`.
    Rollback,
    /// Replicated to a configured region it lacked, or a replica that failed.
    Replicate,
}

impl Action {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Conflict => "conflict",
            Action::Skip => "skip",
            Action::Orphan => "orphan",
            Action::Retag => "retag",
            Action::Delete => "delete",
            Action::Restore => "restore",
            Action::Rename => "rename",
            Action::Rollback => "rollback",
            Action::Replicate => "replicate",
        }
    }

    /// Reads the report spelling back.
    pub(crate) fn parse(s: &str) -> Option<Action> {
        ALL_ACTIONS.into_iter().find(|a| a.as_str() == s)
    }
}

/// Every action, in report order.
pub(crate) const ALL_ACTIONS: [Action; 12] = [
    Action::Create,
    Action::Update,
    Action::Unchanged,
    Action::Conflict,
    Action::Skip,
    Action::Orphan,
    Action::Retag,
    Action::Delete,
    Action::Restore,
    Action::Rename,
    Action::Rollback,
    Action::Replicate,
];

/// Outcome of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Dry run: would be done.
    Planned,
    /// Done.
    Ok,
    /// Tried and failed, or refused before trying.
    Failed,
    /// Deliberately not done.
    Skipped,
}

impl Status {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    /// Reads the report spelling back.
    pub(crate) fn parse(s: &str) -> Option<Status> {
        [Status::Planned, Status::Ok, Status::Failed, Status::Skipped]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Rows by action and status: what a job (or a run) did, for its summary, exit code, JSON
/// summary, sidecar and metrics. Every count a summary shows is a sum over these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<(Action, Status), u64>);

impl Counts {
    /// One more row of `action` and `status`.
    pub(crate) fn add(&mut self, action: Action, status: Status) {
        *self.0.entry((action, status)).or_default() += 1;
    }

    /// Rows of `action` and `status`.
    pub(crate) fn get(&self, action: Action, status: Status) -> u64 {
        self.0.get(&(action, status)).copied().unwrap_or(0)
    }

    /// Rows whose action and status pass `pick`.
    pub(crate) fn sum(&self, pick: impl Fn(Action, Status) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|((a, s), _)| pick(*a, *s))
            .map(|(_, n)| n)
            .sum()
    }

    /// Rows with status `failed`.
    pub fn failed(&self) -> u64 {
        self.sum(|_, s| s == Status::Failed)
    }

    /// Rows of `action` that happened or are planned (`ok`, `planned`).
    pub(crate) fn done(&self, action: Action) -> u64 {
        self.sum(|a, s| a == action && matches!(s, Status::Ok | Status::Planned))
    }

    /// Every (action, status) with its count, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Action, Status, u64)> + '_ {
        self.0.iter().map(|((a, s), n)| (*a, *s, *n))
    }
}

impl FromIterator<(Action, Status)> for Counts {
    fn from_iter<I: IntoIterator<Item = (Action, Status)>>(rows: I) -> Counts {
        let mut c = Counts::default();
        for (a, s) in rows {
            c.add(a, s);
        }
        c
    }
}

/// One report row (timestamp, run id and command are added by the writer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Row {
    /// Source path (relative to the subtree), or `line N` for bad export lines.
    pub(crate) source_path: String,
    /// Source version, when known.
    pub(crate) source_version: String,
    /// Target name.
    pub(crate) target_name: String,
    /// Target ARN, when known.
    pub(crate) target_arn: String,
    /// What.
    pub(crate) action: Action,
    /// How it went.
    pub(crate) status: Status,
    /// Requests made (retries included).
    pub(crate) attempts: u32,
    /// Why it failed or was skipped; never a value.
    pub(crate) error: String,
    /// Wall time spent on it.
    pub(crate) duration_ms: u128,
    /// The job it belongs to.
    pub(crate) job: String,
    /// The AWS VersionId this row wrote.
    pub(crate) version_id: String,
    /// The VersionId it replaced (what `rollback` moves `AWSCURRENT` back to).
    pub(crate) previous_version_id: String,
    /// The rename reasons of the target name, `;`-separated; `tags-left-out` when source tags
    /// could not be copied (named in `error`).
    pub(crate) reasons: String,
}

impl Row {
    /// A row with the given identity and outcome; the rest empty.
    pub(crate) fn new(source_path: &str, target_name: &str, action: Action, status: Status) -> Row {
        Row {
            source_path: source_path.to_owned(),
            source_version: String::new(),
            target_name: target_name.to_owned(),
            target_arn: String::new(),
            action,
            status,
            attempts: 0,
            error: String::new(),
            duration_ms: 0,
            job: String::new(),
            version_id: String::new(),
            previous_version_id: String::new(),
            reasons: String::new(),
        }
    }

    /// Sets the error/reason text.
    pub(crate) fn error(mut self, e: impl Into<String>) -> Row {
        self.error = e.into();
        self
    }
}

/// An open report file.
#[non_exhaustive]
pub struct Report {
    out: csv::Writer<Box<dyn io::Write + Send>>,
    path: PathBuf,
    run_id: String,
    command: String,
    json: bool,
}

/// `e` with a message that names the path (an io error alone says "No such file or directory"
/// without saying which); the kind is kept.
fn named(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// `--report -`: the CSV goes to standard output.
pub const STDOUT: &str = "-";

/// The current UTC time in RFC 3339 with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

impl Report {
    /// Creates the report: `explicit` if given (`-` = standard output), else a fresh
    /// `<dir>/<command>-<UTC>.csv` (never overwriting an existing file). Writes the header at
    /// once. An error names the directory or file that could not be created.
    pub fn create(dir: &Path, command: &str, explicit: Option<&Path>) -> io::Result<Report> {
        let now = OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let run_id = format!("{stamp}-{:08x}", fastrand::u32(..));
        let (file, path): (Box<dyn io::Write + Send>, PathBuf) = match explicit {
            Some(p) if p.as_os_str() == STDOUT => (Box::new(io::stdout()), p.to_owned()),
            Some(p) => {
                if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| named(e, "cannot create the report directory", parent))?;
                }
                let f = File::create(p).map_err(|e| named(e, "cannot create the report", p))?;
                (Box::new(f), p.to_owned())
            }
            None => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| named(e, "cannot create the report directory", dir))?;
                let mut n = 0;
                loop {
                    let name = if n == 0 {
                        format!("{command}-{stamp}.csv")
                    } else {
                        format!("{command}-{stamp}-{n}.csv")
                    };
                    let p = dir.join(name);
                    match OpenOptions::new().write(true).create_new(true).open(&p) {
                        Ok(f) => break (Box::new(f), p),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                        Err(e) => return Err(named(e, "cannot create the report", &p)),
                    }
                }
            }
        };
        let mut out = csv::Writer::from_writer(file);
        out.write_record(COLUMNS)
            .and_then(|()| out.flush().map_err(csv::Error::from))
            .map_err(|e| named(e.into(), "cannot write the report", &path))?;
        Ok(Report {
            out,
            path,
            run_id,
            command: command.to_owned(),
            json: false,
        })
    }

    /// Also prints every row as a JSON object on standard output (`--json`: JSON Lines with the
    /// report's fields, unescaped).
    pub(crate) fn with_json(mut self) -> Report {
        self.json = true;
        self
    }

    /// Whether the CSV goes to standard output.
    pub(crate) fn to_stdout(&self) -> bool {
        self.path.as_os_str() == STDOUT
    }

    /// The file written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// This run's id.
    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Appends one row and flushes it to the file.
    pub(crate) fn write(&mut self, row: &Row) -> io::Result<()> {
        let attempts = row.attempts.to_string();
        let duration = row.duration_ms.to_string();
        let ts = now_rfc3339();
        let cells: [&str; 16] = [
            &ts,
            &self.run_id,
            &self.command,
            &row.source_path,
            &row.source_version,
            &row.target_name,
            &row.target_arn,
            row.action.as_str(),
            row.status.as_str(),
            &attempts,
            &row.error,
            &duration,
            &row.job,
            &row.version_id,
            &row.previous_version_id,
            &row.reasons,
        ];
        if self.json {
            let obj: serde_json::Map<String, serde_json::Value> = COLUMNS
                .iter()
                .zip(cells.iter())
                .map(|(k, v)| {
                    let v = match *k {
                        "attempts" => serde_json::json!(row.attempts),
                        "duration_ms" => serde_json::json!(row.duration_ms as u64),
                        _ => serde_json::Value::String((*v).to_owned()),
                    };
                    ((*k).to_owned(), v)
                })
                .collect();
            let mut stdout = io::stdout().lock();
            writeln!(stdout, "{}", serde_json::Value::Object(obj))?;
            stdout.flush()?;
        }
        self.out
            .write_record(cells.iter().map(|c| escape_formula(c).into_owned()))?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;

    #[test]
    fn rows_are_flushed_escaped_and_value_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Report::create(dir.path(), "migrate", None).unwrap();
        let planted = SecretValue::text("PLANTED-value-9d1e".into());
        // the only way a value could get into a row is through formatting, which redacts
        let row = Row::new("=cmd|' /C calc'!A0", "+danger", Action::Create, Status::Ok)
            .error(format!("failed with {planted:?} / {planted}"));
        r.write(&row).unwrap();
        // flushed: readable before the Report is dropped
        let text = std::fs::read_to_string(r.path()).unwrap();
        assert!(text.starts_with(&COLUMNS.join(",")));
        assert!(!text.contains("PLANTED"), "{text}");
        assert!(text.contains("'=cmd|"), "{text}");
        assert!(text.contains("'+danger"), "{text}");
        let name = r.path().file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("migrate-") && name.ends_with(".csv"),
            "{name}"
        );
        // a second report in the same second gets its own file
        let r2 = Report::create(dir.path(), "migrate", None).unwrap();
        assert_ne!(r2.path(), r.path());
    }

    #[test]
    fn quoted_cells_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Report::create(dir.path(), "plan", None).unwrap();
        r.write(&Row::new(
            "'=quoted",
            "'plain",
            Action::Create,
            Status::Planned,
        ))
        .unwrap();
        let mut rd = csv::Reader::from_path(r.path()).unwrap();
        let rec = rd.records().next().unwrap().unwrap();
        assert_eq!(&rec[3], "''=quoted");
        assert_eq!(crate::csv_safe::unescape_formula(&rec[3]), "'=quoted");
        assert_eq!(crate::csv_safe::unescape_formula(&rec[5]), "'plain");
    }

    #[test]
    fn errors_name_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let under = file.join("reports");
        let e = Report::create(&under, "migrate", None).err().unwrap();
        assert!(
            e.to_string()
                .contains(&format!("report directory {}", under.display())),
            "{e}"
        );
        let e = Report::create(dir.path(), "migrate", Some(&under.join("r.csv")))
            .err()
            .unwrap();
        assert!(e.to_string().contains(&under.display().to_string()), "{e}");
    }
}
