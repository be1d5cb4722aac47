//! `refs scan`: finds consumers that still name the old store.
//!
//! Pure per file ([`scan_text`]: text in, [`Found`] references out, with their line), so every
//! syntax is table-tested; the directory walk ([`walk`]) is the only I/O and uses the `ignore`
//! crate (ripgrep's walker), so `.gitignore`, `.ignore` and `.git/info/exclude` are honoured as
//! a developer expects, inside a git checkout or not.
//!
//! Syntaxes found (a line whose first non-blank characters are `#` or `//` is a comment and
//! never matches):
//! - External Secrets Operator `ExternalSecret` / `ClusterExternalSecret`: `remoteRef.key` and
//!   `dataFrom[].extract.key`, with the store the manifest names (`secretStoreRef`). When the
//!   scanned tree defines that `SecretStore` / `ClusterSecretStore`, its provider decides: a
//!   Vault store makes the key a Vault path (relative to the store's `path`, the mount), an AWS
//!   Parameter Store one an SSM name, an AWS Secrets Manager one is already cut over (skipped).
//! - Vault Agent / consul-template: `{{ with secret "…" }}`, `{{ secret "…" }}`, `{{ range
//!   secret … }}`, also with HCL-escaped quotes (`\"`).
//! - Vault Agent injector annotations `vault.hashicorp.com/agent-inject-secret-*`.
//! - The Vault (and OpenBao `bao`) CLI: `vault kv get|put|patch [flags] PATH` (with
//!   `-mount=M`) and `vault read [flags] PATH`.
//! - CloudFormation `{{resolve:ssm-secure:NAME[:VERSION]}}` and `{{resolve:ssm:…}}`.
//! - ECS (and anything else spelling it so) `valueFrom` with an SSM parameter ARN
//!   (`arn:aws:ssm:…:parameter/NAME`) or a parameter name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

use super::Store;

/// The syntax a reference was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Syntax {
    /// An ESO `ExternalSecret` / `ClusterExternalSecret` key.
    ExternalSecret,
    /// A Vault Agent / consul-template `secret` call.
    VaultTemplate,
    /// A Vault Agent injector annotation.
    VaultAnnotation,
    /// `vault kv get|put|patch` or `vault read`.
    VaultCli,
    /// CloudFormation `{{resolve:ssm-secure:…}}`.
    CloudFormation,
    /// An ECS `valueFrom`.
    ValueFrom,
}

impl Syntax {
    /// A short name for output.
    pub fn as_str(self) -> &'static str {
        match self {
            Syntax::ExternalSecret => "external-secret",
            Syntax::VaultTemplate => "vault-template",
            Syntax::VaultAnnotation => "vault-annotation",
            Syntax::VaultCli => "vault-cli",
            Syntax::CloudFormation => "cloudformation",
            Syntax::ValueFrom => "value-from",
        }
    }
}

/// A reference found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// 1-based line.
    pub line: usize,
    /// Where it was found.
    pub syntax: Syntax,
    /// The reference as written (Vault path, SSM name, ESO key), quotes and flags removed.
    pub written: String,
    /// Which store it names.
    pub store: Store,
    /// The mount an ESO Vault store reads, for a key relative to it.
    pub mount: Option<String>,
    /// The ESO store the manifest names (`SecretStore/name`), when it names one.
    pub(crate) store_ref: Option<String>,
}

/// What a `SecretStore` / `ClusterSecretStore` in the tree reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Provider {
    /// Vault, with its `path` (the KV mount) when given.
    Vault(Option<String>),
    /// AWS Parameter Store.
    AwsParameterStore,
    /// AWS Secrets Manager (already the new store).
    AwsSecretsManager,
    /// Any other provider.
    Other,
}

/// The stores defined in the scanned tree, by `Kind/name`.
pub(crate) type Stores = BTreeMap<String, Provider>;

/// One YAML mapping entry: its line, the keys from the document root, the scalar value.
struct Entry<'a> {
    line: usize,
    keys: Vec<&'a str>,
    value: String,
}

