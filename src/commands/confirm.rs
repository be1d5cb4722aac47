//! The one confirmation every writing command asks before its first write (`migrate`,
//! `reconcile`, `rollback`), and what a refusal means for the exit code.
//!
//! The library never reads the terminal: the question goes to a [`Confirm`] the binary supplies
//! (stdin/stderr) and tests answer directly. Nobody to ask (stdin is not a terminal) is a usage
//! error (exit 64: pass `--yes`); a person saying no is a failure (exit 1). Both write nothing.

use crate::exit;

/// The answer to a confirmation question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Go ahead.
    Yes,
    /// Declined.
    No,
    /// Nobody can be asked (stdin is not a terminal).
    NoTerminal,
}

/// Asks a person whether to go ahead (the binary asks on the terminal; tests answer directly).
pub trait Confirm: Send + Sync {
    /// Shows `question` and returns the answer.
    fn confirm(&self, question: &str) -> Confirmation;
}

/// Why a command wrote nothing after asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Declined {
    /// The command's exit code.
    pub exit_code: i32,
    /// For the summary and the report.
    pub why: &'static str,
}

/// Asks `question`; `Err` says why the command stops without writing.
pub(crate) fn ask(confirm: &dyn Confirm, question: &str) -> Result<(), Declined> {
    match confirm.confirm(question) {
        Confirmation::Yes => Ok(()),
        Confirmation::No => Err(Declined {
            exit_code: exit::FAILED,
            why: "declined at the confirmation prompt; nothing written",
        }),
        Confirmation::NoTerminal => Err(Declined {
            exit_code: exit::USAGE,
            why: "refused: this run would write, stdin is not a terminal to confirm on, and --yes was not given; pass --yes",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Answer(Confirmation);

    impl Confirm for Answer {
        fn confirm(&self, _: &str) -> Confirmation {
            self.0
        }
    }

    #[test]
    fn only_yes_goes_ahead_and_no_terminal_is_a_usage_error() {
        assert_eq!(ask(&Answer(Confirmation::Yes), "?"), Ok(()));
        let no = ask(&Answer(Confirmation::No), "?").unwrap_err();
        assert_eq!(no.exit_code, exit::FAILED);
        assert!(no.why.contains("declined"), "{no:?}");
        let nobody = ask(&Answer(Confirmation::NoTerminal), "?").unwrap_err();
        assert_eq!(nobody.exit_code, exit::USAGE);
        assert!(nobody.why.contains("pass --yes"), "{nobody:?}");
    }
}
