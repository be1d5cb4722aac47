//! `[source] split = "keys"`: one target secret per top-level key of a source secret's JSON
//! object, for the sources whose values are JSON objects (`vault`, `file`, `kms`; `sops` splits
//! its files itself, from the plaintext keys).
//!
//! [`KeySplit`] wraps the configured source. The key-secret of key `password` in `apps/db` has
//! the source path `apps/db/password`, so naming, collisions, identity, tokens and the ownership
//! proof treat it as any other secret of the job, and a key removed from the source is an
//! orphan of the job like a removed secret.
//!
//! # Why the listing reads every value
//!
//! Orphans are what the job owns and the listing does not hold. Listing only the parent paths
//! and expanding their keys at fetch time would leave the plan without the keys, so a removed
//! key would never be found (or, worse, every key-secret would look like an orphan). So the
//! listing reads each secret once (concurrently, `[limits] concurrency` at a time), keeps only
//! its key names, and drops the value; `fetch` reads the parent again and returns one key. The
//! cost is one extra read per source secret in every `plan`, `migrate` and `reconcile` (and,
//! for `kms`, one `kms:Decrypt` per direct record and listing). A secret none of whose keys
//! the job's `include`/`exclude` could take ([`PathFilter::may_admit_child`]) is not read.
//!
//! # Values
//!
//! A key's value is the member's value as it is in the parent's value text: a JSON string
//! becomes its content (byte-exact, escapes decoded); any other JSON (number, object, array,
//! `true`, `false`, `null`) stays its JSON text exactly as it appears (`1.50` stays `1.50`).
//! Nothing is dropped silently: a value that is not a JSON object (a string, binary) is refused
//! as a listing problem naming the path, as are a key that appears twice (which value is meant
//! cannot be told), an empty key and a key holding `/` (it would not be one path segment); the
//! listing is then incomplete, so nothing is pruned. An empty object has no keys and so no
//! key-secret.

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::{
    Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceKind, SourceRef,
};
use crate::filter::PathFilter;
use crate::identity::Scope;
use crate::secret::SecretValue;

/// An object's members in order, duplicates kept (so they can be refused); values as their
/// exact JSON text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// What one value's keys are.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Keys that become secrets, in the object's order.
    pub(crate) keys: Vec<String>,
    /// Keys refused, with the reason.
    pub(crate) refused: Vec<(String, String)>,
}

/// Why a value cannot be split at all.
fn not_an_object(text: &str) -> String {
    let what = match text.trim_start().as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a JSON string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "plain text",
    };
    format!("split = \"keys\" needs a JSON object value; this value is {what}")
}

/// A JSON error by its position only: `serde_json`'s own message could quote the text.
fn at(what: &str, e: &serde_json::Error) -> String {
    format!("{what} (line {}, column {})", e.line(), e.column())
}

fn members(text: &str) -> Result<Vec<(String, &RawValue)>, String> {
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object(text));
    }
    serde_json::from_str::<Members<'_>>(text)
        .map(|m| m.0)
        .map_err(|e| at("the value is not valid JSON", &e))
}

/// The keys of a value's JSON object: pure, table-tested. `Err` when the value is not a JSON
/// object at all.
pub(crate) fn object_keys(text: &str) -> Result<Keys, String> {
    let members = members(text)?;
    let mut out = Keys::default();
    for (i, (k, _)) in members.iter().enumerate() {
        let twice = members.iter().filter(|(o, _)| o == k).count() > 1;
        let first = members.iter().position(|(o, _)| o == k) == Some(i);
        if twice {
            if first {
                out.refused
                    .push((k.clone(), "the key appears more than once".into()));
            }
        } else if k.is_empty() {
            out.refused
                .push((k.clone(), "an empty key cannot be a path segment".into()));
        } else if k.contains('/') {
            out.refused.push((
                k.clone(),
                "a key holding \"/\" cannot be one path segment".into(),
            ));
        } else {
            out.keys.push(k.clone());
        }
    }
    Ok(out)
}

/// The value of `key` in a value's JSON object: a JSON string's content, any other JSON as its
/// exact text. `Ok(None)` when the key is not there; `Err` when it appears twice or the value is
/// not an object.
pub(crate) fn key_value(text: &str, key: &str) -> Result<Option<Zeroizing<String>>, String> {
    let members = members(text)?;
    let mut found = members.iter().filter(|(k, _)| k == key).map(|(_, v)| *v);
    let Some(raw) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(format!("key {key:?} appears more than once"));
    }
    let raw = raw.get();
    if raw.starts_with('"') {
        let s: String = serde_json::from_str(raw)
            .map_err(|e| at(&format!("key {key:?}: not a JSON string"), &e))?;
        Ok(Some(Zeroizing::new(s)))
    } else {
        Ok(Some(Zeroizing::new(raw.to_owned())))
    }
}

