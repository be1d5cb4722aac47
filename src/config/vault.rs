//! `[source] kind = "vault"`: address, KV mount, TLS and authentication, with the environment
//! folded in the way the Vault CLI does it.
//!
//! Everything that comes from outside the file (the `VAULT_*` / `BAO_*` variables, the token in
//! `~/.vault-token`, the service-account JWT, the client certificate) is read here, **once**,
//! while the config is validated: a missing or blank credential is a config error (exit 64)
//! that names the variable or file, before any network call, and the Vault source receives the
//! resolved values in [`SecretString`]s instead of looking at the environment again (where a
//! second read could see something else). Only files that rotate by design (a projected
//! Kubernetes service-account token, a JWT file) are read again, at a later login.
//!
//! Precedence, as for the Vault CLI: a key in the config wins over the environment; `VAULT_X`
//! wins over OpenBao's `BAO_X`.

use std::path::PathBuf;

use secrecy::SecretString;

use super::validate::{Section, Validator};
use super::vault_auth::VaultAuth;

/// `[source] kind = "vault"`, with the environment resolved.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Server address (config, else `VAULT_ADDR`, else `BAO_ADDR`).
    pub address: String,
    /// KV mount, without slashes.
    pub mount: String,
    /// Subtree inside the mount, without leading/trailing slashes ("" = whole mount).
    pub path: String,
    /// Namespace of the secrets (config, else `VAULT_NAMESPACE` / `BAO_NAMESPACE`).
    pub namespace: Option<String>,
    /// Authentication, credentials included.
    pub auth: VaultAuth,
    /// `[source.auth] namespace`: where the login happens when it is not `namespace` (e.g. a
    /// parent namespace). `Some("")` is the root namespace; `None` means `namespace`.
    pub auth_namespace: Option<String>,
    /// Forced KV version; detected from `sys/internal/ui/mounts` when absent.
    pub kv_version: Option<u8>,
    /// CA bundle (config, else `VAULT_CACERT` / `BAO_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// Disable TLS verification (config, else `VAULT_SKIP_VERIFY` / `BAO_SKIP_VERIFY`; warned
    /// about).
    pub tls_skip_verify: bool,
    /// TLS client certificate and key (config, else `VAULT_CLIENT_CERT` / `VAULT_CLIENT_KEY`).
    pub client_identity: Option<ClientIdentity>,
    /// Concurrent list/read requests.
    pub parallelism: usize,
    /// Copy KV v2 `custom_metadata` into tags.
    pub copy_metadata: bool,
}

/// `parallelism` when the config does not say.
pub(crate) const DEFAULT_PARALLELISM: usize = 16;

impl VaultConfig {
    /// A source of `mount`/`path` at `address` with `auth` and every other setting at the
    /// config's default (no namespace, KV version detected, system CAs, TLS verified, no client
    /// certificate, [`DEFAULT_PARALLELISM`], no metadata copy): to drive a Vault source on its
    /// own (tests, bench tools). Runs get theirs from a validated config.
    pub fn with_defaults(address: &str, mount: &str, path: &str, auth: VaultAuth) -> Self {
        VaultConfig {
            address: address.to_owned(),
            mount: mount.to_owned(),
            path: path.to_owned(),
            namespace: None,
            auth,
            auth_namespace: None,
            kv_version: None,
            ca_cert: None,
            tls_skip_verify: false,
            client_identity: None,
            parallelism: DEFAULT_PARALLELISM,
            copy_metadata: false,
        }
    }

    /// The namespace logins and token lookups go to (`None` = the root namespace).
    pub(crate) fn login_namespace(&self) -> Option<&str> {
        let ns = match &self.auth_namespace {
            Some(a) => a.as_str(),
            None => self.namespace.as_deref().unwrap_or(""),
        };
        Some(ns.trim_matches('/')).filter(|n| !n.is_empty())
    }
}

/// A TLS client certificate for mutual TLS: the two files and their PEM text (certificate
/// chain, then the private key), read once.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// Both files' contents, concatenated.
    pub pem: SecretString,
}

