//! Cgroup paths (normalised, "/"-rooted, relative to the hierarchy root), the escape that turns
//! a directory name of any bytes into text and back, and the layout vocabulary.
//! Knows nothing about where the hierarchy is mounted.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// How the host mounts cgroups, in the kernel's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// Only v1 controller hierarchies.
    V1,
    /// Only the unified v2 hierarchy.
    V2,
    /// v1 controllers plus a unified mount (usually `<root>/unified`).
    Hybrid,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
            CgroupVersion::Hybrid => "hybrid",
        })
    }
}

/// A cgroup's path inside its hierarchy, always starting with `/` (`/` is the root cgroup).
/// Held as text: a directory name that is not UTF-8 is held in its [`escape_name`] form,
/// and [`CgroupPath::fs_relative`] gives back the bytes to open.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CgroupPath(#[serde(deserialize_with = "normalised")] String);

/// Read paths go through [`CgroupPath::from_relative`] too, so no input makes one that leaves
/// the tree.
fn normalised<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(CgroupPath::from_relative(&raw).0)
}

impl CgroupPath {
    /// The root cgroup, `/`.
    pub fn root() -> Self {
        CgroupPath("/".to_owned())
    }

    /// Builds a path from its components relative to the hierarchy root, as text (a name that
    /// is not UTF-8 in its escaped form). Empty, `.` and `..` components are dropped, so the
    /// result never leaves the tree.
    pub fn from_relative(rel: &str) -> Self {
        let mut out = String::with_capacity(rel.len() + 1);
        for part in rel.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                continue;
            }
            out.push('/');
            out.push_str(part);
        }
        if out.is_empty() {
            out.push('/');
        }
        CgroupPath(out)
    }

    /// The path as text, e.g. `/docker/<id>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without its leading `/`, as text (`""` for the root).
    pub fn relative(&self) -> &str {
        self.0.trim_start_matches('/')
    }

    /// Builds a path from the bytes of a directory path relative to the hierarchy root, as the
    /// filesystem gave them: names that are not UTF-8 are escaped (see [`escape_name`]).
    pub fn from_raw_relative(rel: &[u8]) -> Self {
        Self::from_relative(&escape_name(rel))
    }

    /// The path without its leading `/`, as the filesystem spells it, for joining under a
    /// mount point (`""` for the root): the inverse of the escape, borrowed when it changed
    /// nothing.
    pub fn fs_relative(&self) -> Cow<'_, OsStr> {
        match unescape_name(self.relative()) {
            Cow::Borrowed(b) => Cow::Borrowed(OsStr::from_bytes(b)),
            Cow::Owned(b) => Cow::Owned(OsStr::from_bytes(&b).to_owned()),
        }
    }
}

