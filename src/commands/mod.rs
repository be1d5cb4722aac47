//! The face of the subcommands, one module each: what a person sees and is asked. The pipelines
//! are the library's (one job of `plan`/`migrate`/`reconcile`, and a rollback: [`crate::engine`]);
//! these modules orchestrate the jobs of a config, ask the one confirmation ([`confirm`]), render
//! the engine's events, the progress ([`progress`]) and the summaries. `main.rs` parses
//! arguments, owns the terminal and maps results to exit codes. Only the face writes to the
//! terminal.

pub mod confirm;
pub(crate) mod lock;
pub(crate) mod progress;
pub mod refs;
pub mod rename;
pub mod rollback;
pub mod run;
pub(crate) mod summary;