/// The parent secret's path and the key of a key-secret's path.
fn parent_of(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// A source whose secrets are split into one secret per top-level key.
pub(crate) struct KeySplit {
    inner: Box<dyn Source>,
    /// The job's `include`/`exclude`: a secret none of whose keys it could take is not read.
    filter: PathFilter,
    /// Reads in flight while listing.
    concurrency: usize,
}

impl KeySplit {
    /// Wraps `inner`; the listing reads `concurrency` values at a time.
    pub(crate) fn new(inner: Box<dyn Source>, filter: PathFilter, concurrency: usize) -> Self {
        KeySplit {
            inner,
            filter,
            concurrency: concurrency.max(1),
        }
    }

    /// The key-secrets of one parent, or the problems that stop them.
    async fn expand(
        &self,
        r: SourceRef,
    ) -> Result<(Vec<SourceRef>, Vec<ListProblem>), SourceError> {
        let problem = |error: String| ListProblem {
            path: r.path.clone(),
            line: r.line,
            error,
        };
        let value = match self.inner.fetch(&r).await {
            Ok(Fetched::Value { value, .. }) => value,
            // gone from the source: no keys, so its key-secrets are orphans
            Ok(Fetched::Gone { .. }) => return Ok((Vec::new(), Vec::new())),
            Err(e) if e.kind == SourceErrorKind::Auth => return Err(e),
            Err(e) => {
                return Ok((
                    Vec::new(),
                    vec![problem(format!("cannot read the keys: {}", e.message))],
                ))
            }
        };
        let text = match value.expose_str() {
            Some(t) if !value.is_binary() => t,
            _ => {
                return Ok((
                    Vec::new(),
                    vec![problem(
                        "split = \"keys\" needs a JSON object value; this value is binary".into(),
                    )],
                ))
            }
        };
        let keys = match object_keys(text) {
            Ok(k) => k,
            Err(e) => return Ok((Vec::new(), vec![problem(e)])),
        };
        let join = |k: &str| match r.path.is_empty() {
            true => k.to_owned(),
            false => format!("{}/{k}", r.path),
        };
        let refs = keys
            .keys
            .iter()
            .map(|k| SourceRef {
                path: join(k),
                version: r.version.clone(),
                line: r.line,
            })
            .collect();
        let problems = keys
            .refused
            .into_iter()
            .map(|(k, why)| problem(format!("key {k:?} is not migrated: {why}")))
            .collect();
        Ok((refs, problems))
    }

    async fn split_listing(&self, listing: Listing) -> Result<Listing, SourceError> {
        let mut problems = listing.problems;
        let mut refs = Vec::new();
        // a secret of which the filter can take no key is never read (nor are its keys
        // listed: the filter would drop them, and orphans are only asked about admitted paths)
        let wanted = listing
            .refs
            .into_iter()
            .filter(|r| self.filter.may_admit_child(&r.path));
        let mut parts = futures::stream::iter(wanted)
            .map(|r| self.expand(r))
            .buffered(self.concurrency)
            .into_stream();
        while let Some((r, p)) = parts.try_next().await? {
            refs.extend(r);
            problems.extend(p);
        }
        refs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Listing { refs, problems })
    }

    async fn fetch_key(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let (parent, key) = parent_of(&r.path);
        let pr = SourceRef {
            path: parent.to_owned(),
            version: r.version.clone(),
            line: r.line,
        };
        let bad = |m: String| SourceError::new(SourceErrorKind::BadRecord, &r.path, m);
        match self.inner.fetch(&pr).await {
            Err(mut e) => {
                e.path = r.path.clone();
                Err(e)
            }
            Ok(Fetched::Gone { reason, version }) => Ok(Fetched::Gone { reason, version }),
            Ok(Fetched::Value {
                value,
                version,
                metadata,
            }) => {
                let text = value
                    .expose_str()
                    .filter(|_| !value.is_binary())
                    .ok_or_else(|| bad(not_an_object("")))?;
                match key_value(text, key).map_err(bad)? {
                    Some(mut v) => Ok(Fetched::Value {
                        value: SecretValue::text(std::mem::take(&mut *v)),
                        version,
                        metadata,
                    }),
                    None => Ok(Fetched::Gone {
                        reason: format!("key {key:?} is no longer in {parent}"),
                        version,
                    }),
                }
            }
        }
    }
}

