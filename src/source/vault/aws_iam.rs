//! The login body of Vault's AWS auth method, IAM type.
//!
//! The client proves its AWS identity without sending its keys: it signs (SigV4, with
//! `aws-sigv4`, the SDK's own signer) an `sts:GetCallerIdentity` request that it never sends,
//! and hands the method, URL, body and headers to Vault, which sends that request to STS and
//! learns from the answer whose request it was. This is what the Vault CLI does
//! (`vault login -method=aws`): POST, form body `Action=GetCallerIdentity&Version=2011-06-15`,
//! URL, body and the JSON of the headers (Go's `http.Header` shape, `{"Name": ["value"]}`)
//! base64-encoded, and the optional `X-Vault-AWS-IAM-Server-ID` header *signed* so that a
//! request made for one Vault cannot be replayed against another.
//!
//! Pure: credentials and the signing time come in, the body goes out; the caller sends it.
//! The signed headers (and a session token among them) are credentials for 15 minutes: the
//! body lives in a zeroized buffer.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;
use zeroize::Zeroizing;

/// The request body Vault forwards to STS.
pub(super) const STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The header that binds a signed request to one Vault server.
pub(super) const SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";

#[derive(Serialize)]
struct LoginBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    iam_http_request_method: &'static str,
    iam_request_url: String,
    iam_request_body: String,
    iam_request_headers: &'a str,
}

/// The JSON body of `POST auth/<mount>/login`: `role` plus the signed request.
pub(super) fn login_body(
    creds: &Credentials,
    role: Option<&str>,
    sts_endpoint: &str,
    sts_region: &str,
    header_value: Option<&str>,
    now: SystemTime,
) -> Result<Zeroizing<Vec<u8>>, String> {
    // the URL Vault checks and forwards to: the endpoint's root
    let url = format!("{}/", sts_endpoint.trim_end_matches('/'));
    let mut headers: Vec<(String, String)> = vec![(
        "Content-Type".into(),
        "application/x-www-form-urlencoded; charset=utf-8".into(),
    )];
    if let Some(v) = header_value {
        headers.push((SERVER_ID_HEADER.into(), v.to_owned()));
    }
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(sts_region)
        .name("sts")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the sts:GetCallerIdentity request: {e}"))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(STS_BODY.as_bytes()),
    )
    .map_err(|e| format!("cannot sign a request to {url}: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the sts:GetCallerIdentity request: {e}"))?
        .into_parts();
    let mut all: BTreeMap<String, Vec<String>> =
        headers.into_iter().map(|(k, v)| (k, vec![v])).collect();
    for (k, v) in instructions.headers() {
        all.insert(k.to_owned(), vec![v.to_owned()]);
    }
    let headers_json = Zeroizing::new(serde_json::to_vec(&all).map_err(|e| e.to_string())?);
    let headers_b64 = Zeroizing::new(B64.encode(headers_json.as_slice()));
    let body = LoginBody {
        role,
        iam_http_request_method: "POST",
        iam_request_url: B64.encode(&url),
        iam_request_body: B64.encode(STS_BODY),
        iam_request_headers: &headers_b64,
    };
    serde_json::to_vec(&body)
        .map(Zeroizing::new)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn decode(v: &serde_json::Value, k: &str) -> String {
        String::from_utf8(B64.decode(v[k].as_str().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn signed_get_caller_identity_as_vault_expects_it() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG",
            Some("S3ss10nT0ken".into()),
            None,
            "t",
        );
        // 2015-08-30T12:36:00Z, the SigV4 test suite's time
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let body = login_body(
            &creds,
            Some("dev"),
            "http://127.0.0.1:5000/",
            "us-east-1",
            Some("vault.example.com"),
            now,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["role"], "dev");
        assert_eq!(v["iam_http_request_method"], "POST");
        assert_eq!(decode(&v, "iam_request_url"), "http://127.0.0.1:5000/");
        assert_eq!(decode(&v, "iam_request_body"), STS_BODY);
        let headers: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&decode(&v, "iam_request_headers")).unwrap();
        let one = |k: &str| {
            headers
                .get(k)
                .map(|v| v[0].clone())
                .unwrap_or_else(|| panic!("{k} in {headers:?}"))
        };
        assert_eq!(one("x-amz-date"), "20150830T123600Z");
        assert_eq!(one("x-amz-security-token"), "S3ss10nT0ken");
        assert_eq!(one(SERVER_ID_HEADER), "vault.example.com");
        assert_eq!(
            one("Content-Type"),
            "application/x-www-form-urlencoded; charset=utf-8"
        );
        let auth = one("authorization");
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders="), "{auth}");
        // Vault refuses a server id that is not signed
        let signed = auth
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert!(
            signed.split(';').any(|h| h == "x-vault-aws-iam-server-id"),
            "{signed}"
        );
        assert!(signed.split(';').any(|h| h == "host"), "{signed}");
        // the secret key itself is never in the body
        assert!(!String::from_utf8_lossy(&body).contains("wJalrXUtnFEMI"));
        // deterministic for a given time, and the signature depends on the key
        let again = login_body(
            &creds,
            Some("dev"),
            "http://127.0.0.1:5000",
            "us-east-1",
            Some("vault.example.com"),
            now,
        )
        .unwrap();
        assert_eq!(body, again, "a trailing / on the endpoint changes nothing");
        let other = Credentials::new(
            "AKIDEXAMPLE",
            "another",
            Some("S3ss10nT0ken".into()),
            None,
            "t",
        );
        let other = login_body(
            &other,
            Some("dev"),
            "http://127.0.0.1:5000",
            "us-east-1",
            Some("vault.example.com"),
            now,
        )
        .unwrap();
        assert_ne!(body, other);
    }

    #[test]
    fn no_role_and_no_server_id_are_left_out() {
        let creds = Credentials::new("AKID", "secret", None, None, "t");
        let body = login_body(
            &creds,
            None,
            "https://sts.amazonaws.com",
            "us-east-1",
            None,
            SystemTime::now(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("role").is_none());
        let headers = decode(&v, "iam_request_headers");
        assert!(
            !headers.contains(SERVER_ID_HEADER) && !headers.contains("x-amz-security-token"),
            "{headers}"
        );
        assert_eq!(decode(&v, "iam_request_url"), "https://sts.amazonaws.com/");
    }
}