/// A directory name (or a `/`-separated path of them) of arbitrary bytes as text, one to one.
/// Each byte that is not part of valid UTF-8 (always 0x80 or above) becomes `\xNN`, two
/// lowercase hex digits. A `\` that the inverse would otherwise read as the start of such an
/// escape or of `\\` (that is, one followed by `\`, by an escaped byte, or by `x` and a
/// lowercase hex pair from 80 to ff) is doubled. Every other name, systemd's `\x2d` escapes
/// included, is its own text, so no two names ever read the same.
pub fn escape_name(raw: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(raw) {
        if !text
            .match_indices('\\')
            .any(|(i, _)| reads_as_escape(&raw[i + 1..]))
        {
            return Cow::Borrowed(text);
        }
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        let valid = chunk.valid();
        let invalid = chunk.invalid();
        let mut start = 0;
        for (i, _) in valid.match_indices('\\') {
            out.push_str(&valid[start..=i]);
            let rest = &valid.as_bytes()[i + 1..];
            // An escaped byte right after this one starts with `\` too.
            if reads_as_escape(rest) || (rest.is_empty() && !invalid.is_empty()) {
                out.push('\\');
            }
            start = i + 1;
        }
        out.push_str(&valid[start..]);
        for b in invalid {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// The bytes [`escape_name`] was given for `text`: `\\` is one `\`, `\xNN` with NN from 80
/// to ff is that byte, and anything else (a `\` before `x2d`, say) stands for itself.
pub fn unescape_name(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'\\') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            match bytes.get(i + 1..) {
                Some([b'\\', ..]) => {
                    out.push(b'\\');
                    i += 2;
                    continue;
                }
                Some([b'x', hi, lo, ..]) => {
                    if let (Some(hi), Some(lo)) = (high_nibble(*hi), lower_hex(*lo)) {
                        out.push((hi << 4) | lo);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// Whether `rest`, the bytes after a `\`, would make the inverse read that `\` as an escape.
fn reads_as_escape(rest: &[u8]) -> bool {
    match rest {
        [b'\\', ..] => true,
        [b'x', hi, lo, ..] => high_nibble(*hi).is_some() && lower_hex(*lo).is_some(),
        _ => false,
    }
}

/// The value of a lowercase hex digit.
fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The high nibble of a byte that is never valid alone in UTF-8 (8 to f).
fn high_nibble(c: u8) -> Option<u8> {
    lower_hex(c).filter(|n| *n >= 8)
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised_and_cannot_escape_the_tree() {
        assert_eq!(CgroupPath::from_relative("").as_str(), "/");
        assert_eq!(
            CgroupPath::from_relative("docker//abc/").as_str(),
            "/docker/abc"
        );
        assert_eq!(CgroupPath::from_relative("../../etc").as_str(), "/etc");
        assert_eq!(CgroupPath::from_relative("/a/./b").relative(), "a/b");
    }

    fn escaped(raw: &[u8]) -> String {
        escape_name(raw).into_owned()
    }

    #[test]
    fn bytes_that_are_not_utf8_are_written_as_hex_escapes() {
        assert_eq!(
            escaped(b"cgscope-test-1-\xff\xfe"),
            r"cgscope-test-1-\xff\xfe"
        );
        // A truncated sequence is two bad bytes; the valid character after it is kept.
        assert_eq!(escaped("a\u{e9}".as_bytes()), "a\u{e9}");
        assert_eq!(escaped(b"\xe2\x82z\xc3\xa9"), "\\xe2\\x82z\u{e9}");
    }

    #[test]
    fn utf8_names_are_their_own_text_unless_they_would_read_as_an_escape() {
        for name in [
            "docker-0123abcd.scope",
            r"system-systemd\x2dfsck.slice",
            r"a\b",
            r"ends\",
            r"\xFF",
            r"\x7f",
            r"\xf",
        ] {
            assert!(
                matches!(escape_name(name.as_bytes()), Cow::Borrowed(_)),
                "{name}"
            );
        }
        assert_eq!(escaped(br"\xff"), r"\\xff");
        assert_eq!(escaped(br"a\\b"), r"a\\\b");
        // A backslash before an escaped byte.
        assert_eq!(escaped(b"\\\xff"), r"\\\xff");
    }

    #[test]
    fn escaping_is_undone_and_paths_give_back_the_bytes_to_open() {
        for raw in [
            &b"plain"[..],
            b"\xff\xfe",
            br"\xff",
            b"\\\xff",
            br"a\\b",
            br"x\",
            b"\\\\\x80x80",
        ] {
            assert_eq!(unescape_name(&escape_name(raw)), raw, "{raw:?}");
        }
        let path = CgroupPath::from_raw_relative(b"parent/bad-\xff\xfe/child");
        assert_eq!(path.as_str(), r"/parent/bad-\xff\xfe/child");
        assert_eq!(path.fs_relative().as_bytes(), b"parent/bad-\xff\xfe/child");
        let plain = CgroupPath::from_relative("docker/abc");
        assert!(matches!(plain.fs_relative(), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #[test]
        fn escaping_any_bytes_is_one_to_one_and_never_panics(
            a in proptest::collection::vec(proptest::prop_oneof![
                proptest::num::u8::ANY,
                proptest::sample::select(&b"\\x8fa"[..]),
            ], 0..24),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
        ) {
            let (ea, eb) = (escape_name(&a), escape_name(&b));
            let back = unescape_name(&ea);
            proptest::prop_assert_eq!(back.as_ref(), &a[..]);
            proptest::prop_assert_eq!(ea == eb, a == b);
        }
    }
}
