//! The integration tests: one crate (so the AWS SDK is linked once, not once per file), one
//! module per area. They drive the real `secretport` binary and the library against real
//! OpenBao and moto servers started on loopback by [`support`]; a missing server binary fails
//! the test with the command that installs it (`scripts/setup-servers`).

mod cli;
mod support;

mod actionable_errors;
mod config_errors;
mod config_sources;
mod confirmed_writes;
mod credstash_source;
mod deploy;
mod docs;
mod export_fidelity;
mod identity_golden;
mod interrupt;
mod jobs;
mod kms_migrate;
mod kms_source;
mod leak_echo;
mod metrics;
mod migrate;
mod moved_checkout;
mod naming_props;
mod output;
mod ownership;
mod ownership_proof;
mod plan_cost;
mod readme_cron;
mod reconcile;
mod refs_cutover;
mod rename_golden;
mod replicas;
mod report_dir;
mod shell;
mod smoke_servers;
mod sops_source;
mod source_messages;
mod split_keys;
mod ssm_source;
mod stores_bench;
mod tags_left_out;
mod throttle_proxy;
mod vault_auth;
mod vault_migrate;
mod vault_source;
mod vault_token_end;
