//! Reading SOPS files (YAML, JSON, dotenv) into one ordered tree plus their `sops` metadata,
//! as SOPS's own stores do (`stores/yaml`, `stores/json`, `stores/dotenv`, `stores/flatten.go`
//! in getsops/sops v3.11).
//!
//! Key order matters twice: the MAC is a hash over the values in document order, and the
//! migrated JSON keeps the file's order. So every format is read into [`Node::Map`], a vector of
//! pairs: YAML with `yaml-rust2` (a maintained YAML 1.2 parser whose mappings keep insertion
//! order and whose floats keep their source text; `serde_yaml` is unmaintained and its
//! successors either re-order through serde maps or are not maintained), JSON with
//! `serde_json`'s `preserve_order`. YAML comments are not read: SOPS keeps them in the tree but
//! leaves them out of the MAC, and they are not part of the migrated value.

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// A value of a SOPS document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A mapping, in file order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    List(Vec<Node>),
    /// A string (every encrypted value is one: `ENC[AES256_GCM,...]`).
    Str(String),
    /// An integer.
    Int(i64),
    /// A float, as written.
    Float(String),
    /// A boolean.
    Bool(bool),
    /// Null: SOPS neither encrypts nor hashes it.
    Null,
}

/// The file formats SOPS stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `.yaml` / `.yml` (and anything else that is neither JSON nor dotenv).
    Yaml,
    /// `.json`.
    Json,
    /// `.env`.
    Dotenv,
    /// `.ini`: not read (SOPS's INI store flattens sections; no one migrates those yet).
    Ini,
}

impl Format {
    /// The format of a file, from its extension, else from its first non-blank byte.
    pub(crate) fn detect(path: &std::path::Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            Some("ini") => Format::Ini,
            _ if text.trim_start().starts_with('{') => Format::Json,
            _ if text.lines().any(|l| l.starts_with("sops_mac=")) => Format::Dotenv,
            _ => Format::Yaml,
        }
    }
}

/// A KMS recipient of the data key (`sops.kms[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KmsKey {
    /// Key ARN (its region is where KMS is asked).
    pub(crate) arn: String,
    /// Role to assume first, if any.
    pub(crate) role: Option<String>,
    /// Encryption context.
    pub(crate) context: std::collections::BTreeMap<String, String>,
    /// The encrypted data key (KMS `CiphertextBlob`).
    pub(crate) enc: Vec<u8>,
}

/// The `sops` metadata secretport needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Meta {
    /// KMS recipients, in file order.
    pub(crate) kms: Vec<KmsKey>,
    /// Other recipient kinds present (`age`, `pgp`, ...), for messages.
    pub(crate) others: Vec<String>,
    /// `lastmodified`, as written: the MAC's additional data.
    pub(crate) lastmodified: String,
    /// `mac`, still encrypted.
    pub(crate) mac: String,
    /// Which values are encrypted.
    pub(crate) unencrypted_suffix: Option<String>,
    /// Which values are encrypted.
    pub(crate) encrypted_suffix: Option<String>,
    /// Which values are encrypted.
    pub(crate) unencrypted_regex: Option<String>,
    /// Which values are encrypted.
    pub(crate) encrypted_regex: Option<String>,
    /// The MAC covers only encrypted values.
    pub(crate) mac_only_encrypted: bool,
}

/// A parsed SOPS file: the document without its `sops` key, and the metadata.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// The document's top level.
    pub(crate) tree: Vec<(String, Node)>,
    /// Its metadata.
    pub(crate) meta: Meta,
}

/// Parses a SOPS file. Errors say what is wrong, never quote a value.
pub(crate) fn parse(format: Format, text: &str) -> Result<Document, String> {
    let mut tree = match format {
        Format::Yaml => yaml_top(text)?,
        Format::Json => json_top(text)?,
        Format::Dotenv => return dotenv(text),
        Format::Ini => {
            return Err("SOPS INI files are not supported (YAML, JSON and dotenv are)".into())
        }
    };
    let pos = tree
        .iter()
        .position(|(k, _)| k == "sops")
        .ok_or_else(|| "no sops metadata: not a SOPS-encrypted file".to_owned())?;
    let (_, meta) = tree.remove(pos);
    Ok(Document {
        tree,
        meta: meta_of(&meta)?,
    })
}

