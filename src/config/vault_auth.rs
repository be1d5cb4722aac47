//! `[source.auth]` of a Vault source: the login method and its credentials, read once while
//! the config is validated (a token from a named variable, `VAULT_TOKEN`, `BAO_TOKEN` or
//! `~/.vault-token`; AppRole ids; a Kubernetes or JWT login's JWT; the AWS credentials an AWS
//! IAM login signs with). A missing or blank credential is a problem naming its variable or
//! file. The source (`source::vault::auth`) turns the method into a token.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::validate::{Section, Validator};
use super::Credentials;

/// Where Kubernetes mounts a pod's service-account token.
const KUBERNETES_JWT_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The global STS endpoint (what the Vault CLI signs for when no region is given).
pub(super) const GLOBAL_STS_ENDPOINT: &str = "https://sts.amazonaws.com";

/// Where a JWT comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtOrigin {
    /// A file, read again at every login (projected tokens rotate).
    File(PathBuf),
    /// An environment variable, read once.
    Env(String),
}

impl std::fmt::Display for JwtOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtOrigin::File(p) => write!(f, "the JWT in {}", p.display()),
            JwtOrigin::Env(v) => write!(f, "the JWT in ${v}"),
        }
    }
}

/// Vault authentication, with its credentials already read (never printed: `SecretString`).
#[derive(Debug, Clone)]
pub enum VaultAuth {
    /// A token.
    Token {
        /// The token.
        token: SecretString,
        /// Where it came from, for messages: `$VAULT_TOKEN`, `/home/me/.vault-token`.
        origin: String,
    },
    /// AppRole login.
    AppRole {
        /// Auth mount (default `approle`).
        mount: String,
        /// The role id.
        role_id: SecretString,
        /// The secret id.
        secret_id: SecretString,
        /// Env var that held the role id (for messages).
        role_id_env: String,
        /// Env var that held the secret id (for messages).
        secret_id_env: String,
    },
    /// Kubernetes auth: the pod's service-account JWT.
    Kubernetes {
        /// Auth mount (default `kubernetes`).
        mount: String,
        /// Vault role.
        role: String,
        /// The JWT as read at config time (used for the first login).
        jwt: SecretString,
        /// The file, read again at every later login.
        jwt_file: PathBuf,
    },
    /// JWT / OIDC-issued JWT auth.
    Jwt {
        /// Auth mount (default `jwt`).
        mount: String,
        /// Vault role.
        role: String,
        /// The JWT as read at config time.
        jwt: SecretString,
        /// Where it came from.
        origin: JwtOrigin,
    },
    /// AWS IAM auth: a signed `sts:GetCallerIdentity` request.
    Aws {
        /// Auth mount (default `aws`).
        mount: String,
        /// Vault role (`None`: Vault uses the IAM principal's name).
        role: Option<String>,
        /// `X-Vault-AWS-IAM-Server-ID` header value, when the mount demands one.
        header_value: Option<String>,
        /// STS endpoint the request is signed for.
        sts_endpoint: String,
        /// Region the request is signed for.
        sts_region: String,
        /// Whose AWS credentials sign it.
        credentials: Credentials,
    },
}

const METHODS: &str = "\"token\", \"approle\", \"kubernetes\", \"jwt\" or \"aws\"";