impl Entry<'_> {
    fn ends_with(&self, tail: &[&str]) -> bool {
        self.keys.ends_with(tail)
    }
}

/// Strips quotes and a trailing comment from a YAML scalar.
fn scalar(v: &str) -> String {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('"') {
        return rest.split('"').next().unwrap_or("").to_owned();
    }
    if let Some(rest) = v.strip_prefix('\'') {
        return rest.split('\'').next().unwrap_or("").to_owned();
    }
    v.split(" #").next().unwrap_or("").trim().to_owned()
}

fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('#') || t.starts_with("//")
}

/// The YAML documents of `text` as mapping entries (block style, the way manifests are written;
/// flow style and anchors are not followed). Comments are skipped.
fn yaml_docs(text: &str) -> Vec<Vec<Entry<'_>>> {
    let mut docs = vec![Vec::new()];
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with("---") {
            docs.push(Vec::new());
            stack.clear();
            continue;
        }
        if raw.trim().is_empty() || is_comment(raw) {
            continue;
        }
        let mut indent = raw.len() - raw.trim_start_matches(' ').len();
        let mut content = &raw[indent..];
        while let Some(rest) = content.strip_prefix("- ") {
            indent += 2;
            content = rest.trim_start_matches(' ');
            indent += rest.len() - content.len();
        }
        let Some((key, value)) = content
            .split_once(": ")
            .or_else(|| content.strip_suffix(':').map(|k| (k, "")))
        else {
            continue;
        };
        let key = key.trim().trim_matches('"').trim_matches('\'');
        while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        if let Some(doc) = docs.last_mut() {
            doc.push(Entry {
                line: i + 1,
                keys: stack.iter().map(|(_, k)| *k).collect(),
                value: scalar(value),
            });
        }
    }
    docs
}

