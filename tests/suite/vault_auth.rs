//! Vault authentication through the `secretport` binary against a real OpenBao (moto is the
//! target): JWT with a key pair made here, the Kubernetes method's login call (validated by a JWT
//! mount at `auth/kubernetes`: OpenBao's own Kubernetes method needs a Kubernetes API server's
//! TokenReview, which these tests do not have) and its re-read of a rotated token file, the AWS
//! IAM login's error when the mount is missing (OpenBao 2.x has no AWS auth method: see that
//! test), AppRole in a parent namespace reading a child namespace, and the Vault CLI's
//! environment (`BAO_ADDR`, `BAO_TOKEN`, `~/.vault-token`, `VAULT_SKIP_VERIFY`, `VAULT_CACERT`, a
//! blank `VAULT_TOKEN`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::Workspace;
use crate::support::{start_tls_bao, Bao, BaoApi, Moto};

const READ_APPS: &str = r#"
path "secret/metadata/apps/"  { capabilities = ["list"] }
path "secret/metadata/apps/*" { capabilities = ["list"] }
path "secret/data/apps/*"     { capabilities = ["read"] }
"#;

/// An ES256 key pair for signing JWTs.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        Signer { key, rng }
    }

    /// The public key as a PEM SubjectPublicKeyInfo (what `jwt_validation_pubkeys` takes).
    fn public_pem(&self) -> String {
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING <uncompressed point> }
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(self.key.public_key().as_ref());
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// A JWT for `aud = secretport`, `sub = sub`, valid from now for `ttl`.
    fn jwt(&self, sub: &str, ttl: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "typ": "JWT"}).to_string());
        let claims = json!({
            "sub": sub, "aud": "secretport", "iss": "secretport-tests",
            "iat": now, "nbf": now, "exp": now + ttl.as_secs(),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// Enables a JWT auth mount at `auth/<path>` trusting `signer`, with role `migrator` (audience
/// `secretport`, policy `read-apps`, token TTL `ttl`, no clock leeway).
async fn jwt_mount(bao: &BaoApi, path: &str, signer: &Signer, ttl: &str) {
    bao.write_policy("read-apps", READ_APPS).await;
    bao.call(
        Method::POST,
        &format!("sys/auth/{path}"),
        Some(&json!({"type": "jwt"})),
    )
    .await;
    bao.call(
        Method::POST,
        &format!("auth/{path}/config"),
        Some(&json!({"jwt_validation_pubkeys": [signer.public_pem()]})),
    )
    .await;
    bao.call(
        Method::POST,
        &format!("auth/{path}/role/migrator"),
        Some(&json!({
            "role_type": "jwt",
            "bound_audiences": ["secretport"],
            "user_claim": "sub",
            "token_policies": ["read-apps"],
            "token_ttl": ttl,
            "clock_skew_leeway": -1, "expiration_leeway": -1, "not_before_leeway": -1,
        })),
    )
    .await;
}

async fn seed(bao: &Bao) {
    bao.put_kv2("secret", "apps/db", json!({"password": "jwt-p1"}))
        .await;
    bao.put_kv2("secret", "apps/api", json!({"key": "jwt-k2"}))
        .await;
}

fn config(bao: &str, moto: &str, auth: &str, prefix: &str) -> String {
    format!(
        "[source]\nkind = \"vault\"\naddress = \"{bao}\"\nmount = \"secret\"\npath = \"apps\"\nauth = {auth}\n\n\
         [target]\nregion = \"us-east-1\"\nprefix = \"{prefix}\"\nendpoint_url = \"{moto}\"\n"
    )
}

async fn target_value(moto: &Moto, name: &str) -> Value {
    let v = moto
        .sm_client("us-east-1")
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    serde_json::from_str(v.secret_string().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_login_plans_and_migrates_and_a_foreign_key_is_refused_naming_the_mount() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    seed(&bao).await;
    let signer = Signer::new();
    jwt_mount(&bao, "jwt", &signer, "1h").await;
    let mut ws = Workspace::new();
    let jwt = signer.jwt("ci-pipeline", Duration::from_secs(600));
    ws.write("ci.jwt", &format!("{jwt}\n"));
    ws.write(
        "file.toml",
        &config(
            bao.addr(),
            moto.endpoint(),
            r#"{ method = "jwt", role = "migrator", jwt_file = "ci.jwt" }"#,
            "jwtf",
        ),
    );
    let plan = ws.run(&["plan", "-c", "file.toml"]).await;
    plan.expect_code(0);
    assert_eq!(plan.count("create", "planned"), 2, "{:#?}", plan.rows);
    let run = ws
        .run_with(
            &["migrate", "-c", "file.toml", "--yes"],
            &[("RUST_LOG", "trace")],
        )
        .await;
    run.expect_code(0);
    let sig = jwt.rsplit('.').next().unwrap();
    assert!(
        !run.all_output().contains(sig),
        "the JWT leaked under trace"
    );
    assert_eq!(
        target_value(&moto, "jwtf/db").await,
        json!({"password": "jwt-p1"})
    );

    // the JWT from an environment variable (OIDC-issued tokens handed over by a CI system)
    ws.env("CI_JWT", &jwt);
    ws.write(
        "env.toml",
        &config(
            bao.addr(),
            moto.endpoint(),
            r#"{ method = "jwt", role = "migrator", jwt_env = "CI_JWT" }"#,
            "jwte",
        ),
    );
    ws.run(&["migrate", "-c", "env.toml", "--yes"])
        .await
        .expect_code(0);
    assert_eq!(
        target_value(&moto, "jwte/api").await,
        json!({"key": "jwt-k2"})
    );

    // signed by another key: one clear error naming the URL, namespace and mount
    let forged = Signer::new().jwt("ci-pipeline", Duration::from_secs(600));
    ws.write("forged.jwt", &forged);
    ws.write(
        "forged.toml",
        &config(
            bao.addr(),
            moto.endpoint(),
            r#"{ method = "jwt", role = "migrator", jwt_file = "forged.jwt" }"#,
            "jwtx",
        ),
    );
    let run = ws.run(&["plan", "-c", "forged.toml"]).await;
    run.expect_code(1);
    let out = run.all_output();
    for want in [
        "JWT login at",
        "/v1/auth/jwt/login",
        "the root namespace",
        "auth/jwt",
        "role \"migrator\"",
        "forged.jwt",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    for jwt in [&forged, &jwt] {
        let sig = jwt.rsplit('.').next().unwrap();
        assert!(!out.contains(sig), "the JWT leaked:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_method_posts_the_service_account_token_to_its_mount() {
    // OpenBao's kubernetes method checks a token with the TokenReview API of a Kubernetes API
    // server; there is none here. A JWT mount at auth/kubernetes validates the same
    // `{role, jwt}` login call for real.
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    seed(&bao).await;
    let signer = Signer::new();
    jwt_mount(&bao, "kubernetes", &signer, "1h").await;
    let ws = Workspace::new();
    ws.write(
        "sa-token",
        &signer.jwt(
            "system:serviceaccount:ops:secretport",
            Duration::from_secs(600),
        ),
    );
    ws.write(
        "k8s.toml",
        &config(
            bao.addr(),
            moto.endpoint(),
            r#"{ method = "kubernetes", role = "migrator", jwt_file = "sa-token" }"#,
            "k8s",
        ),
    );
    ws.run(&["migrate", "-c", "k8s.toml", "--yes"])
        .await
        .expect_code(0);
    assert_eq!(
        target_value(&moto, "k8s/db").await,
        json!({"password": "jwt-p1"})
    );

    // outside a pod, the default token file is missing: a config error naming it
    ws.write(
        "nofile.toml",
        &config(
            bao.addr(),
            moto.endpoint(),
            r#"{ method = "kubernetes", role = "migrator" }"#,
            "k8s",
        ),
    );
    let run = ws.run(&["plan", "-c", "nofile.toml"]).await;
    run.expect_code(64);
    assert!(
        run.stderr.contains("source.auth.jwt_file: /var/run/secrets/kubernetes.io/serviceaccount/token does not exist"),
        "{}",
        run.stderr
    );

    // a role the mount does not have: the error names the mount and the role, not only "denied"
    ws.write(
        "norole.toml",
        &config(
            bao.addr(),
            moto.endpoint(),
            r#"{ method = "kubernetes", role = "nobody", jwt_file = "sa-token", mount = "k8s-prod" }"#,
            "k8s",
        ),
    );
    let run = ws.run(&["plan", "-c", "norole.toml"]).await;
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("/v1/auth/k8s-prod/login (the root namespace)")
            && run
                .stderr
                .contains("Kubernetes auth method is enabled at auth/k8s-prod"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_jwt_file_is_read_again_at_the_next_login() {
    use secrecy::SecretString;
    use secretport::config::{VaultAuth, VaultConfig};
    use secretport::source::vault::VaultSource;
    use secretport::source::{Source, SourceRef};

    let bao = Bao::start().await;
    seed(&bao).await;
    let signer = Signer::new();
    // tokens live 2 s: the source logs in again during the loop below
    jwt_mount(&bao, "kubernetes", &signer, "2s").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    // this JWT expires in 2 s: a later login that re-used it would be refused
    let first = signer.jwt("sa", Duration::from_secs(2));
    std::fs::write(&file, &first).unwrap();
    let mut cfg = VaultConfig::with_defaults(
        bao.addr(),
        "secret",
        "apps",
        VaultAuth::Kubernetes {
            mount: "kubernetes".into(),
            role: "migrator".into(),
            jwt: SecretString::from(first),
            jwt_file: file.clone(),
        },
    );
    cfg.kv_version = Some(2);
    cfg.parallelism = 4;
    let limits = std::sync::Arc::new(secretport::limits::Limits::new(
        &secretport::config::LimitsConfig::default(),
    ));
    let source = VaultSource::connect(
        &cfg,
        limits,
        secretport::retry::RetryPolicy::new(2),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    // the kubelet rotates the projected token
    std::fs::write(&file, signer.jwt("sa", Duration::from_secs(600))).unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let r = source.fetch(&SourceRef::new("db")).await;
        assert!(r.is_ok(), "after {:?}: {:?}", started.elapsed(), r.err());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// OpenBao 2.x ships no AWS auth method (`sys/auth/aws` with `type = "aws"` answers "plugin not
/// found in the catalog: aws"), so no server here can check a signed `sts:GetCallerIdentity`
/// login; the request's shape is pinned by the unit tests of `source::vault::aws_iam`. What a
/// user sees when the mount is not there is tested here: the credentials come from the AWS
/// chain, the request is signed and posted, and the refusal names the URL, namespace and mount
/// without a signed header in it.
#[tokio::test(flavor = "multi_thread")]
async fn aws_iam_login_without_the_mount_names_where_it_looked() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    let (status, answer) = bao
        .request(Method::POST, "sys/auth/aws", Some(&json!({"type": "aws"})))
        .await;
    assert!(
        status == 400 && answer.to_string().contains("plugin not found"),
        "OpenBao now has an aws auth method ({status} {answer}): test the login against moto's STS"
    );
    let ws = Workspace::new();
    let auth = format!(
        r#"{{ method = "aws", role = "migrator", sts_endpoint = "{}", header_value = "vault.example.com" }}"#,
        moto.endpoint()
    );
    ws.write(
        "aws.toml",
        &config(bao.addr(), moto.endpoint(), &auth, "iam"),
    );
    let run = ws.run(&["plan", "-c", "aws.toml"]).await;
    run.expect_code(1);
    let out = run.all_output();
    assert!(
        out.contains("AWS IAM login at")
            && out.contains("/v1/auth/aws/login (the root namespace)")
            && out.contains("AWS IAM auth method is enabled at auth/aws")
            && out.contains("role \"migrator\""),
        "{out}"
    );
    assert!(
        !out.contains("Signature=") && !out.contains(crate::support::TEST_SECRET_ACCESS_KEY),
        "signed headers or keys leaked:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn approle_in_a_parent_namespace_reads_secrets_of_a_child_namespace() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    bao.create_namespace("parent").await;
    let parent = bao.in_namespace("parent");
    parent.create_namespace("child").await;
    let child = parent.in_namespace("child");
    child.mount_kv("kv", 2).await;
    child
        .put_kv2("kv", "apps/db", json!({"password": "ns-p1"}))
        .await;
    // a parent namespace's policy names child paths with the child's name in front
    let (role_id, secret_id) = parent
        .approle_with_policy(
            "migrator",
            r#"
path "child/kv/metadata/apps/"  { capabilities = ["list"] }
path "child/kv/metadata/apps/*" { capabilities = ["list"] }
path "child/kv/data/apps/*"     { capabilities = ["read"] }
"#,
        )
        .await;
    let mut ws = Workspace::new();
    ws.env("ROLE_ID", &role_id);
    ws.env("SECRET_ID", &secret_id);
    let cfg = |auth_ns: &str| {
        format!(
            "[source]\nkind = \"vault\"\naddress = \"{}\"\nnamespace = \"parent/child\"\nmount = \"kv\"\npath = \"apps\"\n\
             auth = {{ method = \"approle\", role_id_env = \"ROLE_ID\", secret_id_env = \"SECRET_ID\"{auth_ns} }}\n\n\
             [target]\nregion = \"us-east-1\"\nprefix = \"ns\"\nendpoint_url = \"{}\"\n",
            bao.addr(),
            moto.endpoint()
        )
    };
    ws.write("ns.toml", &cfg(", namespace = \"parent\""));
    ws.run(&["migrate", "-c", "ns.toml", "--yes"])
        .await
        .expect_code(0);
    assert_eq!(
        target_value(&moto, "ns/db").await,
        json!({"password": "ns-p1"})
    );

    // logging in where the secrets are (no auth.namespace): the error says where it looked
    ws.write("child.toml", &cfg(""));
    let run = ws.run(&["plan", "-c", "child.toml"]).await;
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("/v1/auth/approle/login (namespace \"parent/child\")")
            && run.stderr.contains("source.auth.namespace"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains(&secret_id));
}

fn env_config(moto: &str) -> String {
    format!(
        "[source]\nkind = \"vault\"\nmount = \"secret\"\npath = \"apps\"\n\n\
         [target]\nregion = \"us-east-1\"\nprefix = \"env\"\nendpoint_url = \"{moto}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn address_and_token_come_from_the_environment_like_the_vault_cli() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    seed(&bao).await;
    let ws = Workspace::new();
    ws.write("env.toml", &env_config(moto.endpoint()));
    // OpenBao's names
    let run = ws
        .run_with(
            &["plan", "-c", "env.toml"],
            &[("BAO_ADDR", bao.addr()), ("BAO_TOKEN", bao.token())],
        )
        .await;
    run.expect_code(0);
    assert_eq!(run.count("create", "planned"), 2);
    // the Vault CLI's token file in $HOME (the workspace)
    let token = bao.create_token(&["read-apps-env"]).await;
    bao.write_policy("read-apps-env", READ_APPS).await;
    ws.write(".vault-token", &format!("{token}\n"));
    ws.run_with(&["plan", "-c", "env.toml"], &[("VAULT_ADDR", bao.addr())])
        .await
        .expect_code(0);
    // VAULT_TOKEN wins over the file; one that is only whitespace is a usage error naming it
    let run = ws
        .run_with(
            &["plan", "-c", "env.toml"],
            &[("VAULT_ADDR", bao.addr()), ("VAULT_TOKEN", " \t ")],
        )
        .await;
    run.expect_code(64);
    assert!(
        run.stderr
            .contains("source.auth: environment variable VAULT_TOKEN is only whitespace"),
        "{}",
        run.stderr
    );
    // a wrong token from the file is refused, naming the file
    ws.write(".vault-token", "s.not-a-real-token");
    let run = ws
        .run_with(&["plan", "-c", "env.toml"], &[("VAULT_ADDR", bao.addr())])
        .await;
    run.expect_code(1);
    assert!(run.stderr.contains(".vault-token"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_verify_and_ca_cert_come_from_the_environment() {
    let (bao, moto) = tokio::join!(start_tls_bao(), Moto::start());
    let ws = Workspace::new();
    // the TLS server's KV mount is empty
    let empty_ok = env_config(moto.endpoint())
        .replace("path = \"apps\"", "path = \"apps\"\nallow_empty = true");
    ws.write("env.toml", &empty_ok);
    let base = [("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", "root")];
    // the dev server's certificate is self-signed: refused...
    let run = ws.run_with(&["plan", "-c", "env.toml"], &base).await;
    run.expect_code(1);
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
    // ...unless verification is off, as the Vault CLI's VAULT_SKIP_VERIFY says
    let mut skip = base.to_vec();
    skip.push(("VAULT_SKIP_VERIFY", "true"));
    ws.run_with(&["plan", "-c", "env.toml"], &skip)
        .await
        .expect_code(0);
    // or the CA is trusted
    let ca = bao.ca.display().to_string();
    let mut with_ca = base.to_vec();
    with_ca.push(("VAULT_CACERT", ca.as_str()));
    ws.run_with(&["plan", "-c", "env.toml"], &with_ca)
        .await
        .expect_code(0);
    // the config's key wins over the environment
    ws.write(
        "strict.toml",
        &empty_ok.replace(
            "allow_empty = true",
            "allow_empty = true\ntls_skip_verify = false",
        ),
    );
    ws.run_with(&["plan", "-c", "strict.toml"], &skip)
        .await
        .expect_code(1);
}