impl Validator<'_> {
    /// A file that holds a credential, read now; missing, unreadable or blank is a problem.
    fn secret_file(
        &mut self,
        s: &mut Section,
        k: &str,
        p: &Path,
        what: &str,
    ) -> Option<SecretString> {
        match std::fs::read_to_string(p) {
            Ok(t) if t.trim().is_empty() => {
                s.problem(
                    k,
                    format!("{} is empty; it must hold the {what}", p.display()),
                );
                None
            }
            Ok(t) => Some(SecretString::from(t.trim().to_owned())),
            Err(e) => {
                s.problem(k, format!("cannot read {} (the {what}): {e}", p.display()));
                None
            }
        }
    }

    /// The token when the config names no variable: `VAULT_TOKEN`, `BAO_TOKEN`, then the Vault
    /// CLI's token file `~/.vault-token`. Problems go under `key`.
    pub(super) fn default_token(&mut self, s: &mut Section, key: &str) -> Option<VaultAuth> {
        for var in ["VAULT_TOKEN", "BAO_TOKEN"] {
            match (self.env)(var) {
                // set to nothing: unset, as for the Vault CLI
                Some(v) if v.is_empty() => {}
                Some(v) if v.trim().is_empty() => {
                    s.problem(
                        key,
                        format!("environment variable {var} is only whitespace; set it to the Vault token or unset it"),
                    );
                    return None;
                }
                Some(v) => {
                    return Some(VaultAuth::Token {
                        token: SecretString::from(v.trim().to_owned()),
                        origin: format!("${var}"),
                    })
                }
                None => {}
            }
        }
        let file = (self.env)("HOME")
            .filter(|h| !h.trim().is_empty())
            .map(|h| Path::new(&h).join(".vault-token"));
        if let Some(f) = file.filter(|f| f.exists()) {
            let token = self.secret_file(s, key, &f, "Vault token")?;
            return Some(VaultAuth::Token {
                token,
                origin: f.display().to_string(),
            });
        }
        s.problem(
            key,
            "missing; set VAULT_TOKEN (or BAO_TOKEN), write the token to ~/.vault-token, or \
             configure auth = { method = \"token\", token_env = \"...\" } (or approle, \
             kubernetes, jwt, aws)",
        );
        None
    }

    /// An auth method's `mount`, without slashes.
    fn auth_mount(a: &mut Section, default: &str) -> String {
        let m = a
            .opt::<String>("mount", "the auth method's mount path")
            .unwrap_or_else(|| default.into())
            .trim_matches('/')
            .to_owned();
        if m.is_empty() {
            a.problem("mount", format!("must not be empty (default {default:?})"));
        }
        m
    }

    /// A required, non-empty `role`.
    fn auth_role(a: &mut Section, what: &str) -> Option<String> {
        let r: Option<String> = a.req("role", what);
        match r {
            Some(r) if r.trim().is_empty() => {
                a.problem("role", "must not be empty");
                None
            }
            r => r,
        }
    }

    pub(super) fn auth(&mut self, a: &mut Section) -> Option<VaultAuth> {
        let method: Option<String> = a.req("method", METHODS);
        match method.as_deref() {
            Some("token") => {
                if a.has("token_env") {
                    let (var, token) = self
                        .env_secret(a, "token_env", None, "Vault token", true)
                        .map(|e| (e.var, e.value))?;
                    Some(VaultAuth::Token {
                        token,
                        origin: format!("${var}"),
                    })
                } else {
                    self.default_token(a, "token_env")
                }
            }
            Some("approle") => {
                let role_id = self
                    .env_secret(a, "role_id_env", None, "AppRole role id", true)
                    .map(|e| (e.var, e.value));
                let secret_id = self
                    .env_secret(a, "secret_id_env", None, "AppRole secret id", true)
                    .map(|e| (e.var, e.value));
                let mount = Self::auth_mount(a, "approle");
                let ((role_id_env, role_id), (secret_id_env, secret_id)) = (role_id?, secret_id?);
                Some(VaultAuth::AppRole {
                    mount,
                    role_id,
                    secret_id,
                    role_id_env,
                    secret_id_env,
                })
            }
            Some("kubernetes") => {
                let role = Self::auth_role(a, "the Vault role bound to the service account");
                let mount = Self::auth_mount(a, "kubernetes");
                let file = a
                    .opt::<String>("jwt_file", "the service-account token file")
                    .unwrap_or_else(|| KUBERNETES_JWT_FILE.into());
                let jwt_file = self.resolve(&file);
                let jwt = if jwt_file.is_file() {
                    self.secret_file(a, "jwt_file", &jwt_file, "service-account token")
                } else {
                    a.problem(
                        "jwt_file",
                        format!(
                            "{} does not exist; run inside a pod with a service-account token \
                             (automountServiceAccountToken or a projected volume), or set jwt_file",
                            jwt_file.display()
                        ),
                    );
                    None
                };
                Some(VaultAuth::Kubernetes {
                    mount,
                    role: role?,
                    jwt: jwt?,
                    jwt_file,
                })
            }
            Some("jwt") => {
                let role = Self::auth_role(a, "the Vault role of the JWT auth mount");
                let mount = Self::auth_mount(a, "jwt");
                let jwt = match (a.has("jwt_file"), a.has("jwt_env")) {
                    (true, false) => {
                        let p = self.file(a, "jwt_file", true);
                        p.and_then(|p| {
                            let jwt = self.secret_file(a, "jwt_file", &p, "JWT")?;
                            Some((jwt, JwtOrigin::File(p)))
                        })
                    }
                    (false, true) => self
                        .env_secret(a, "jwt_env", None, "JWT", true)
                        .map(|e| (e.var, e.value))
                        .map(|(var, jwt)| (jwt, JwtOrigin::Env(var))),
                    (true, true) => {
                        a.problem("jwt_env", "give jwt_file or jwt_env, not both");
                        a.take("jwt_file");
                        a.take("jwt_env");
                        None
                    }
                    (false, false) => {
                        a.problem(
                            "jwt_file",
                            "missing; give jwt_file = \"/path/to/token\" or jwt_env = \"VAR\"",
                        );
                        None
                    }
                };
                let (jwt, origin) = jwt?;
                Some(VaultAuth::Jwt {
                    mount,
                    role: role?,
                    jwt,
                    origin,
                })
            }
            Some("aws") => {
                let role: Option<String> = a.opt("role", "the Vault role of the AWS auth mount");
                let mount = Self::auth_mount(a, "aws");
                let header_value: Option<String> = a.opt(
                    "header_value",
                    "the X-Vault-AWS-IAM-Server-ID value the mount expects",
                );
                let sts_region = self.region(a, "sts_region");
                let sts_endpoint = self.url(a, "sts_endpoint");
                let credentials = self
                    .credentials_key(a)
                    .map(|c| c.unwrap_or(Credentials::Default))
                    .ok();
                let sts_endpoint = match (&sts_endpoint, &sts_region) {
                    (Some(e), _) => e.clone(),
                    (None, Some(r)) => format!("https://sts.{r}.amazonaws.com"),
                    (None, None) => GLOBAL_STS_ENDPOINT.to_owned(),
                };
                Some(VaultAuth::Aws {
                    mount,
                    role,
                    header_value,
                    sts_endpoint,
                    sts_region: sts_region.unwrap_or_else(|| "us-east-1".into()),
                    credentials: credentials?,
                })
            }
            Some(other) => {
                a.problem(
                    "method",
                    format!("{other:?} is not supported; expected {METHODS}"),
                );
                a.unjudged_without("method");
                None
            }
            None => {
                a.unjudged_without("method");
                None
            }
        }
    }
}
