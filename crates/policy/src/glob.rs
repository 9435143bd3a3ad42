//! Policy wildcard patterns: `*` matches any run of characters (including `/`), `?` exactly
//! one character. MQTT `+` and `#` are ordinary characters here.
//!
//! A [`Glob`] is built once (at compile time) and matched many times without allocating. The
//! subject may be given in two pieces (`head` + `tail`) so that the gateway can match
//! `arn:aws:iot:<region>:<account>:topic/` + `<topic>` without building the ARN string.

/// One element of a general pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Text that must appear verbatim.
    Lit(Box<str>),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, possibly empty.
    Star,
}

/// A compiled wildcard pattern, specialised for the common shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        let mut toks = self.toks;
        match toks.as_mut_slice() {
            [] => Glob::Exact("".into()),
            [Token::Star] => Glob::Any,
            [Token::Lit(s)] => Glob::Exact(std::mem::take(s)),
            [Token::Lit(s), Token::Star] => Glob::Prefix(std::mem::take(s)),
            _ => Glob::General(toks.into_boxed_slice()),
        }
    }
}

impl Glob {
    /// Compiles policy text where `*` and `?` are wildcards.
    pub(crate) fn new(pattern: &str) -> Glob {
        let mut b = GlobBuilder::default();
        b.push_pattern(pattern);
        b.build()
    }

    /// Does the pattern match `text`?
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.is_match_split(text, "")
    }

    /// Does the pattern match the concatenation `head + tail`? Never allocates.
    pub(crate) fn is_match_split(&self, head: &str, tail: &str) -> bool {
        let text = Text {
            a: head.as_bytes(),
            b: tail.as_bytes(),
        };
        match self {
            Glob::Any => true,
            Glob::Exact(s) => text.len() == s.len() && text.starts_with_at(0, s.as_bytes()),
            Glob::Prefix(p) => text.starts_with_at(0, p.as_bytes()),
            Glob::General(toks) => general_match(toks, &text),
        }
    }
}

/// The subject: two UTF-8 byte strings, logically concatenated.
struct Text<'a> {
    a: &'a [u8],
    b: &'a [u8],
}

impl Text<'_> {
    fn len(&self) -> usize {
        self.a.len() + self.b.len()
    }

    fn byte(&self, i: usize) -> Option<u8> {
        if i < self.a.len() {
            self.a.get(i).copied()
        } else {
            self.b.get(i - self.a.len()).copied()
        }
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

    fn starts_with_at(&self, i: usize, lit: &[u8]) -> bool {
        if i + lit.len() > self.len() {
            return false;
        }
        let a = self.a;
        if i >= a.len() {
            return self
                .b
                .get(i - a.len()..)
                .is_some_and(|rest| rest.starts_with(lit));
        }
        let in_a = (a.len() - i).min(lit.len());
        a.get(i..i + in_a) == lit.get(..in_a)
            && lit.get(in_a..).is_some_and(|rest| self.b.starts_with(rest))
    }
}

/// Iterative wildcard matching with backtracking to the most recent `*` only: linear in
/// practice, O(pattern × text) worst case, no recursion, no allocation.
fn general_match(toks: &[Token], text: &Text<'_>) -> bool {
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
                let ni = si + text.char_len(si);
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
        for k in (0..=text.len()).filter(|&k| text.is_char_boundary(k)) {
            assert_eq!(
                g.is_match_split(&text[..k], &text[k..]),
                expected,
                "{pattern:?} vs {text:?} split at {k}"
            );
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
    }

    proptest! {
        #[test]
        fn agrees_with_naive(p in "[ab*?/+é]{0,8}", t in "[ab/+é]{0,10}", split in 0usize..12) {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            let expected = naive(&pc, &tc);
            let g = Glob::new(&p);
            prop_assert_eq!(g.is_match(&t), expected);
            let k = t.char_indices().map(|(i, _)| i).chain([t.len()]).nth(split).unwrap_or(t.len());
            prop_assert_eq!(g.is_match_split(&t[..k], &t[k..]), expected);
        }
    }
}
