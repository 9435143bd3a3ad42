//! Topic validation, matching and the subscription trie, checked against a naive matcher.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_proto::TopicTrie;
use mqtt_proto::topic::*;
use proptest::prelude::*;

/// Expected result for one case: the filter/name validity, or whether `filter` matches `topic`.
enum Case {
    Filter(&'static str, Result<(), TopicError>),
    Name(&'static str, Result<(), TopicError>),
    Aws(&'static str, Result<(), TopicError>),
    Match(&'static str, &'static str, bool),
}

#[track_caller]
fn check(case: Case) {
    match case {
        Case::Filter(f, exp) => assert_eq!(validate_topic_filter(f), exp, "filter {f:?}"),
        Case::Name(n, exp) => assert_eq!(validate_topic_name(n), exp, "name {n:?}"),
        Case::Aws(t, exp) => assert_eq!(check_aws_limits(t, 256, 7), exp, "aws {t:?}"),
        Case::Match(f, t, exp) => {
            assert_eq!(matches(f, t), exp, "{f:?} vs {t:?}");
            let mut trie = TopicTrie::new();
            trie.insert(f, ()).expect("valid filter");
            assert_eq!(
                trie.matches(t).count(),
                usize::from(exp),
                "trie {f:?} vs {t:?}"
            );
        }
    }
}

#[test]
fn table() {
    use Case::*;
    use TopicError::*;
    let long = Box::leak("a".repeat(257).into_boxed_str());
    let long_ingest = Box::leak(format!("$aws/rules/r/{}", "a".repeat(257)).into_boxed_str());
    for case in [
        Filter("a/b", Ok(())),
        Filter("+", Ok(())),
        Filter("#", Ok(())),
        Filter("a/+/c/#", Ok(())),
        Filter("/", Ok(())),
        Filter("+/+", Ok(())),
        Filter("", Err(Empty)),
        Filter("a/#/b", Err(BadWildcard)),
        Filter("a#", Err(BadWildcard)),
        Filter("a/b+", Err(BadWildcard)),
        Filter("+a", Err(BadWildcard)),
        Filter("a\0", Err(NullChar)),
        Name("a/b", Ok(())),
        Name("$aws/things/x", Ok(())),
        Name("a/+", Err(WildcardInName)),
        Name("#", Err(WildcardInName)),
        Name("", Err(Empty)),
        Aws("a/b/c/d/e/f/g/h", Ok(())),
        Aws("a/b/c/d/e/f/g/h/i", Err(TooManyLevels(7))),
        Aws("$aws/rules/r/b/c/d/e/f/g/h/i", Ok(())),
        Aws("$aws/rules/r/b/c/d/e/f/g/h/i/j", Err(TooManyLevels(7))),
        Aws(long, Err(TooLong(256))),
        Aws(&long[1..], Ok(())),
        Aws(&long_ingest[..long_ingest.len() - 1], Ok(())),
        Aws(long_ingest, Err(TooLong(256))),
        Match("a/b", "a/b", true),
        Match("a/b", "a/c", false),
        Match("a/+", "a/b", true),
        Match("a/+", "a/b/c", false),
        Match("a/+", "a/", true),
        Match("a/#", "a", true),
        Match("a/#", "a/b/c", true),
        Match("#", "a/b", true),
        Match("+/+", "/x", true),
        Match("+", "/x", false),
        Match("#", "$SYS/x", false),
        Match("+/x", "$SYS/x", false),
        Match("$SYS/#", "$SYS/x", true),
        Match("$aws/+/x", "$aws/y/x", true),
        Match("a/b/#", "a", false),
    ] {
        check(case);
    }
}

#[test]
fn trie_insert_remove_prunes() {
    let mut t = TopicTrie::new();
    assert_eq!(t.insert("a/+/c", 1), Ok(None));
    assert_eq!(t.insert("a/+/c", 2), Ok(Some(1)));
    assert_eq!(t.insert("a/#", 3), Ok(None));
    assert_eq!(t.insert("a/#/x", 4), Err(TopicError::BadWildcard));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get("a/+/c"), Some(&2));
    let mut all = BTreeMap::new();
    t.for_each(|f, v| {
        all.insert(f.to_owned(), *v);
    });
    assert_eq!(
        all,
        BTreeMap::from([("a/#".to_owned(), 3), ("a/+/c".to_owned(), 2)])
    );
    assert_eq!(t.remove("a/+/c"), Some(2));
    assert_eq!(t.remove("a/+/c"), None);
    assert_eq!(t.remove("a/#"), Some(3));
    assert!(t.is_empty());
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just(String::new()),
        Just("$x".to_owned())
    ]
}

fn topic_name() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..5).prop_map(|v| match v.join("/") {
        s if s.is_empty() => "/".to_owned(),
        s => s,
    })
}

fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![3 => level(), 1 => Just("+".to_owned())], 1..5),
        any::<bool>(),
    )
        .prop_map(|(mut v, hash)| {
            if hash {
                v.push("#".into());
            }
            match v.join("/") {
                s if s.is_empty() => "/".to_owned(),
                s => s,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The trie returns exactly the filters the naive matcher accepts, also after removals.
    #[test]
    fn trie_agrees_with_naive_matcher(
        filters in prop::collection::vec(filter(), 0..30),
        removed in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        topics in prop::collection::vec(topic_name(), 1..10),
    ) {
        let mut trie = TopicTrie::new();
        let mut set = BTreeSet::new();
        for f in &filters {
            prop_assert!(validate_topic_filter(f).is_ok());
            trie.insert(f, f.clone()).expect("valid");
            set.insert(f.clone());
        }
        for i in removed {
            if filters.is_empty() { break; }
            let f = &filters[i.index(filters.len())];
            prop_assert_eq!(trie.remove(f).is_some(), set.remove(f));
        }
        prop_assert_eq!(trie.len(), set.len());
        for t in &topics {
            let mut got: Vec<&String> = trie.matches(t).collect();
            got.sort();
            let want: Vec<&String> = set.iter().filter(|f| matches(f, t)).collect();
            prop_assert_eq!(got, want, "topic {}", t);
        }
    }

    /// The naive matcher agrees with a regex-free reference built from levels.
    #[test]
    fn matcher_agrees_with_reference(f in filter(), t in topic_name()) {
        let fl: Vec<&str> = f.split('/').collect();
        let tl: Vec<&str> = t.split('/').collect();
        let mut ok = true;
        let mut i = 0;
        loop {
            match (fl.get(i), tl.get(i)) {
                (Some(&"#"), _) => break,
                (Some(&"+"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => break,
                _ => { ok = false; break; }
            }
            i += 1;
        }
        if t.starts_with('$') && (f.starts_with('+') || f.starts_with('#')) {
            ok = false;
        }
        prop_assert_eq!(matches(&f, &t), ok);
    }
}