fn doc_value<'a>(doc: &'a [Entry<'_>], keys: &[&str]) -> Option<&'a str> {
    doc.iter()
        .find(|e| e.keys == keys)
        .map(|e| e.value.as_str())
        .filter(|v| !v.is_empty())
}

/// The `SecretStore` / `ClusterSecretStore` definitions in one file.
pub(crate) fn stores_in(text: &str) -> Stores {
    let mut out = Stores::new();
    if !text.contains("SecretStore") {
        return out;
    }
    for doc in yaml_docs(text) {
        let Some(kind @ ("SecretStore" | "ClusterSecretStore")) = doc_value(&doc, &["kind"]) else {
            continue;
        };
        let Some(name) = doc_value(&doc, &["metadata", "name"]) else {
            continue;
        };
        let provider = doc
            .iter()
            .find(|e| e.keys.len() == 3 && e.keys[..2] == ["spec", "provider"])
            .map(|e| e.keys[2]);
        let provider = match provider {
            Some("vault") => Provider::Vault(
                doc_value(&doc, &["spec", "provider", "vault", "path"]).map(str::to_owned),
            ),
            Some("aws") => match doc_value(&doc, &["spec", "provider", "aws", "service"]) {
                Some("ParameterStore") => Provider::AwsParameterStore,
                _ => Provider::AwsSecretsManager,
            },
            _ => Provider::Other,
        };
        out.insert(format!("{kind}/{name}"), provider);
    }
    out
}

fn external_secrets(text: &str, stores: &Stores, out: &mut Vec<Found>) {
    if !text.contains("ExternalSecret") {
        return;
    }
    for doc in yaml_docs(text) {
        if !matches!(
            doc_value(&doc, &["kind"]),
            Some("ExternalSecret" | "ClusterExternalSecret")
        ) {
            continue;
        }
        let ref_name = doc
            .iter()
            .find(|e| e.ends_with(&["secretStoreRef", "name"]))
            .map(|e| e.value.clone());
        let ref_kind = doc
            .iter()
            .find(|e| e.ends_with(&["secretStoreRef", "kind"]))
            .map(|e| e.value.clone())
            .unwrap_or_else(|| "SecretStore".to_owned());
        let store_ref = ref_name.map(|n| format!("{ref_kind}/{n}"));
        let (store, mount) = match store_ref.as_ref().and_then(|r| stores.get(r)) {
            Some(Provider::Vault(mount)) => (Store::Vault, mount.clone()),
            Some(Provider::AwsParameterStore) => (Store::Ssm, None),
            // already the new store, or a store secretport did not migrate from
            Some(Provider::AwsSecretsManager | Provider::Other) => continue,
            None => (Store::Unknown, None),
        };
        for e in &doc {
            if (e.ends_with(&["remoteRef", "key"]) || e.ends_with(&["extract", "key"]))
                && !e.value.is_empty()
            {
                out.push(Found {
                    line: e.line,
                    syntax: Syntax::ExternalSecret,
                    written: e.value.clone(),
                    store,
                    mount: mount.clone(),
                    store_ref: store_ref.clone(),
                });
            }
        }
    }
}

static TEMPLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{\{-?\s*(?:with\s+|range\s+)?\(?\s*secret\s+\\?"([^"\\]+)"#).expect("regex")
});
static ANNOTATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"vault\.hashicorp\.com/agent-inject-secret-[^\s:"']+["']?\s*:\s*(?:"([^"]+)"|'([^']+)'|([^"'\s#,}]+))"#,
    )
    .expect("regex")
});
static CLI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;|&(`])(?:vault|bao)\s+(?:kv\s+(?:get|put|patch)|read)\s").expect("regex")
});
static RESOLVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{resolve:ssm(?:-secure)?:([^}]+)\}\}").expect("regex"));
static VALUE_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)["']?valueFrom["']?\s*[:=]\s*["']?([^"'\s,}]+)"#).expect("regex")
});

/// Flags of `vault kv get|put|patch` / `vault read` that take a value as the next word.
const VALUE_FLAGS: [&str; 8] = [
    "-mount",
    "-field",
    "-format",
    "-version",
    "-address",
    "-namespace",
    "-ns",
    "-output-policy",
];

/// The words of a shell command line up to its end (an unquoted `;`, `&`, `|`, `)` or a
/// backquote), quotes removed: enough to read a literal path, spaces and all.
fn shell_words(rest: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in rest.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.get_or_insert_with(String::new).push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.get_or_insert_with(String::new);
            }
            (None, ';' | '&' | '|' | ')' | '`') => break,
            (None, c) if c.is_whitespace() => words.extend(cur.take()),
            (None, c) => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    words
}

/// The path of a Vault CLI invocation's arguments (`rest`), joined to `-mount` when given.
/// `None` when the path is not a literal (a `$VARIABLE`).
fn cli_path(rest: &str) -> Option<String> {
    let words = shell_words(rest);
    let mut words = words.iter();
    let mut mount = None;
    while let Some(w) = words.next() {
        if let Some(flag) = w.strip_prefix('-') {
            let flag = format!("-{}", flag.trim_start_matches('-'));
            match flag.split_once('=') {
                Some(("-mount", m)) => mount = Some(m.to_owned()),
                Some(_) => {}
                None if VALUE_FLAGS.contains(&flag.as_str()) => {
                    let v = words.next();
                    if flag == "-mount" {
                        mount = v.cloned();
                    }
                }
                None => {}
            }
            continue;
        }
        if w.is_empty() || w.contains('$') {
            return None;
        }
        return Some(match mount {
            Some(m) => format!("{}/{}", m.trim_matches('/'), w.trim_start_matches('/')),
            None => w.clone(),
        });
    }
    None
}

/// An SSM parameter name from an ARN (`arn:aws:ssm:…:parameter/a/b` → `/a/b`) or a name.
/// `None` for anything else (a Secrets Manager ARN: already cut over).
fn ssm_name(s: &str) -> Option<String> {
    if let Some(rest) = s.strip_prefix("arn:") {
        let (_, name) = rest.split_once(":parameter")?;
        if rest.split(':').nth(1).is_none_or(|svc| svc != "ssm") {
            return None;
        }
        return Some(format!("/{}", name.trim_start_matches('/')));
    }
    // a plain parameter name: SSM's own charset (anything else, e.g. a Kubernetes
    // `valueFrom: {secretKeyRef: …}`, is not one)
    let name_chars = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    (!s.is_empty() && s.chars().all(name_chars)).then(|| s.to_owned())
}