fn yaml_top(text: &str) -> Result<Vec<(String, Node)>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    match docs.as_slice() {
        [Yaml::Hash(_)] => match yaml_node(&docs[0])? {
            Node::Map(m) => Ok(m),
            _ => Err("the YAML document is not a mapping".into()),
        },
        [_] => Err("the YAML document is not a mapping".into()),
        [] => Err("empty YAML file".into()),
        _ => Err(format!(
            "{} YAML documents in one file; secretport reads single-document SOPS files",
            docs.len()
        )),
    }
}

fn yaml_node(y: &Yaml) -> Result<Node, String> {
    Ok(match y {
        Yaml::Hash(h) => {
            let mut m = Vec::with_capacity(h.len());
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    _ => {
                        return Err(
                            "a YAML key is not a string; SOPS supports string keys only".into()
                        )
                    }
                };
                m.push((key, yaml_node(v)?));
            }
            Node::Map(m)
        }
        Yaml::Array(a) => Node::List(a.iter().map(yaml_node).collect::<Result<_, _>>()?),
        Yaml::String(s) => Node::Str(s.clone()),
        Yaml::Integer(i) => Node::Int(*i),
        Yaml::Real(r) => Node::Float(r.clone()),
        Yaml::Boolean(b) => Node::Bool(*b),
        Yaml::Null => Node::Null,
        Yaml::Alias(_) => return Err("YAML aliases are not supported".into()),
        Yaml::BadValue => return Err("unreadable YAML value".into()),
    })
}

fn json_top(text: &str) -> Result<Vec<(String, Node)>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    match json_node(&v) {
        Node::Map(m) => Ok(m),
        _ => Err("the JSON document is not an object".into()),
    }
}

/// JSON as SOPS's JSON store reads it: numbers are float64 (so `1` is the float `1`).
fn json_node(v: &Value) -> Node {
    match v {
        Value::Object(o) => Node::Map(o.iter().map(|(k, v)| (k.clone(), json_node(v))).collect()),
        Value::Array(a) => Node::List(a.iter().map(json_node).collect()),
        Value::String(s) => Node::Str(s.clone()),
        Value::Number(n) => Node::Float(n.to_string()),
        Value::Bool(b) => Node::Bool(*b),
        Value::Null => Node::Null,
    }
}

/// dotenv as SOPS writes it: `KEY=value` lines (`\n` escaped), `#` comments, metadata as
/// flattened `sops_...` keys (`sops_kms__list_0__map_arn=...`).
fn dotenv(text: &str) -> Result<Document, String> {
    let mut tree = Vec::new();
    let mut meta = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not a KEY=value line", i + 1))?;
        let v = v.replace("\\n", "\n");
        match k.strip_prefix("sops_") {
            Some(mk) => meta.push((mk.to_owned(), v)),
            None => tree.push((k.to_owned(), Node::Str(v))),
        }
    }
    if meta.is_empty() {
        return Err("no sops_ metadata: not a SOPS-encrypted dotenv file".into());
    }
    let mut root = Node::Map(Vec::new());
    for (k, v) in meta {
        unflatten(&mut root, &k, v)?;
    }
    Ok(Document {
        tree,
        meta: meta_of(&root)?,
    })
}

enum Token {
    Key(String),
    Index(usize),
}

