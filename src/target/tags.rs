//! The tags of a secret found in the target, stored compactly.
//!
//! A run holds the tags of every secret under its prefix (the inventory, up to a region's
//! 500,000 secrets) while it plans. A `BTreeMap<String, String>` costs a B-tree leaf node
//! (about 540 bytes) plus two allocations per tag even for the three tags secretport writes;
//! [`Tags`] keeps all keys and values in one string with their boundaries beside it: two
//! allocations per secret, whatever the number of tags. Lookups scan (a secret has at most 50
//! tags). Keys are unique and sorted, like the map they replace.

use std::collections::BTreeMap;
use std::fmt;

/// Tag keys and values, sorted by key, unique.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Tags {
    /// Every key and value, concatenated in order.
    text: Box<str>,
    /// End offset in `text` of each key and each value (key, value, key, value, ...).
    ends: Box<[u32]>,
}

impl Tags {
    /// No tags.
    pub fn new() -> Tags {
        Tags::default()
    }

    /// The tags as (key, value) pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let bounds = self.ends.chunks_exact(2);
        let mut start = 0usize;
        bounds.map(move |pair| {
            let (k_end, v_end) = (pair[0] as usize, pair[1] as usize);
            let key = self.text.get(start..k_end).unwrap_or_default();
            let value = self.text.get(k_end..v_end).unwrap_or_default();
            start = v_end;
            (key, value)
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there is no tag.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    #[cfg(any(test, feature = "memory-target"))] // the in-memory fake's
    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.len() + self.ends.len() * std::mem::size_of::<u32>()
    }

    #[cfg(any(test, feature = "memory-target"))] // the in-memory fake's
    /// The tags as a map.
    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[cfg(any(test, feature = "memory-target"))] // the in-memory fake's
    /// These tags with `more` added or changed (TagResource's semantics).
    pub(crate) fn merged<'a>(&self, more: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
        let mut map = self.to_map();
        map.extend(more.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        Tags::from_sorted(&map)
    }

    fn from_sorted<K: AsRef<str>, V: AsRef<str>>(map: impl IntoIterator<Item = (K, V)>) -> Tags {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (k, v) in map {
            text.push_str(k.as_ref());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            text.push_str(v.as_ref());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        Tags {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    /// Later pairs win over earlier ones with the same key (as in a map).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Tags {
        let map: BTreeMap<String, String> = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Tags::from_sorted(map)
    }
}

impl From<&BTreeMap<String, String>> for Tags {
    fn from(map: &BTreeMap<String, String>) -> Tags {
        Tags::from_sorted(map)
    }
}

impl From<BTreeMap<String, String>> for Tags {
    fn from(map: BTreeMap<String, String>) -> Tags {
        Tags::from_sorted(&map)
    }
}

impl std::ops::Index<&str> for Tags {
    type Output = str;

    /// The value of `key`; panics when it is not set (tests).
    fn index(&self, key: &str) -> &str {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no tag {key:?}"),
        }
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_the_map_it_replaces() {
        let map: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("", ""), ("é", "x=y")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let t = Tags::from(&map);
        assert_eq!(t.to_map(), map);
        assert_eq!(t.len(), 4);
        assert_eq!(t.get("a"), Some("1"));
        assert_eq!(t.get(""), Some(""));
        assert_eq!(&t["é"], "x=y");
        assert_eq!(t.get("c"), None);
        assert_eq!(
            t.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["", "a", "b", "é"]
        );
        let m = t.merged([("a", "one"), ("c", "3")]);
        assert_eq!(
            (m.get("a"), m.get("c"), m.get("b")),
            (Some("one"), Some("3"), Some("2"))
        );
        assert!(Tags::new().is_empty());
        assert_eq!(
            Tags::from_iter([("k", "1"), ("k", "2")]).get("k"),
            Some("2")
        );
    }
}
