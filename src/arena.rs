//! Text stored once: the names and paths a run holds per secret (the inventory's names, the
//! paths their tags claim, the source paths, the rewritten names), back to back in one
//! buffer, each held as an 8-byte [`Span`].
//!
//! Why: a run holds up to a region's 500,000 secrets, each with two to four names. A `String`
//! or `Box<str>` per name costs 16–24 bytes of pointer and length and the allocator's 8–16 bytes
//! of header and rounding on top of its characters, and the names of one secret repeat: a
//! secret's name is its plan item's target name, the path its tags claim is the item's source
//! path (or the end of its name). One buffer, spans into it, and a span reused where the text
//! is already there keep each name's characters once and nothing else.
//!
//! Text that would take the buffer past 2 GiB is kept in a `Box<str>` of its own instead
//! (its span says so), so there is no size at which the arena fails.

/// Where a text lies in an [`Arena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    /// Byte offset in the buffer; with [`BIG`] set, the index of a text kept on its own.
    start: u32,
    len: u32,
}

/// Marks a [`Span`] whose text is kept on its own, not in the buffer.
const BIG: u32 = 1 << 31;

/// The buffer and the texts that did not fit it.
#[derive(Debug)]
pub(crate) struct Arena {
    text: String,
    big: Vec<Box<str>>,
    /// How far the buffer may grow ([`BIG`]; less in tests).
    reach: u32,
}

impl Default for Arena {
    fn default() -> Arena {
        Arena {
            text: String::new(),
            big: Vec::new(),
            reach: BIG,
        }
    }
}

impl Arena {
    /// Stores `s`.
    pub(crate) fn push(&mut self, s: &str) -> Span {
        let at = u32::try_from(self.text.len()).ok();
        let len = u32::try_from(s.len()).ok();
        match at.zip(len) {
            Some((start, len)) if start.checked_add(len).is_some_and(|end| end <= self.reach) => {
                self.text.push_str(s);
                Span { start, len }
            }
            _ => {
                let k = u32::try_from(self.big.len()).unwrap_or(u32::MAX) | BIG;
                self.big.push(s.into());
                Span { start: k, len: 0 }
            }
        }
    }

    /// The text at `span`.
    pub(crate) fn get(&self, span: Span) -> &str {
        if span.start & BIG != 0 {
            let k = (span.start & !BIG) as usize;
            return self.big.get(k).map_or("", |b| b);
        }
        let start = span.start as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The span of the part of the text at `span` from byte `skip` on (`skip` is a character
    /// boundary of it, a prefix's length); `None` for a text kept on its own.
    pub(crate) fn tail(&self, span: Span, skip: usize) -> Option<Span> {
        let skip = u32::try_from(skip).ok()?;
        (span.start & BIG == 0 && skip <= span.len).then(|| Span {
            start: span.start + skip,
            len: span.len - skip,
        })
    }

    /// Gives back the buffer's unused capacity.
    pub(crate) fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.big.shrink_to_fit();
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.text.len() + self.big.iter().map(|b| b.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_back_as_stored_and_tails_are_parts_of_them() {
        let mut a = Arena::default();
        let s = a.push("scale/team-1/db");
        let e = a.push("");
        let t = a.push("tëam");
        assert_eq!(
            (a.get(s), a.get(e), a.get(t)),
            ("scale/team-1/db", "", "tëam")
        );
        let tail = a.tail(s, "scale/".len()).unwrap();
        assert_eq!(a.get(tail), "team-1/db");
        assert_eq!(a.tail(s, 100), None);
        assert_eq!(a.bytes(), "scale/team-1/db".len() + "tëam".len());
    }

    #[test]
    fn a_text_past_the_buffers_reach_is_kept_on_its_own() {
        let mut a = Arena {
            reach: 8,
            ..Arena::default()
        };
        let near = a.push("abcde");
        let far = a.push("fghij");
        let next = a.push("klm");
        assert_eq!(
            (a.get(near), a.get(far), a.get(next)),
            ("abcde", "fghij", "klm")
        );
        assert_eq!(a.text, "abcdeklm", "the one that did not fit is boxed");
        assert_eq!(a.tail(far, 1), None, "a boxed text has no tail span");
        assert_eq!(a.get(a.tail(near, 2).unwrap()), "cde");
    }
}
