//! The KMS-encrypted export source (being written).