/// `kms__list_0__map_arn` -> [kms, 0, arn] (`stores/flatten.go`).
fn tokens(path: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut rest = path;
    let mut first = true;
    loop {
        let next_map = rest.find("__map_");
        let next_list = rest.find("__list_");
        let cut = match (next_map, next_list) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (head, tail) = match cut {
            Some(c) => (&rest[..c], &rest[c..]),
            None => (rest, ""),
        };
        if first {
            out.push(Token::Key(head.to_owned()));
            first = false;
        }
        if tail.is_empty() {
            return Ok(out);
        }
        if let Some(t) = tail.strip_prefix("__map_") {
            let end = [t.find("__map_"), t.find("__list_")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(t.len());
            out.push(Token::Key(t[..end].to_owned()));
            rest = &t[end..];
        } else if let Some(t) = tail.strip_prefix("__list_") {
            let end = [t.find("__map_"), t.find("__list_")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(t.len());
            let n = t[..end]
                .parse()
                .map_err(|_| format!("metadata key sops_{path}: bad list index"))?;
            if n > 1000 {
                return Err(format!("metadata key sops_{path}: list index too large"));
            }
            out.push(Token::Index(n));
            rest = &t[end..];
        }
    }
}

fn unflatten(root: &mut Node, path: &str, value: String) -> Result<(), String> {
    let toks = tokens(path)?;
    let mut cur = root;
    for t in &toks {
        if matches!(cur, Node::Null) {
            *cur = match t {
                Token::Key(_) => Node::Map(Vec::new()),
                Token::Index(_) => Node::List(Vec::new()),
            };
        }
        cur = match (t, cur) {
            (Token::Key(k), Node::Map(m)) => {
                let pos = match m.iter().position(|(mk, _)| mk == k) {
                    Some(p) => p,
                    None => {
                        m.push((k.clone(), Node::Null));
                        m.len() - 1
                    }
                };
                &mut m[pos].1
            }
            (Token::Index(i), Node::List(l)) => {
                while l.len() <= *i {
                    l.push(Node::Null);
                }
                &mut l[*i]
            }
            _ => return Err(format!("metadata key sops_{path} does not fit the others")),
        };
    }
    *cur = Node::Str(value);
    Ok(())
}

fn get<'a>(m: &'a [(String, Node)], k: &str) -> Option<&'a Node> {
    m.iter().find(|(mk, _)| mk == k).map(|(_, v)| v)
}

