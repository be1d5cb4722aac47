//! The Vault / OpenBao KV source (being written).
