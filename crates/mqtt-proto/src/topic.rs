//! Topic names and filters: validation, matching, AWS limits and a subscription trie.

use std::collections::HashMap;

use thiserror::Error;

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TopicError {
    /// Zero-length name or filter.
    #[error("empty topic")]
    Empty,
    /// `+` or `#` in a topic name.
    #[error("wildcard in a topic name")]
    WildcardInName,
    /// `+` not occupying a whole level, or `#` not a whole last level.
    #[error("misplaced wildcard in a topic filter")]
    BadWildcard,
    /// Contains U+0000.
    #[error("topic contains U+0000")]
    NullChar,
    /// Longer than the AWS limit (256 bytes, basic-ingest prefix excluded).
    #[error("topic longer than {0} bytes")]
    TooLong(usize),
    /// More `/` than the AWS limit (7, basic-ingest prefix excluded).
    #[error("topic has more than {0} '/' separators")]
    TooManyLevels(usize),
}

/// Checks MQTT rules for a topic name (PUBLISH, will): non-empty, no wildcards, no U+0000.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.contains('\0') {
        return Err(TopicError::NullChar);
    }
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks MQTT rules for a topic filter: non-empty, `+` a whole level, `#` a whole last level.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.contains('\0') {
        return Err(TopicError::NullChar);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "+" => {}
            "#" if levels.peek().is_none() => {}
            l if l.contains(['+', '#']) => return Err(TopicError::BadWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// The part of a topic AWS counts against its limits: everything after the basic-ingest
/// prefix `$aws/rules/<rule>/` if present, else the whole topic.
pub fn aws_counted_part(topic: &str) -> &str {
    if let Some(rest) = topic.strip_prefix("$aws/rules/")
        && let Some(i) = rest.find('/')
    {
        return rest.get(i + 1..).unwrap_or("");
    }
    topic
}

/// Checks the AWS size limits (bytes and `/` count) on a topic name or filter.
pub fn check_aws_limits(topic: &str, max_len: usize, max_slashes: usize) -> Result<(), TopicError> {
    let counted = aws_counted_part(topic);
    if counted.len() > max_len {
        return Err(TopicError::TooLong(max_len));
    }
    if counted.bytes().filter(|&b| b == b'/').count() > max_slashes {
        return Err(TopicError::TooManyLevels(max_slashes));
    }
    Ok(())
}

/// True if the (valid) `filter` matches the (valid) topic `name`, including the `$` rule:
/// a filter starting with a wildcard does not match a topic starting with `$`.
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A subscription trie keyed by topic filter, one value per filter. Matching a topic walks
/// only the levels of that topic (plus `+`/`#` branches), so cost is independent of the
/// number of unrelated subscriptions. Values are typically a per-filter subscriber set.
#[derive(Debug, Clone)]
pub struct TopicTrie<V> {
    root: Node<V>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    plus: Option<Box<Node<V>>>,
    /// Value of the filter ending in `#` at this level.
    hash: Option<V>,
    /// Value of the filter ending exactly here.
    value: Option<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            value: None,
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.value.is_none()
    }
}

impl<V> Default for TopicTrie<V> {
    fn default() -> Self {
        TopicTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> TopicTrie<V> {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of filters stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no filter is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `value` under `filter`, returning the previous value. Fails on invalid filters.
    pub fn insert(&mut self, filter: &str, value: V) -> Result<Option<V>, TopicError> {
        validate_topic_filter(filter)?;
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            let last = levels.peek().is_none();
            if level == "#" {
                let old = node.hash.replace(value);
                if old.is_none() {
                    self.len += 1;
                }
                return Ok(old);
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.children.entry(level.into()).or_default()
            };
            if last {
                break;
            }
        }
        let old = node.value.replace(value);
        if old.is_none() {
            self.len += 1;
        }
        Ok(old)
    }

    /// The value stored under exactly `filter`.
    pub fn get(&self, filter: &str) -> Option<&V> {
        let mut node = &self.root;
        for level in filter.split('/') {
            if level == "#" {
                return node.hash.as_ref();
            }
            node = if level == "+" {
                node.plus.as_deref()?
            } else {
                node.children.get(level)?
            };
        }
        node.value.as_ref()
    }

    /// Mutable access to the value stored under exactly `filter`.
    pub fn get_mut(&mut self, filter: &str) -> Option<&mut V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            if level == "#" {
                return node.hash.as_mut();
            }
            node = if level == "+" {
                node.plus.as_deref_mut()?
            } else {
                node.children.get_mut(level)?
            };
        }
        node.value.as_mut()
    }

    /// Removes and returns the value under exactly `filter`, pruning empty branches.
    pub fn remove(&mut self, filter: &str) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let out = Self::remove_rec(&mut self.root, &levels);
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    fn remove_rec(node: &mut Node<V>, levels: &[&str]) -> Option<V> {
        let Some((&level, rest)) = levels.split_first() else {
            return node.value.take();
        };
        if level == "#" {
            return if rest.is_empty() {
                node.hash.take()
            } else {
                None
            };
        }
        if level == "+" {
            let child = node.plus.as_deref_mut()?;
            let out = Self::remove_rec(child, rest);
            if child.is_empty() {
                node.plus = None;
            }
            out
        } else {
            let child = node.children.get_mut(level)?;
            let out = Self::remove_rec(child, rest);
            if child.is_empty() {
                node.children.remove(level);
            }
            out
        }
    }

    /// Iterates over the values of every filter matching the topic name `topic`
    /// (each matching filter once), applying the `$` rule.
    pub fn matches<'a>(&'a self, topic: &str) -> Matches<'a, V> {
        let levels: Vec<Box<str>> = topic.split('/').map(Box::from).collect();
        let dollar = topic.starts_with('$');
        Matches {
            levels,
            stack: vec![(&self.root, 0)],
            pending: None,
            dollar,
        }
    }

    /// Visits every `(filter, value)` pair (order unspecified).
    pub fn for_each(&self, mut f: impl FnMut(&str, &V)) {
        // The root has no own level; the first level may be empty (topic "/a"), which the
        // separator logic above cannot express, so handle the root's children explicitly.
        let mut path = String::new();
        if let Some(v) = &self.root.hash {
            f("#", v);
        }
        if let Some(p) = &self.root.plus {
            path.push('+');
            if let Some(v) = &p.value {
                f(&path, v);
            }
            walk_nonroot(p, &mut path, &mut f);
            path.clear();
        }
        for (k, c) in &self.root.children {
            path.push_str(k);
            if let Some(v) = &c.value {
                f(&path, v);
            }
            walk_nonroot(c, &mut path, &mut f);
            path.clear();
        }
        fn walk_nonroot<V>(n: &Node<V>, path: &mut String, f: &mut impl FnMut(&str, &V)) {
            let base = path.len();
            if let Some(v) = &n.hash {
                path.push_str("/#");
                f(path, v);
                path.truncate(base);
            }
            if let Some(p) = &n.plus {
                path.push_str("/+");
                if let Some(v) = &p.value {
                    f(path, v);
                }
                walk_nonroot(p, path, f);
                path.truncate(base);
            }
            for (k, c) in &n.children {
                path.push('/');
                path.push_str(k);
                if let Some(v) = &c.value {
                    f(path, v);
                }
                walk_nonroot(c, path, f);
                path.truncate(base);
            }
        }
    }
}