fn string(n: Option<&Node>) -> Option<String> {
    match n {
        Some(Node::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A list of maps: a YAML/JSON list, or (dotenv) a map keyed by list index.
fn entries(n: Option<&Node>) -> Vec<&[(String, Node)]> {
    match n {
        Some(Node::List(l)) => l
            .iter()
            .filter_map(|e| match e {
                Node::Map(m) => Some(m.as_slice()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn kms_keys(group: &[(String, Node)]) -> Result<Vec<KmsKey>, String> {
    let mut out = Vec::new();
    for k in entries(get(group, "kms")) {
        let arn = string(get(k, "arn")).ok_or("a sops.kms entry has no arn")?;
        let enc =
            string(get(k, "enc")).ok_or_else(|| format!("sops.kms entry {arn} has no enc"))?;
        use base64::Engine;
        let enc = base64::engine::general_purpose::STANDARD
            .decode(enc.trim())
            .map_err(|e| format!("sops.kms entry {arn}: enc is not base64: {e}"))?;
        let mut context = std::collections::BTreeMap::new();
        if let Some(Node::Map(c)) = get(k, "context") {
            for (ck, cv) in c {
                match cv {
                    Node::Str(s) => {
                        context.insert(ck.clone(), s.clone());
                    }
                    Node::Null => {}
                    _ => {
                        return Err(format!(
                            "sops.kms entry {arn}: context {ck} is not a string"
                        ))
                    }
                }
            }
        }
        out.push(KmsKey {
            arn,
            role: string(get(k, "role")),
            context,
            enc,
        });
    }
    Ok(out)
}

const OTHER_KINDS: [(&str, &str); 5] = [
    ("age", "age"),
    ("pgp", "PGP"),
    ("gcp_kms", "GCP KMS"),
    ("azure_kv", "Azure Key Vault"),
    ("hc_vault", "HashiCorp Vault transit"),
];

fn others(group: &[(String, Node)], into: &mut Vec<String>) {
    for (key, label) in OTHER_KINDS {
        let n = entries(get(group, key)).len();
        if n > 0 {
            into.push(format!("{label} ({n})"));
        }
    }
}

fn meta_of(n: &Node) -> Result<Meta, String> {
    let Node::Map(m) = n else {
        return Err("the sops metadata is not a mapping".into());
    };
    let mut meta = Meta {
        lastmodified: string(get(m, "lastmodified")).ok_or("sops.lastmodified is missing")?,
        mac: string(get(m, "mac")).ok_or("sops.mac is missing")?,
        unencrypted_suffix: string(get(m, "unencrypted_suffix")),
        encrypted_suffix: string(get(m, "encrypted_suffix")),
        unencrypted_regex: string(get(m, "unencrypted_regex")),
        encrypted_regex: string(get(m, "encrypted_regex")),
        mac_only_encrypted: matches!(get(m, "mac_only_encrypted"), Some(Node::Bool(true)))
            || matches!(get(m, "mac_only_encrypted"), Some(Node::Str(s)) if s == "true"),
        ..Meta::default()
    };
    for k in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
        if string(get(m, k)).is_some() {
            return Err(format!(
                "sops.{k} is set; secretport does not read comments and cannot tell which values \
                 it encrypts"
            ));
        }
    }
    let groups = entries(get(m, "key_groups"));
    match groups.len() {
        0 => {
            meta.kms = kms_keys(m)?;
            others(m, &mut meta.others);
        }
        1 => {
            meta.kms = kms_keys(groups[0])?;
            others(groups[0], &mut meta.others);
        }
        n => {
            return Err(format!(
                "{n} key groups (Shamir secret sharing); secretport reads files whose data key \
                 is wrapped whole by AWS KMS"
            ))
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_metadata_unflattens() {
        let text = "A=ENC[x]\n#comment\nB=a\\nb\nsops_kms__list_0__map_arn=arn:aws:kms:eu-west-1:1:key/k\n\
                    sops_kms__list_0__map_enc=AAEC\nsops_kms__list_0__map_context__map_app=demo\n\
                    sops_kms__list_1__map_arn=arn:aws:kms:us-east-1:1:key/j\nsops_kms__list_1__map_enc=AQ==\n\
                    sops_lastmodified=2026-01-01T00:00:00Z\nsops_mac=ENC[m]\nsops_mac_only_encrypted=true\n";
        let d = parse(Format::Dotenv, text).unwrap();
        assert_eq!(
            d.tree,
            vec![
                ("A".into(), Node::Str("ENC[x]".into())),
                ("B".into(), Node::Str("a\nb".into()))
            ]
        );
        assert_eq!(d.meta.kms.len(), 2, "{:?}", d.meta);
        assert_eq!(d.meta.kms[0].context["app"], "demo");
        assert_eq!(d.meta.kms[0].enc, vec![0, 1, 2]);
        assert_eq!(d.meta.kms[1].arn, "arn:aws:kms:us-east-1:1:key/j");
        assert!(d.meta.mac_only_encrypted);
        assert_eq!(d.meta.mac, "ENC[m]");
    }

    #[test]
    fn yaml_keeps_order_and_types() {
        let d = parse(
            Format::Yaml,
            "z: 1\na: [x, 2.50, true, null]\nsops:\n  kms:\n    - arn: arn:aws:kms:us-east-1:1:key/k\n      enc: AAEC\n      context: {app: demo}\n  age:\n    - recipient: age1x\n      enc: x\n  lastmodified: \"2026-01-01T00:00:00Z\"\n  mac: ENC[m]\n",
        )
        .unwrap();
        assert_eq!(d.tree[0], ("z".into(), Node::Int(1)));
        assert_eq!(
            d.tree[1].1,
            Node::List(vec![
                Node::Str("x".into()),
                Node::Float("2.50".into()),
                Node::Bool(true),
                Node::Null
            ])
        );
        assert_eq!(d.meta.kms[0].context["app"], "demo");
        assert_eq!(d.meta.kms[0].enc, vec![0, 1, 2]);
        assert_eq!(d.meta.others, vec!["age (1)".to_owned()]);
        assert!(parse(Format::Yaml, "a: 1\n")
            .unwrap_err()
            .contains("no sops metadata"));
    }
}