/// Go's `strconv.ParseBool`, which the Vault CLI applies to `VAULT_SKIP_VERIFY`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Validator<'_> {
    /// `VAULT_<x>`, else `BAO_<x>`: the variable's name and value, the first one set to
    /// something other than the empty string.
    pub(super) fn vault_env(&self, x: &str) -> Option<(String, String)> {
        [format!("VAULT_{x}"), format!("BAO_{x}")]
            .into_iter()
            .find_map(|name| {
                (self.env)(&name)
                    .filter(|v| !v.is_empty())
                    .map(|v| (name, v))
            })
    }

    pub(super) fn vault(&mut self, s: &mut Section) -> Option<VaultConfig> {
        let address = if s.has("address") {
            self.url(s, "address")
        } else {
            match self.vault_env("ADDR") {
                Some((_, a)) if a.starts_with("http://") || a.starts_with("https://") => {
                    Some(a.trim().trim_end_matches('/').to_owned())
                }
                Some((var, a)) => {
                    s.problem(
                        "address",
                        format!("missing, and {var}={a:?} is not an http(s) URL"),
                    );
                    None
                }
                None => {
                    s.problem(
                        "address",
                        "missing; expected the Vault URL (or set VAULT_ADDR or BAO_ADDR)",
                    );
                    None
                }
            }
        };
        let mount: Option<String> = s.req("mount", "the KV mount path, e.g. \"secret\"");
        let mount = mount.and_then(|m| {
            let m = m.trim_matches('/').to_owned();
            if m.is_empty() {
                s.problem("mount", "must not be empty");
                None
            } else {
                Some(m)
            }
        });
        let path = s
            .opt::<String>("path", "a path inside the mount")
            .unwrap_or_default()
            .trim_matches('/')
            .to_owned();
        // KV v2's API paths are not its secrets' paths: secretport adds data/ and metadata/
        if kv_v2_api_path(s.peek("kv_version"), mount.as_deref(), &path) {
            if let Some(m) = mount.as_deref() {
                for api in ["data", "metadata"] {
                    if let Some(base) = m.strip_suffix(&format!("/{api}")) {
                        s.problem(
                            "mount",
                            format!("{m:?} ends in the KV v2 API segment {api:?}; write mount = {base:?} (secretport adds {api}/ itself)"),
                        );
                    }
                }
            }
            for api in ["data", "metadata"] {
                if path == api || path.starts_with(&format!("{api}/")) {
                    let rest = path[api.len()..].trim_start_matches('/');
                    s.problem(
                        "path",
                        format!("{path:?} starts with the KV v2 API segment {api:?}; write path = {rest:?} (secretport adds {api}/ itself; set kv_version = 1 if this really is a KV v1 folder)"),
                    );
                }
            }
        }
        let namespace = s
            .opt::<String>("namespace", "a namespace path")
            .or_else(|| self.vault_env("NAMESPACE").map(|(_, n)| n))
            .map(|n| n.trim().trim_matches('/').to_owned())
            .filter(|n| !n.is_empty());
        let kv_version: Option<i64> = s.opt("kv_version", "1 or 2");
        let kv_version = match kv_version {
            None => None,
            Some(v @ (1 | 2)) => Some(v as u8),
            Some(v) => {
                s.problem("kv_version", format!("must be 1 or 2, got {v}"));
                None
            }
        };
        let ca_cert = if s.has("ca_cert") {
            self.file(s, "ca_cert", false)
        } else {
            self.vault_env("CACERT").and_then(|(var, c)| {
                let p = self.resolve(c.trim());
                if p.is_file() {
                    Some(p)
                } else {
                    s.problem(
                        "ca_cert",
                        format!(
                            "not set, and {var} names {}, which does not exist",
                            p.display()
                        ),
                    );
                    None
                }
            })
        };
        let tls_skip_verify = match s.opt::<bool>("tls_skip_verify", "true or false") {
            Some(b) => b,
            None => match self.vault_env("SKIP_VERIFY") {
                None => false,
                Some((var, v)) => parse_go_bool(&v).unwrap_or_else(|| {
                    s.problem(
                        "tls_skip_verify",
                        format!("not set, and {var} is not a boolean (write 1/true or 0/false)"),
                    );
                    false
                }),
            },
        };
        let client_identity = self.client_identity(s);
        let parallelism: i64 = s
            .opt("parallelism", "an integer")
            .unwrap_or(DEFAULT_PARALLELISM as i64);
        if !(1..=256).contains(&parallelism) {
            s.problem("parallelism", format!("must be 1..=256, got {parallelism}"));
        }
        let copy_metadata = s.opt("copy_metadata", "true or false").unwrap_or(false);
        let (auth, auth_namespace) = match s.table("auth", false) {
            None => (self.default_token(s, "auth"), None),
            Some(mut a) => {
                let auth_namespace = a
                    .opt::<String>(
                        "namespace",
                        "a namespace path (\"\" for the root namespace)",
                    )
                    .map(|n| n.trim().trim_matches('/').to_owned());
                let auth = self.auth(&mut a);
                self.problems.extend(a.finish());
                (auth, auth_namespace)
            }
        };
        Some(VaultConfig {
            address: address?,
            mount: mount?,
            path,
            namespace,
            auth: auth?,
            auth_namespace,
            kv_version,
            ca_cert,
            tls_skip_verify,
            client_identity: client_identity?,
            parallelism: parallelism.clamp(1, 256) as usize,
            copy_metadata,
        })
    }

    /// `client_cert` + `client_key`, else `VAULT_CLIENT_CERT` + `VAULT_CLIENT_KEY`: both or
    /// neither. `Some(None)` is "no client certificate"; `None` a problem.
    fn client_identity(&mut self, s: &mut Section) -> Option<Option<ClientIdentity>> {
        let from_config = s.has("client_cert") | s.has("client_key");
        let (cert, key) = if from_config {
            let cert = self.file(s, "client_cert", true);
            let key = self.file(s, "client_key", true);
            (cert?, key?)
        } else {
            match (self.vault_env("CLIENT_CERT"), self.vault_env("CLIENT_KEY")) {
                (None, None) => return Some(None),
                (Some((c, cert)), Some((k, key))) => {
                    let cert = self.resolve(cert.trim());
                    let key = self.resolve(key.trim());
                    for (var, p) in [(c, &cert), (k, &key)] {
                        if !p.is_file() {
                            s.problem(
                                "client_cert",
                                format!(
                                    "not set, and {var} names {}, which does not exist",
                                    p.display()
                                ),
                            );
                            return None;
                        }
                    }
                    (cert, key)
                }
                (Some((var, _)), None) | (None, Some((var, _))) => {
                    s.problem(
                        "client_cert",
                        format!("{var} is set without its pair: set both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (or client_cert and client_key)"),
                    );
                    return None;
                }
            }
        };
        let cert_pem = std::fs::read_to_string(&cert);
        let key_pem = std::fs::read_to_string(&key);
        match (cert_pem, key_pem) {
            (Ok(c), Ok(k)) => {
                if !c.contains("-----BEGIN CERTIFICATE-----") {
                    s.problem(
                        "client_cert",
                        format!(
                            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                            cert.display()
                        ),
                    );
                    return None;
                }
                if !k.contains("PRIVATE KEY-----") {
                    s.problem(
                        "client_key",
                        format!(
                            "{} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)",
                            key.display()
                        ),
                    );
                    return None;
                }
                let pem = SecretString::from(format!("{}\n{}", c.trim_end(), k.trim_end()));
                Some(Some(ClientIdentity { cert, key, pem }))
            }
            (Err(e), _) => {
                s.problem(
                    "client_cert",
                    format!("cannot read {}: {e}", cert.display()),
                );
                None
            }
            (_, Err(e)) => {
                s.problem("client_key", format!("cannot read {}: {e}", key.display()));
                None
            }
        }
    }
}