/// Iterator over the values matching a topic; see [`TopicTrie::matches`].
pub struct Matches<'a, V> {
    levels: Vec<Box<str>>,
    /// (node, index of the next level to consume at that node)
    stack: Vec<(&'a Node<V>, usize)>,
    pending: Option<&'a V>,
    dollar: bool,
}

impl<'a, V> Iterator for Matches<'a, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        if let Some(v) = self.pending.take() {
            return Some(v);
        }
        while let Some((node, i)) = self.stack.pop() {
            // `$` rule: at the root, wildcards do not match a `$` topic.
            let wild_ok = !(i == 0 && self.dollar);
            let hash = if wild_ok { node.hash.as_ref() } else { None };
            match self.levels.get(i) {
                None => {
                    // All levels consumed: the exact filter, and "x/#" matching "x".
                    match (node.value.as_ref(), hash) {
                        (Some(a), Some(b)) => {
                            self.pending = Some(b);
                            return Some(a);
                        }
                        (Some(a), None) | (None, Some(a)) => return Some(a),
                        (None, None) => {}
                    }
                }
                Some(level) => {
                    if let Some(c) = node.children.get(level) {
                        self.stack.push((c, i + 1));
                    }
                    if wild_ok && let Some(p) = node.plus.as_deref() {
                        self.stack.push((p, i + 1));
                    }
                    if let Some(h) = hash {
                        return Some(h);
                    }
                }
            }
        }
        None
    }
}
