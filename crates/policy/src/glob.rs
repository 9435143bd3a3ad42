//! Policy wildcard patterns: `*` matches any run of characters (including `/`), `?` exactly
//! one character. MQTT `+` and `#` are ordinary characters here.
//!
//! A [`Glob`] is built once (at compile time) and matched many times without allocating. The
//! subject may be given in pieces so that the gateway can match
//! `arn:aws:iot:<region>:<account>:` + `topic/` + `<topic>` without building the ARN string.

/// One element of a general pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Token {
    /// Text that must appear verbatim.
    Lit(Box<str>),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, possibly empty.
    Star,
}

/// A compiled wildcard pattern, specialised for the common shapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Glob {
    /// `*`.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// `literal*`.
    Prefix(Box<str>),
    /// Anything else.
    General(Box<[Token]>),
}

/// Accumulates literal text and wildcards, then builds a [`Glob`].
#[derive(Debug, Default)]
pub(crate) struct GlobBuilder {
    toks: Vec<Token>,
    cur: String,
}

impl GlobBuilder {
    /// Appends text in which `*` and `?` are literal characters.
    pub(crate) fn push_literal(&mut self, s: &str) {
        self.cur.push_str(s);
    }

    /// Appends policy text in which `*` and `?` are wildcards.
    pub(crate) fn push_pattern(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '*' => {
                    self.flush();
                    if self.toks.last() != Some(&Token::Star) {
                        self.toks.push(Token::Star);
                    }
                }
                '?' => {
                    self.flush();
                    self.toks.push(Token::One);
                }
                c => self.cur.push(c),
            }
        }
    }

    fn flush(&mut self) {
        if !self.cur.is_empty() {
            let lit = std::mem::take(&mut self.cur);
            self.toks.push(Token::Lit(lit.into_boxed_str()));
        }
    }

    /// Finishes the pattern.
    pub(crate) fn build(mut self) -> Glob {
        self.flush();
        Glob::from_tokens(self.toks)
    }
}

impl Glob {
    /// `toks` must be normalised: no empty literal, no two adjacent literals or stars.
    fn from_tokens(mut toks: Vec<Token>) -> Glob {
        match toks.as_mut_slice() {
            [] => Glob::Exact("".into()),
            [Token::Star] => Glob::Any,
            [Token::Lit(s)] => Glob::Exact(std::mem::take(s)),
            [Token::Lit(s), Token::Star] => Glob::Prefix(std::mem::take(s)),
            _ => Glob::General(toks.into_boxed_slice()),
        }
    }

    /// The pattern `q` such that this pattern matches `prefix + x` exactly when `q` matches
    /// `x`, and matches nothing else; `None` unless the pattern begins with the literal
    /// `prefix`.
    pub(crate) fn strip_prefix(&self, prefix: &str) -> Option<Glob> {
        let rest = |lit: &str| lit.strip_prefix(prefix).map(Box::<str>::from);
        Some(match self {
            Glob::Any => return None,
            Glob::Exact(s) => Glob::Exact(rest(s)?),
            Glob::Prefix(s) => {
                let r = rest(s)?;
                if r.is_empty() {
                    Glob::Any
                } else {
                    Glob::Prefix(r)
                }
            }
            Glob::General(toks) => {
                let (Token::Lit(first), others) = toks.split_first()? else {
                    return None;
                };
                let r = rest(first)?;
                let mut out = Vec::with_capacity(toks.len());
                if !r.is_empty() {
                    out.push(Token::Lit(r));
                }
                out.extend(others.iter().cloned());
                Glob::from_tokens(out)
            }
        })
    }

    /// Compiles policy text where `*` and `?` are wildcards.
    pub(crate) fn new(pattern: &str) -> Glob {
        let mut b = GlobBuilder::default();
        b.push_pattern(pattern);
        b.build()
    }

