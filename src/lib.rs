//! secretport: batch migration of secrets from Vault/OpenBao and KMS-encrypted stores into AWS
//! Secrets Manager.
//!
//! The crate is split the way the data flows (see README and DESIGN.md):
//! sources list references and fetch values on demand ([`source`]), the pure rename planner maps
//! source paths to compliant target names ([`naming`]), the pure action planner compares sources
//! with the target's inventory ([`plan`]), and the executor is the only place that writes to AWS,
//! under rate limits and one retry policy ([`executor`], [`aws`], [`limits`], [`retry`]). Every
//! step leaves rows in the CSV audit trail ([`report`]). Secret values only ever travel inside
//! [`secret::SecretValue`], which redacts itself and is zeroized on drop.

pub mod aws;
pub mod commands;
pub mod config;
pub mod csv_safe;
pub mod error_text;
pub mod executor;
pub mod exit;
pub mod limits;
pub mod log_filter;
pub mod naming;
pub mod plan;
pub mod progress;
pub mod report;
pub mod retry;
pub mod secret;
pub mod source;
