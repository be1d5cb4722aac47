//! AWS Secrets Manager's (and KMS's) fixed limits, in one table. secretport checks them itself:
//! emulators accept what AWS refuses, and a refusal found before the write is a clearer error.

/// Largest SecretString or SecretBinary, in bytes.
pub const MAX_SECRET_BYTES: usize = 65_536;
/// Longest secret name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 512;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_048;
/// Most tags on one secret.
pub const MAX_TAGS: usize = 50;
/// Longest tag key, in characters.
pub(crate) const MAX_TAG_KEY_CHARS: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// Most secret ids in one `BatchGetSecretValue`.
pub(crate) const BATCH_GET_MAX: usize = 20;
/// Largest plaintext `kms:Encrypt` takes, in bytes.
pub(crate) const KMS_ENCRYPT_MAX_BYTES: usize = 4_096;
/// Longest `KmsKeyId` (id, ARN or alias), in characters.
pub(crate) const MAX_KMS_KEY_ID_CHARS: usize = 2_048;
/// Recovery window bounds for `DeleteSecret`, in days.
pub(crate) const RECOVERY_WINDOW_DAYS: std::ops::RangeInclusive<i64> = 7..=30;