    /// Does the pattern match `text`?
    #[inline]
    pub(crate) fn is_match(&self, text: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => **s == *text,
            Glob::Prefix(p) => text.starts_with(&**p),
            Glob::General(toks) => general_match(toks, &Text::new([text])),
        }
    }

    /// Does the pattern match the concatenation `a + b`? Never allocates.
    pub(crate) fn is_match_split(&self, a: &str, b: &str) -> bool {
        self.matches(&Text::new([a, b]))
    }

    /// Does the pattern match the concatenation `a + b + c`? Never allocates.
    pub(crate) fn is_match_parts(&self, a: &str, b: &str, c: &str) -> bool {
        self.matches(&Text::new([a, b, c]))
    }

    fn matches<const N: usize>(&self, text: &Text<'_, N>) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => text.len() == s.len() && text.starts_with_at(0, s.as_bytes()),
            Glob::Prefix(p) => text.starts_with_at(0, p.as_bytes()),
            Glob::General(toks) => general_match(toks, text),
        }
    }
}

/// The subject: `N` UTF-8 byte strings, logically concatenated. (Generic so that the loops over
/// the parts unroll.)
struct Text<'a, const N: usize> {
    parts: [&'a [u8]; N],
    len: usize,
}

impl<'a, const N: usize> Text<'a, N> {
    fn new(parts: [&'a str; N]) -> Self {
        Text {
            parts: parts.map(str::as_bytes),
            len: parts.iter().map(|p| p.len()).sum(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn byte(&self, mut i: usize) -> Option<u8> {
        for part in self.parts {
            match part.get(i) {
                Some(&b) => return Some(b),
                None => i -= part.len(),
            }
        }
        None
    }

    /// Length in bytes of the character starting at byte `i` (a character boundary).
    fn char_len(&self, i: usize) -> usize {
        match self.byte(i) {
            Some(b) if b < 0x80 => 1,
            Some(b) if b >= 0xF0 => 4,
            Some(b) if b >= 0xE0 => 3,
            _ => 2,
        }
    }

    fn starts_with_at(&self, mut i: usize, mut lit: &[u8]) -> bool {
        if i + lit.len() > self.len {
            return false;
        }
        for part in self.parts {
            let Some(here) = part.get(i..) else {
                i -= part.len();
                continue;
            };
            let n = here.len().min(lit.len());
            let (now, later) = lit.split_at(n);
            if here.get(..n) != Some(now) {
                return false;
            }
            if later.is_empty() {
                return true;
            }
            lit = later;
            i = 0;
        }
        lit.is_empty()
    }

    /// The first position at or after `i` holding byte `b`, or the length.
    fn find_byte(&self, mut i: usize, b: u8) -> usize {
        let mut offset = 0;
        for part in self.parts {
            match part.get(i..) {
                Some(here) => {
                    if let Some(k) = here.iter().position(|&x| x == b) {
                        return offset + i + k;
                    }
                    i = 0;
                }
                None => i -= part.len(),
            }
            offset += part.len();
        }
        self.len
    }
}

/// Iterative wildcard matching with backtracking to the most recent `*` only: linear in
/// practice, O(pattern × text) worst case, no recursion, no allocation.
fn general_match<const N: usize>(toks: &[Token], text: &Text<'_, N>) -> bool {
    let len = text.len();
    let (mut t, mut i) = (0usize, 0usize);
    // (token index after the last star, text position that star currently absorbs up to)
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(tok) = toks.get(t) {
            match tok {
                Token::Star => {
                    star = Some((t + 1, i));
                    t += 1;
                    continue;
                }
                Token::One if i < len => {
                    i += text.char_len(i);
                    t += 1;
                    continue;
                }
                Token::Lit(s) if text.starts_with_at(i, s.as_bytes()) => {
                    i += s.len();
                    t += 1;
                    continue;
                }
                _ => {}
            }
        } else if i == len {
            return true;
        }
        match star {
            Some((st, si)) if si < len => {
                let mut ni = si + text.char_len(si);
                // A literal after the star can only start at its first byte (a character
                // boundary, as that byte does not continue a UTF-8 sequence).
                if let Some(Token::Lit(s)) = toks.get(st)
                    && let Some(&b) = s.as_bytes().first()
                {
                    ni = text.find_byte(ni, b);
                }
                star = Some((st, ni));
                t = st;
                i = ni;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious recursive matcher, as an oracle.
    fn naive(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|k| naive(rest, &t[k..])),
            Some(('?', rest)) => !t.is_empty() && naive(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
        }
    }

    fn check(pattern: &str, text: &str, expected: bool) {
        let g = Glob::new(pattern);
        assert_eq!(
            g.is_match(text),
            expected,
            "{pattern:?} vs {text:?} ({g:?})"
        );
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&k| text.is_char_boundary(k))
            .collect();
        for &j in &bounds {
            for &k in bounds.iter().filter(|&&k| k >= j) {
                assert_eq!(
                    g.is_match_parts(&text[..j], &text[j..k], &text[k..]),
                    expected,
                    "{pattern:?} vs {text:?} split at {j}, {k}"
                );
            }
        }
    }

    #[test]
    fn table() {
        for (p, t, e) in [
            ("*", "", true),
            ("*", "a/b/c", true),
            ("", "", true),
            ("", "a", false),
            ("a/b", "a/b", true),
            ("a/b", "a/bc", false),
            ("a/*", "a/", true),
            ("a/*", "a/b/c", true),
            ("a/*", "b/a", false),
            ("*/c", "a/b/c", true),
            ("a/+/c", "a/+/c", true),
            ("a/+/c", "a/b/c", false),
            ("a/#", "a/#", true),
            ("a/#", "a/b", false),
            ("a/?/c", "a/b/c", true),
            ("a/?/c", "a/bb/c", false),
            ("a/?/c", "a/é/c", true),
            ("?", "€", true),
            ("??", "€", false),
            ("*x*y", "axbxcy", true),
            ("*ab*ab", "xabyab", true),
            ("*ab*ab", "xaby", false),
            ("a*b*c*d", "aXbXcXd", true),
            ("a*b*c*d", "aXbXcX", false),
            (
                "$aws/certificates/create/*",
                "$aws/certificates/create-from-csr/json",
                false,
            ),
            (
                "$aws/certificates/create*",
                "$aws/certificates/create-from-csr/json",
                true,
            ),
        ] {
            check(p, t, e);
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(Glob::new("*"), Glob::Any);
        assert_eq!(Glob::new("***"), Glob::Any);
        assert_eq!(Glob::new("ab"), Glob::Exact("ab".into()));
        assert_eq!(Glob::new("ab**"), Glob::Prefix("ab".into()));
        assert!(matches!(Glob::new("a?"), Glob::General(_)));
        let strip = |p: &str, pre: &str| Glob::new(p).strip_prefix(pre);
        assert_eq!(strip("ab/c", "ab/"), Some(Glob::Exact("c".into())));
        assert_eq!(strip("ab/*", "ab/"), Some(Glob::Any));
        assert_eq!(strip("ab/*", "a"), Some(Glob::Prefix("b/".into())));
        assert_eq!(strip("ab/?*", "ab/"), Some(Glob::new("?*")));
        assert_eq!(strip("ab/?", "ab/c"), None);
        assert_eq!(strip("*", ""), None);
    }

    proptest! {
        #[test]
        fn agrees_with_naive(p in "[ab*?/+é]{0,8}", t in "[ab/+é]{0,10}", split in 0usize..12) {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            let expected = naive(&pc, &tc);
            let g = Glob::new(&p);
            prop_assert_eq!(g.is_match(&t), expected);
            let bounds: Vec<usize> = t.char_indices().map(|(i, _)| i).chain([t.len()]).collect();
            let j = bounds.get(split / 2).copied().unwrap_or(t.len());
            let k = bounds.get(split).copied().unwrap_or(t.len()).max(j);
            prop_assert_eq!(g.is_match_parts(&t[..j], &t[j..k], &t[k..]), expected);
        }

        #[test]
        fn strip_prefix_agrees(p in "[ab*?/é]{0,8}", pre in "[ab/é]{0,3}", t in "[ab/é]{0,8}") {
            let g = Glob::new(&p);
            if let Some(q) = g.strip_prefix(&pre) {
                prop_assert_eq!(q.is_match(&t), g.is_match(&format!("{pre}{t}")));
                prop_assert_eq!(&q, &Glob::new(p.strip_prefix(pre.as_str()).unwrap_or("x")));
            }
        }
    }
}
