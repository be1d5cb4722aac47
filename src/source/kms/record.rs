//! Validation of one `kms` export record (after [`parse_export`](crate::source::export) has
//! checked JSON syntax, `path` and duplicates). Everything that can be checked without KMS is
//! checked here, at open time, so a bad record shows in the listing with its line number.

use std::collections::BTreeMap;

use super::envelope::{associated_data, IV_LEN, TAG_LEN};
use crate::source::export::{take_base64, take_context, take_str, Fields};

/// A validated record.
#[derive(Clone)]
pub(crate) enum Record {
    /// `ciphertext` is a KMS `CiphertextBlob`, decrypted with `kms:Decrypt`.
    Direct {
        ciphertext: Vec<u8>,
        context: BTreeMap<String, String>,
        key_id: Option<String>,
    },
    /// `ciphertext` is AES-256-GCM under a data key that KMS decrypts.
    Envelope {
        encrypted_data_key: Vec<u8>,
        iv: [u8; IV_LEN],
        ciphertext: Vec<u8>,
        context: BTreeMap<String, String>,
        /// [`associated_data`] of `context`, computed once.
        aad: Vec<u8>,
        key_id: Option<String>,
    },
}

const FIELDS: &[&str] = &[
    "ciphertext",
    "encrypted_data_key",
    "iv",
    "encryption_context",
    "key_id",
];

/// Validates the fields of one record (`path` already removed). The message never quotes a
/// field's content.
pub(crate) fn record_of(fields: &mut Fields<'_>) -> Result<Record, String> {
    if fields.contains_key("value") || fields.contains_key("value_base64") {
        return Err(
            "holds a plaintext \"value\"/\"value_base64\": this is a `file` export, \
                    not a `kms` one (encrypt it with `secretport kms-export`)"
                .into(),
        );
    }
    let unknown: Vec<String> = fields
        .keys()
        .filter(|k| !FIELDS.contains(k))
        .map(|k| format!("{k:?}"))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("unknown field(s) {}", unknown.join(", ")));
    }
    let key_id = take_str(fields, "key_id")?;
    if key_id.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err("\"key_id\" is empty".into());
    }
    let context = take_context(fields, "encryption_context")?;
    let ciphertext = take_base64(fields, "ciphertext")?;
    let encrypted_data_key = take_base64(fields, "encrypted_data_key")?;
    let iv = take_base64(fields, "iv")?;

    if encrypted_data_key.is_none() && iv.is_none() {
        let ciphertext = ciphertext.ok_or("missing \"ciphertext\"")?;
        if ciphertext.is_empty() {
            return Err("\"ciphertext\" is empty".into());
        }
        return Ok(Record::Direct {
            ciphertext,
            context,
            key_id,
        });
    }
    let missing: Vec<&str> = [
        ("\"encrypted_data_key\"", encrypted_data_key.is_none()),
        ("\"iv\"", iv.is_none()),
        ("\"ciphertext\"", ciphertext.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "envelope record (has \"encrypted_data_key\" or \"iv\") is missing {}",
            missing.join(" and ")
        ));
    }
    let (Some(encrypted_data_key), Some(iv), Some(ciphertext)) =
        (encrypted_data_key, iv, ciphertext)
    else {
        unreachable!("checked above")
    };
    if encrypted_data_key.is_empty() {
        return Err("\"encrypted_data_key\" is empty".into());
    }
    let iv: [u8; IV_LEN] = iv.as_slice().try_into().map_err(|_| {
        format!(
            "\"iv\" must be {IV_LEN} bytes (AES-GCM nonce), got {}",
            iv.len()
        )
    })?;
    if ciphertext.len() < TAG_LEN {
        return Err(format!(
            "\"ciphertext\" is {} bytes, shorter than the {TAG_LEN}-byte AES-GCM tag it must end with",
            ciphertext.len()
        ));
    }
    let aad = associated_data(&context);
    Ok(Record::Envelope {
        encrypted_data_key,
        iv,
        ciphertext,
        context,
        aad,
        key_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> Result<Record, String> {
        let rest = json.trim_start_matches('{');
        let sep = if rest == "}" { "" } else { "," };
        let line = format!("{{\"path\":\"p\"{sep}{rest}");
        let (mut recs, probs) = crate::source::export::parse_export(line.as_bytes());
        assert!(probs.is_empty(), "{probs:?}");
        record_of(&mut recs[0].fields)
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            rec(r#"{"ciphertext":"AQID","encryption_context":{"a":"b"},"key_id":"alias/x"}"#),
            Ok(Record::Direct {
                key_id: Some(_),
                ..
            })
        ));
        let iv = "AAAAAAAAAAAAAAAA"; // 12 bytes
        let tag = "AAAAAAAAAAAAAAAAAAAAAA=="; // 16 bytes
        let ok = rec(&format!(
            r#"{{"encrypted_data_key":"AQ==","iv":"{iv}","ciphertext":"{tag}"}}"#
        ));
        assert!(
            matches!(&ok, Ok(Record::Envelope { aad, .. }) if aad.is_empty()),
            "{:?}",
            ok.err()
        );
        let err = |j: &str| rec(j).err().unwrap();
        assert!(err(r#"{}"#).contains("missing \"ciphertext\""));
        assert!(err(r#"{"ciphertext":""}"#).contains("empty"));
        assert!(err(r#"{"ciphertext":"!!"}"#).contains("not valid base64"));
        assert!(
            err(r#"{"iv":"AAAA","ciphertext":"AQ=="}"#).contains("missing \"encrypted_data_key\"")
        );
        assert!(err(&format!(
            r#"{{"encrypted_data_key":"AQ==","iv":"AAAA","ciphertext":"{tag}"}}"#
        ))
        .contains("must be 12 bytes"));
        assert!(err(&format!(
            r#"{{"encrypted_data_key":"AQ==","iv":"{iv}","ciphertext":"AQID"}}"#
        ))
        .contains("shorter than the 16-byte"));
        assert!(err(r#"{"ciphertext":"AQ==","value":"x"}"#).contains("`file` export"));
        assert!(err(r#"{"ciphertext":"AQ==","extra":1}"#).contains("unknown field"));
        assert!(err(r#"{"ciphertext":"AQ==","key_id":" "}"#).contains("\"key_id\" is empty"));
        assert!(err(r#"{"ciphertext":"AQ==","encryption_context":{"a":1}}"#)
            .contains("values must be strings"));
    }
}