impl Source for KeySplit {
    fn kind(&self) -> SourceKind {
        self.inner.kind()
    }

    fn scope(&self) -> Scope {
        self.inner.scope()
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn empty_advice(&self) -> String {
        format!(
            "{} (split = \"keys\": a secret whose JSON object is empty makes no secret)",
            self.inner.empty_advice()
        )
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move {
            let listing = self.inner.list().await?;
            self.split_listing(listing).await
        })
    }

    fn list_names(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        // the names are the keys: they need the values
        self.list()
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.fetch_key(r))
    }

    fn expiry(&self) -> Option<super::expiry::Expiry> {
        self.inner.expiry()
    }
}

/// Wraps a job's source when `[source] split = "keys"` asks for it (SOPS splits its files
/// itself).
pub(crate) fn wrap(
    job: &crate::config::JobConfig,
    concurrency: usize,
    inner: Box<dyn Source>,
) -> Box<dyn Source> {
    match job.split {
        crate::config::Split::Keys if inner.kind() != SourceKind::Sops => {
            Box::new(KeySplit::new(inner, job.filter.clone(), concurrency))
        }
        _ => inner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Keys {
        Keys {
            keys: k.iter().map(|s| s.to_string()).collect(),
            refused: Vec::new(),
        }
    }

    #[test]
    fn object_keys_table() {
        let cases: &[(&str, Result<Keys, &str>)] = &[
            (
                r#"{"user":"u","password":"p"}"#,
                Ok(keys(&["user", "password"])),
            ),
            (r#"{ "z" : 1.50 , "a": {"b":[1]} }"#, Ok(keys(&["z", "a"]))),
            ("{}", Ok(keys(&[]))),
            (
                r#"{"a":1,"b":2,"a":3}"#,
                Ok(Keys {
                    keys: vec!["b".into()],
                    refused: vec![("a".into(), "the key appears more than once".into())],
                }),
            ),
            (
                r#"{"":1,"x/y":2,"ok":3}"#,
                Ok(Keys {
                    keys: vec!["ok".into()],
                    refused: vec![
                        ("".into(), "an empty key cannot be a path segment".into()),
                        (
                            "x/y".into(),
                            "a key holding \"/\" cannot be one path segment".into(),
                        ),
                    ],
                }),
            ),
            ("\"secret\"", Err("this value is a JSON string")),
            ("[1,2]", Err("this value is an array")),
            ("1.5", Err("this value is a number")),
            ("true", Err("this value is a boolean")),
            ("null", Err("this value is null")),
            ("plain text", Err("this value is plain text")),
            ("{\"a\":", Err("not valid JSON")),
        ];
        for (text, want) in cases {
            match (object_keys(text), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{text}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{text}: {got}"),
                (got, w) => panic!("{text}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn key_value_table() {
        let doc =
            "{\"s\":\"line\\n caf\\u00e9 😀\",\"n\":1.50,\"big\":123456789012345678901234567890,\
                   \"o\":{\"b\":[true,null],\"z\":1e3},\"a\":[ 1, \"x\" ],\"t\":true,\"f\":false,\
                   \"null\":null,\"e\":\"\",\"esc\":\"\\u003c\\\"\\\\\"}";
        let cases: &[(&str, Option<&str>)] = &[
            ("s", Some("line\n café 😀")),
            ("n", Some("1.50")),
            ("big", Some("123456789012345678901234567890")),
            ("o", Some(r#"{"b":[true,null],"z":1e3}"#)),
            ("a", Some(r#"[ 1, "x" ]"#)),
            ("t", Some("true")),
            ("f", Some("false")),
            ("null", Some("null")),
            ("e", Some("")),
            ("esc", Some("<\"\\")),
            ("missing", None),
        ];
        for (key, want) in cases {
            let got = key_value(doc, key).unwrap();
            assert_eq!(got.as_deref().map(String::as_str), *want, "{key}");
        }
        assert!(key_value(r#"{"a":1,"a":2}"#, "a")
            .unwrap_err()
            .contains("more than once"));
        assert!(key_value("\"x\"", "a").is_err());
    }

    #[test]
    fn key_secret_paths_name_their_parent() {
        assert_eq!(parent_of("apps/db/password"), ("apps/db", "password"));
        assert_eq!(parent_of("password"), ("", "password"));
    }
}
