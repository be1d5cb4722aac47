//! The subcommands' logic, one module each; `main.rs` only parses arguments and maps results to
//! exit codes.

pub mod confirm;
pub mod kms_export;
pub(crate) mod lock;
pub(crate) mod progress;
pub mod refs;
pub mod rename;
pub mod rollback;
pub mod run;
