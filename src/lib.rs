//! secretport: batch migration of secrets from Vault/OpenBao and KMS-encrypted stores into AWS
//! Secrets Manager.
//!
//! The crate is split the way the data flows (`docs/architecture.md` draws it):
//! sources list references and fetch values on demand ([`source`]); the pure rename planner maps
//! source paths to compliant target names ([`naming`]); the pure action planner compares the
//! listing with the target's inventory within the job's ownership scope ([`plan`],
//! [`identity`]); pure per-item decisions (`decide`) and run-level policy ([`policy`]) say
//! what to do; the executor runs it against a [`target::Target`] (`executor`), the real one
//! being AWS Secrets Manager under rate limits and one retry policy (`aws`, [`limits`],
//! [`retry`]). [`engine`] runs one job through all of it (prepare, execute, a typed report) and
//! prints nothing; [`commands`] is the face that renders it. Every step leaves rows in the CSV
//! audit trail ([`report`]). Secret values only
//! ever travel inside [`secret::SecretValue`], which redacts itself and is zeroized on drop.
//!
//! [`kms_export`] writes the `kms` export format (the inverse of the `kms` source), so
//! KMS-encrypted stores can be produced with secretport itself. After a migration, [`refs`] maps a report back to the references consumers wrote (Vault
//! paths, SSM names) and finds those consumers in a tree, for the cutover.
//!
//! Jobs ([`config::JobConfig`]) are the unit of ownership: `[[jobs]]` in one config run in one
//! process ([`commands::run`]), each filtered by its include/exclude globs ([`filter`]).
//!
//! Public modules are what the binary, the integration tests and the benches use; the AWS SDK
//! plumbing (`aws`) is crate-private: everything else
//! reaches AWS through the SDK-free [`target::Target`] trait.
#![forbid(unsafe_code)]

pub(crate) mod arena;
pub(crate) mod aws;
pub mod commands;
pub mod config;
pub mod cost;
pub mod csv_safe;
pub(crate) mod decide;
pub mod engine;
pub mod error_text;
pub(crate) mod executor;
pub mod exit;
pub mod filter;
pub mod identity;
pub mod kms_export;
pub mod limits;
pub mod log_filter;
pub mod metrics;
pub mod naming;
pub(crate) mod overlap;
pub mod plan;
pub mod policy;
pub mod refs;
pub mod report;
pub mod retry;
pub mod secret;
pub mod shutdown;
pub mod source;
pub mod target;
pub(crate) mod undo;