fn line_scanners(text: &str, out: &mut Vec<Found>) {
    for (i, line) in text.lines().enumerate() {
        if is_comment(line) {
            continue;
        }
        let mut push = |syntax, written: String, store| {
            out.push(Found {
                line: i + 1,
                syntax,
                written,
                store,
                mount: None,
                store_ref: None,
            })
        };
        for c in TEMPLATE.captures_iter(line) {
            let path = c[1].split('?').next().unwrap_or("").to_owned();
            push(Syntax::VaultTemplate, path, Store::Vault);
        }
        for c in ANNOTATION.captures_iter(line) {
            if let Some(v) = c.get(1).or(c.get(2)).or(c.get(3)) {
                push(Syntax::VaultAnnotation, v.as_str().to_owned(), Store::Vault);
            }
        }
        for m in CLI.find_iter(line) {
            if let Some(p) = cli_path(&line[m.end()..]) {
                push(Syntax::VaultCli, p, Store::Vault);
            }
        }
        for c in RESOLVE.captures_iter(line) {
            let body = &c[1];
            // NAME:VERSION (a parameter name has no ':', an ARN has several)
            let name = match body.rsplit_once(':') {
                Some((head, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => head,
                _ => body,
            };
            if let Some(n) = ssm_name(name) {
                push(Syntax::CloudFormation, n, Store::Ssm);
            }
        }
        for c in VALUE_FROM.captures_iter(line) {
            if let Some(n) = ssm_name(&c[1]) {
                push(Syntax::ValueFrom, n, Store::Ssm);
            }
        }
    }
}

/// Every reference in one file's text, in line order. `stores`: the ESO stores the tree
/// defines.
pub(crate) fn scan_text(text: &str, stores: &Stores) -> Vec<Found> {
    let mut out = Vec::new();
    external_secrets(text, stores, &mut out);
    line_scanners(text, &mut out);
    out.sort_by_key(|f| f.line);
    out
}

/// A file's text, or why it is not scanned.
pub(crate) enum FileText {
    /// UTF-8 text (invalid sequences replaced).
    Text(String),
    /// Holds a NUL byte in its first 8 KiB: binary.
    Binary,
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge,
}

/// Files larger than this are skipped (and counted): manifests and scripts are far smaller.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Classifies a file's bytes.
pub(crate) fn file_text(bytes: Vec<u8>) -> FileText {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return FileText::TooLarge;
    }
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return FileText::Binary;
    }
    match String::from_utf8(bytes) {
        Ok(s) => FileText::Text(s),
        Err(e) => FileText::Text(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The files under `dirs` to scan, sorted: `.gitignore` / `.ignore` / git excludes honoured
/// (also outside a git checkout), hidden files included (CI workflows live in `.github/`),
/// `.git/` itself left out. Walk errors (an unreadable folder) are returned, not dropped.
pub fn walk(dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let Some((first, rest)) = dirs.split_first() else {
        return (files, errors);
    };
    let mut b = ignore::WalkBuilder::new(first);
    for d in rest {
        b.add(d);
    }
    b.hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    for entry in b.build() {
        match entry {
            Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => files.push(e.into_path()),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    files.sort();
    files.dedup();
    (files, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(usize, Syntax, String, Store)> {
        scan_text(text, &Stores::new())
            .into_iter()
            .map(|f| (f.line, f.syntax, f.written, f.store))
            .collect()
    }

    #[test]
    fn vault_templates_every_spelling() {
        let table: [(&str, &[&str]); 9] = [
            (
                r#"{{ with secret "secret/data/apps/db" }}{{ .Data.data.password }}{{ end }}"#,
                &["secret/data/apps/db"],
            ),
            (
                r#"{{- with secret "secret/data/apps/db" -}}"#,
                &["secret/data/apps/db"],
            ),
            (r#"{{ secret "kv/apps/x" }}"#, &["kv/apps/x"]),
            (r#"{{ (secret "kv/apps/x").Data.k }}"#, &["kv/apps/x"]),
            (r#"{{ range secret "kv/apps/y" }}"#, &["kv/apps/y"]),
            (
                r#"contents = "{{ with secret \"secret/data/apps/db\" }}{{ end }}""#,
                &["secret/data/apps/db"],
            ),
            (
                r#"{{ with secret "secret/data/apps/db?version=2" }}"#,
                &["secret/data/apps/db"],
            ),
            (r#"# {{ with secret "secret/data/apps/db" }}"#, &[]),
            (r#"secret "not/a/template""#, &[]),
        ];
        for (line, want) in table {
            let got: Vec<String> = found(line).into_iter().map(|f| f.2).collect();
            assert_eq!(got, want.to_vec(), "{line}");
        }
    }

    #[test]
    fn vault_cli_every_spelling() {
        let table: [(&str, &[&str]); 15] = [
            ("vault kv get secret/apps/db", &["secret/apps/db"]),
            (
                "vault kv get 'secret/apps/db replica 2'",
                &["secret/apps/db replica 2"],
            ),
            (
                "vault kv get secret/a && vault read secret/data/b",
                &["secret/a", "secret/data/b"],
            ),
            ("vault kv get -mount=secret \"${APP}/db\"", &[]),
            (
                "vault kv get -field=password secret/apps/db",
                &["secret/apps/db"],
            ),
            (
                "vault kv get -field password -format json secret/apps/db",
                &["secret/apps/db"],
            ),
            ("vault kv get -mount=secret apps/db", &["secret/apps/db"]),
            ("vault kv get -mount secret apps/db", &["secret/apps/db"]),
            (
                "vault kv put secret/apps/db password=x",
                &["secret/apps/db"],
            ),
            (
                "PW=$(vault kv get -field=pw \"secret/apps/db\")",
                &["secret/apps/db"],
            ),
            (
                "vault read -format=json secret/data/apps/db",
                &["secret/data/apps/db"],
            ),
            ("  bao kv get secret/apps/db; echo", &["secret/apps/db"]),
            ("# vault kv get secret/apps/db", &[]),
            ("vault kv get \"$SECRET_PATH\"", &[]),
            ("myvault kv get secret/apps/db", &[]),
        ];
        for (line, want) in table {
            let got: Vec<String> = found(line).into_iter().map(|f| f.2).collect();
            assert_eq!(got, want.to_vec(), "{line}");
        }
    }

    type Want<'a> = Option<(Syntax, &'a str, Store)>;

    #[test]
    fn annotations_resolve_and_value_from() {
        let table: [(&str, Want<'_>); 13] = [
            (
                "    vault.hashicorp.com/agent-inject-secret-r2: 'secret/data/apps/db replica 2'",
                Some((
                    Syntax::VaultAnnotation,
                    "secret/data/apps/db replica 2",
                    Store::Vault,
                )),
            ),
            (
                r#"    vault.hashicorp.com/agent-inject-secret-db: "secret/data/apps/db""#,
                Some((Syntax::VaultAnnotation, "secret/data/apps/db", Store::Vault)),
            ),
            (
                r#"  "vault.hashicorp.com/agent-inject-secret-config.txt": "kv/apps/x","#,
                Some((Syntax::VaultAnnotation, "kv/apps/x", Store::Vault)),
            ),
            (r#"    vault.hashicorp.com/agent-inject: "true""#, None),
            (
                "Password: '{{resolve:ssm-secure:/prod/db/password:3}}'",
                Some((Syntax::CloudFormation, "/prod/db/password", Store::Ssm)),
            ),
            (
                "Password: '{{resolve:ssm-secure:prod.db.password}}'",
                Some((Syntax::CloudFormation, "prod.db.password", Store::Ssm)),
            ),
            (
                r#"{"name": "PW", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password"}"#,
                Some((Syntax::ValueFrom, "/prod/db/password", Store::Ssm)),
            ),
            (
                "  ValueFrom: /prod/db/password",
                Some((Syntax::ValueFrom, "/prod/db/password", Store::Ssm)),
            ),
            (
                r#""valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:devops/db-AbCdEf:password::""#,
                None,
            ),
            (
                "# Password: '{{resolve:ssm-secure:/prod/db/password}}'",
                None,
            ),
            ("// \"valueFrom\": \"/prod/db/password\"", None),
            (
                "        valueFrom: {secretKeyRef: {name: db, key: pw}}",
                None,
            ),
            ("        valueFrom:", None),
        ];
        for (line, want) in table {
            let got: Vec<(Syntax, String, Store)> =
                found(line).into_iter().map(|f| (f.1, f.2, f.3)).collect();
            let want: Vec<(Syntax, String, Store)> = want
                .into_iter()
                .map(|(a, b, c)| (a, b.to_owned(), c))
                .collect();
            assert_eq!(got, want, "{line}");
        }
    }

    const ESO: &str = "\
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: vault-backend
spec:
  provider:
    vault:
      server: http://vault:8200
      path: secret
      version: v2
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
spec:
  secretStoreRef:
    name: vault-backend
    kind: SecretStore
  data:
    - secretKey: password
      remoteRef:
        key: apps/db   # the Vault path
        property: password
    # - secretKey: old
    #   remoteRef:
    #     key: apps/old
  dataFrom:
  - extract:
      key: \"apps/other\"
---
kind: ClusterExternalSecret
spec:
  externalSecretSpec:
    secretStoreRef:
      name: unknown
      kind: ClusterSecretStore
    data:
    - secretKey: k
      remoteRef: {key: flow/style/not/followed}
    - secretKey: k2
      remoteRef:
        key: /prod/db/password
---
kind: ExternalSecret
spec:
  secretStoreRef:
    name: aws
  data:
  - secretKey: k
    remoteRef:
      key: devops/apps/db
---
kind: SecretStore
metadata:
  name: aws
spec:
  provider:
    aws:
      service: SecretsManager
";

    #[test]
    fn external_secrets_with_their_store() {
        let mut stores = stores_in(ESO);
        assert_eq!(
            stores.get("SecretStore/vault-backend"),
            Some(&Provider::Vault(Some("secret".into())))
        );
        assert_eq!(
            stores.get("SecretStore/aws"),
            Some(&Provider::AwsSecretsManager)
        );
        stores.insert("ClusterSecretStore/other".into(), Provider::Other);
        type Got = (usize, String, Store, Option<String>, Option<String>);
        let got: Vec<Got> = scan_text(ESO, &stores)
            .into_iter()
            .map(|f| (f.line, f.written, f.store, f.mount, f.store_ref))
            .collect();
        let vault = |l, k: &str| {
            (
                l,
                k.to_owned(),
                Store::Vault,
                Some("secret".to_owned()),
                Some("SecretStore/vault-backend".to_owned()),
            )
        };
        assert_eq!(
            got,
            vec![
                vault(23, "apps/db"),
                vault(30, "apps/other"),
                (
                    43,
                    "/prod/db/password".into(),
                    Store::Unknown,
                    None,
                    Some("ClusterSecretStore/unknown".into())
                ),
            ]
        );
    }

    #[test]
    fn binary_and_large_files_are_not_text() {
        assert!(matches!(
            file_text(b"vault kv get secret/a\0".to_vec()),
            FileText::Binary
        ));
        assert!(matches!(
            file_text(b"vault kv get secret/a\n".to_vec()),
            FileText::Text(_)
        ));
        assert!(matches!(
            file_text(vec![b'a'; MAX_FILE_BYTES as usize + 1]),
            FileText::TooLarge
        ));
        match file_text(b"vault kv get secret/a \xff\n".to_vec()) {
            FileText::Text(t) => assert!(t.starts_with("vault kv get secret/a")),
            _ => panic!("lossy text"),
        }
    }
}
