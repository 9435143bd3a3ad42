//! Strings of a policy that may contain `${...}` policy variables and the escapes `${*}`,
//! `${?}`, `${$}`. Parsed once when the document is parsed; substituted at compile time.

use crate::glob::{Glob, GlobBuilder};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Policy text; `*` and `?` in it are wildcards where wildcards apply.
    Text(String),
    /// `${*}`, `${?}` or `${$}`: the character, always literal.
    Escape(char),
    /// `${name}`: a policy variable.
    Var(String),
}

/// A parsed policy string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) parts: Vec<Part>,
}

impl Template {
    /// Splits `s` into text, escapes and variables. `${` without a closing `}` and `${}` are
    /// plain text.
    pub(crate) fn parse(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = &after[..end];
            text.push_str(&rest[..start]);
            let part = match name {
                "" => {
                    text.push_str("${}");
                    None
                }
                "*" => Some(Part::Escape('*')),
                "?" => Some(Part::Escape('?')),
                "$" => Some(Part::Escape('$')),
                _ => Some(Part::Var(name.to_owned())),
            };
            if let Some(part) = part {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Template { parts }
    }

    /// The variable names used.
    pub(crate) fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Is this exactly the text `s` (no variables, no escapes)?
    pub(crate) fn is_text(&self, s: &str) -> bool {
        match self.parts.as_slice() {
            [Part::Text(t)] => t == s,
            [] => s.is_empty(),
            _ => false,
        }
    }

    /// Splits on `:` outside variables into at most `n` pieces (the last keeps its colons).
    pub(crate) fn split_colon(&self, n: usize) -> Vec<Template> {
        let mut out = vec![Template { parts: Vec::new() }];
        for part in &self.parts {
            match part {
                Part::Text(t) => {
                    let mut rest = t.as_str();
                    while out.len() < n {
                        let Some(idx) = rest.find(':') else { break };
                        push_text(&mut out, &rest[..idx]);
                        out.push(Template { parts: Vec::new() });
                        rest = &rest[idx + 1..];
                    }
                    push_text(&mut out, rest);
                }
                other => {
                    if let Some(last) = out.last_mut() {
                        last.parts.push(other.clone());
                    }
                }
            }
        }
        out
    }

    /// Substitutes variables with `resolve` and compiles the result as a wildcard pattern.
    /// Substituted values and escapes are literal. `None` if a variable does not resolve.
    pub(crate) fn to_glob(&self, resolve: &dyn Fn(&str) -> Option<String>) -> Option<Glob> {
        let mut b = GlobBuilder::default();
        for part in &self.parts {
            match part {
                Part::Text(t) => b.push_pattern(t),
                Part::Escape(c) => b.push_literal(c.encode_utf8(&mut [0; 4])),
                Part::Var(v) => b.push_literal(&resolve(v)?),
            }
        }
        Some(b.build())
    }

    /// Substitutes variables and escapes into a plain string (for non-wildcard comparisons).
    pub(crate) fn to_plain(&self, resolve: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let mut s = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => s.push_str(t),
                Part::Escape(c) => s.push(*c),
                Part::Var(v) => s.push_str(&resolve(v)?),
            }
        }
        Some(s)
    }
}

fn push_text(out: &mut [Template], s: &str) {
    if s.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        match last.parts.last_mut() {
            Some(Part::Text(t)) => t.push_str(s),
            _ => last.parts.push(Part::Text(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[Part]) {
        assert_eq!(Template::parse(input).parts, expected, "{input:?}");
    }

    fn text(s: &str) -> Part {
        Part::Text(s.into())
    }

    fn var(s: &str) -> Part {
        Part::Var(s.into())
    }

    #[test]
    fn parse_table() {
        check("", &[]);
        check("a/b", &[text("a/b")]);
        check(
            "a/${iot:ClientId}/b",
            &[text("a/"), var("iot:ClientId"), text("/b")],
        );
        check("${iot:ClientId}", &[var("iot:ClientId")]);
        check(
            "${*}${?}${$}",
            &[Part::Escape('*'), Part::Escape('?'), Part::Escape('$')],
        );
        check("a${b", &[text("a${b")]);
        check("a${}b", &[text("a${}b")]);
        check("$aws/x", &[text("$aws/x")]);
        check(
            "t/${iot:Connection.Thing.Attributes[a b]}",
            &[text("t/"), var("iot:Connection.Thing.Attributes[a b]")],
        );
    }

    #[test]
    fn split_keeps_variables_whole() {
        let t = Template::parse("arn:aws:iot:r:1:topic/${iot:ClientId}:x:y");
        let pieces = t.split_colon(6);
        assert_eq!(pieces.len(), 6);
        assert_eq!(
            pieces[5].parts,
            vec![text("topic/"), var("iot:ClientId"), text(":x:y")]
        );
        assert!(pieces[2].is_text("iot"));
    }

    #[test]
    fn substitution() {
        let t = Template::parse("a/${v}/${*}");
        let r = |n: &str| (n == "v").then(|| "x*".to_owned());
        assert_eq!(t.to_plain(&r).as_deref(), Some("a/x*/*"));
        let g = t.to_glob(&r);
        assert!(g.as_ref().is_some_and(|g| g.is_match("a/x*/*")));
        assert!(g.as_ref().is_some_and(|g| !g.is_match("a/xy/*")));
        let none = |_: &str| None;
        assert_eq!(t.to_plain(&none), None);
    }
}