/// Whether a Vault `mount`/`path` written with KV v2's API segments should be flagged: unless
/// the config says KV v1 (where a folder may really be called `data`).
fn kv_v2_api_path(kv_version: Option<&toml::Value>, mount: Option<&str>, path: &str) -> bool {
    let v1 = kv_version.and_then(toml::Value::as_integer) == Some(1);
    let suspicious = mount.is_some_and(|m| m.ends_with("/data") || m.ends_with("/metadata"))
        || ["data", "metadata"]
            .iter()
            .any(|a| path == *a || path.starts_with(&format!("{a}/")));
    !v1 && suspicious
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::vault_auth::GLOBAL_STS_ENDPOINT;
    use crate::config::{Config, ConfigError, Credentials, JwtOrigin, SourceConfig};
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn parse_with(source_extra: &str, env: &[(&str, &str)]) -> Result<VaultConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let text = format!(
            "[source]\nkind = \"vault\"\nmount = \"secret\"\n{source_extra}\n[target]\nregion = \"us-east-1\"\nprefix = \"p\"\n"
        );
        let dir = std::env::temp_dir();
        Config::parse(&text, Path::new("t.toml"), &dir, &|k| env.get(k).cloned()).map(|c| {
            match c.jobs.into_iter().next().map(|j| j.source) {
                Some(SourceConfig::Vault(v)) => v,
                _ => unreachable!("vault"),
            }
        })
    }

    fn problems(r: Result<VaultConfig, ConfigError>) -> String {
        r.expect_err("problems").to_string()
    }

    #[test]
    fn vault_env_wins_over_bao_env_and_config_over_both() {
        let v = parse_with(
            "",
            &[
                ("BAO_ADDR", "http://bao:8200/"),
                ("BAO_TOKEN", "b-token"),
                ("BAO_NAMESPACE", "team-b"),
                ("BAO_SKIP_VERIFY", "true"),
            ],
        )
        .unwrap();
        assert_eq!(v.address, "http://bao:8200");
        assert_eq!(v.namespace.as_deref(), Some("team-b"));
        assert!(v.tls_skip_verify);
        let VaultAuth::Token { token, origin } = &v.auth else {
            panic!("token")
        };
        assert_eq!(
            (token.expose_secret(), origin.as_str()),
            ("b-token", "$BAO_TOKEN")
        );

        let v = parse_with(
            "address = \"https://conf:8200\"\nnamespace = \"conf\"\ntls_skip_verify = false",
            &[
                ("VAULT_ADDR", "http://v:8200"),
                ("BAO_ADDR", "http://bao:8200"),
                ("VAULT_TOKEN", " v-token\n"),
                ("BAO_TOKEN", "b-token"),
                ("VAULT_NAMESPACE", "v-ns"),
                ("VAULT_SKIP_VERIFY", "1"),
            ],
        )
        .unwrap();
        assert_eq!(v.address, "https://conf:8200");
        assert_eq!(v.namespace.as_deref(), Some("conf"));
        assert!(!v.tls_skip_verify);
        let VaultAuth::Token { token, origin } = &v.auth else {
            panic!("token")
        };
        assert_eq!(
            (token.expose_secret(), origin.as_str()),
            ("v-token", "$VAULT_TOKEN")
        );
    }

    #[test]
    fn whitespace_tokens_are_errors_naming_the_variable() {
        let e = problems(parse_with(
            "",
            &[("VAULT_ADDR", "http://v"), ("VAULT_TOKEN", " \t")],
        ));
        assert!(
            e.contains("source.auth: environment variable VAULT_TOKEN is only whitespace"),
            "{e}"
        );
        let e = problems(parse_with(
            "auth = { method = \"token\", token_env = \"T\" }",
            &[("VAULT_ADDR", "http://v"), ("T", "  ")],
        ));
        assert!(
            e.contains("source.auth.token_env: environment variable T is only whitespace"),
            "{e}"
        );
        let e = problems(parse_with("", &[("VAULT_ADDR", "http://v")]));
        assert!(
            e.contains("set VAULT_TOKEN (or BAO_TOKEN), write the token to ~/.vault-token"),
            "{e}"
        );
    }

    #[test]
    fn skip_verify_must_be_a_boolean() {
        let e = problems(parse_with(
            "",
            &[
                ("VAULT_ADDR", "http://v"),
                ("VAULT_TOKEN", "t"),
                ("VAULT_SKIP_VERIFY", "maybe"),
            ],
        ));
        assert!(
            e.contains("source.tls_skip_verify: not set, and VAULT_SKIP_VERIFY is not a boolean"),
            "{e}"
        );
    }

    #[test]
    fn methods_and_their_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let jwt = dir.path().join("jwt");
        std::fs::write(&jwt, "eyJhbGciOi.payload.sig\n").unwrap();
        let env = [("VAULT_ADDR", "http://v"), ("J", "eyJ.env.jwt")];
        let v = parse_with(
            &format!("auth = {{ method = \"kubernetes\", role = \"r\", jwt_file = {:?}, namespace = \"/parent/\" }}\nnamespace = \"parent/child\"", jwt.display().to_string()),
            &env,
        )
        .unwrap();
        let VaultAuth::Kubernetes {
            mount,
            role,
            jwt: t,
            jwt_file,
        } = &v.auth
        else {
            panic!("kubernetes")
        };
        assert_eq!(
            (mount.as_str(), role.as_str(), t.expose_secret()),
            ("kubernetes", "r", "eyJhbGciOi.payload.sig")
        );
        assert_eq!(jwt_file, &jwt);
        assert_eq!(v.login_namespace(), Some("parent"));
        assert_eq!(v.namespace.as_deref(), Some("parent/child"));

        let v = parse_with("auth = { method = \"jwt\", role = \"r\", jwt_env = \"J\", namespace = \"\" }\nnamespace = \"child\"", &env).unwrap();
        let VaultAuth::Jwt {
            mount, origin, jwt, ..
        } = &v.auth
        else {
            panic!("jwt")
        };
        assert_eq!(
            (mount.as_str(), jwt.expose_secret()),
            ("jwt", "eyJ.env.jwt")
        );
        assert_eq!(origin, &JwtOrigin::Env("J".into()));
        assert_eq!(v.login_namespace(), None, "\"\" is the root namespace");

        let v = parse_with("auth = { method = \"aws\", role = \"r\" }", &env).unwrap();
        let VaultAuth::Aws {
            mount,
            sts_endpoint,
            sts_region,
            credentials,
            ..
        } = &v.auth
        else {
            panic!("aws")
        };
        assert_eq!(
            (mount.as_str(), sts_endpoint.as_str(), sts_region.as_str()),
            ("aws", GLOBAL_STS_ENDPOINT, "us-east-1")
        );
        assert_eq!(credentials, &Credentials::Default);
        let v = parse_with(
            "auth = { method = \"aws\", sts_region = \"eu-west-1\", mount = \"aws-prod\" }",
            &env,
        )
        .unwrap();
        let VaultAuth::Aws {
            sts_endpoint, role, ..
        } = &v.auth
        else {
            panic!("aws")
        };
        assert_eq!(sts_endpoint, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(role, &None);
    }

    #[test]
    fn method_problems_name_their_keys() {
        let env = [("VAULT_ADDR", "http://v")];
        let e = problems(parse_with(
            "auth = { method = \"kubernetes\", jwt_file = \"/nonexistent/token\" }",
            &env,
        ));
        assert!(e.contains("source.auth.role: missing"), "{e}");
        assert!(
            e.contains("source.auth.jwt_file: /nonexistent/token does not exist"),
            "{e}"
        );
        let e = problems(parse_with(
            "auth = { method = \"jwt\", role = \"r\" }",
            &env,
        ));
        assert!(
            e.contains("source.auth.jwt_file: missing; give jwt_file"),
            "{e}"
        );
        let e = problems(parse_with(
            "auth = { method = \"aprole\", role_id_env = \"R\", secret_id_env = \"S\" }",
            &env,
        ));
        assert!(
            e.contains("source.auth.method: \"aprole\" is not supported"),
            "{e}"
        );
        assert!(
            !e.contains("role_id_env"),
            "not judged without a method: {e}"
        );
        let e = problems(parse_with("auth = { mehtod = \"token\" }", &env));
        assert!(
            e.contains(
                "source.auth.mehtod: unknown key; did you mean `method`? `method` is missing"
            ),
            "{e}"
        );
        let e = problems(parse_with("auth = { method = \"ldap\" }", &env));
        assert!(e.contains("\"ldap\" is not supported; expected \"token\", \"approle\", \"kubernetes\", \"jwt\" or \"aws\""), "{e}");
        let e = problems(parse_with(
            "",
            &[
                ("VAULT_ADDR", "http://v"),
                ("VAULT_TOKEN", "t"),
                ("VAULT_CLIENT_CERT", "/c.pem"),
            ],
        ));
        assert!(
            e.contains("VAULT_CLIENT_CERT is set without its pair"),
            "{e}"
        );
    }

    #[test]
    fn token_file_in_home() {
        let home = tempfile::tempdir().unwrap();
        let home_s = home.path().display().to_string();
        std::fs::write(home.path().join(".vault-token"), "s.fromfile\n").unwrap();
        let v = parse_with("", &[("VAULT_ADDR", "http://v"), ("HOME", &home_s)]).unwrap();
        let VaultAuth::Token { token, origin } = &v.auth else {
            panic!("token")
        };
        assert_eq!(token.expose_secret(), "s.fromfile");
        assert!(origin.ends_with(".vault-token"), "{origin}");
        std::fs::write(home.path().join(".vault-token"), " \n").unwrap();
        let e = problems(parse_with(
            "",
            &[("VAULT_ADDR", "http://v"), ("HOME", &home_s)],
        ));
        assert!(e.contains(".vault-token is empty"), "{e}");
    }
}
