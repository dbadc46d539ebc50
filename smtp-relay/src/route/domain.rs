//! Domain names in the form they are compared in, and the pattern syntax of `[relay] domains`
//! and route `domains`: an exact name, `.suffix` for every subdomain of a name, or `*` for any.
//!
//! Names are compared on their A-label (RFC 5890): lower case, U-labels converted to punycode
//! (UTS #46 processing through the `idna` crate), one trailing dot removed.
//!
//! What it does not do: decide what a match means (relay control and routing do) or resolve
//! anything.

use std::fmt;

/// Returns `name` in the form names are compared in: the A-label form, lower case, without a
/// trailing dot. `None` when it is not a valid domain name (empty, empty labels, or refused by
/// IDNA processing).
pub fn normalize(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return None;
    }
    let ascii = idna::domain_to_ascii(name).ok()?;
    if ascii.is_empty() || ascii.split('.').any(str::is_empty) {
        return None;
    }
    Some(ascii)
}

/// One entry of a domain list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    /// `example.org`: that name only.
    Exact(String),
    /// `.example.org`: every subdomain of `example.org`, not the name itself. Holds the
    /// normalised name with its leading dot.
    Suffix(String),
    /// `*`: every domain.
    Any,
}

impl DomainPattern {
    /// Parses one entry. The error says why it was refused.
    pub fn parse(entry: &str) -> Result<DomainPattern, String> {
        let entry = entry.trim();
        if entry == "*" {
            return Ok(DomainPattern::Any);
        }
        if let Some(rest) = entry.strip_prefix('.') {
            return normalize(rest)
                .map(|n| DomainPattern::Suffix(format!(".{n}")))
                .ok_or_else(|| "not a domain name".to_string());
        }
        normalize(entry)
            .map(DomainPattern::Exact)
            .ok_or_else(|| "not a domain name".to_string())
    }

    /// Whether the pattern matches `name`, which must already be [`normalize`]d.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            DomainPattern::Exact(n) => n == name,
            DomainPattern::Suffix(s) => name.len() > s.len() && name.ends_with(s.as_str()),
            DomainPattern::Any => true,
        }
    }

    /// Whether every name `other` matches is matched by `self` too.
    pub fn covers(&self, other: &DomainPattern) -> bool {
        match (self, other) {
            (DomainPattern::Any, _) => true,
            (_, DomainPattern::Any) => false,
            (_, DomainPattern::Exact(n)) => self.matches(n),
            (DomainPattern::Suffix(s), DomainPattern::Suffix(o)) => o.ends_with(s.as_str()),
            (DomainPattern::Exact(_), DomainPattern::Suffix(_)) => false,
        }
    }
}

impl fmt::Display for DomainPattern {
    /// The normalised entry: `example.org`, `.example.org` or `*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(n) | DomainPattern::Suffix(n) => f.write_str(n),
            DomainPattern::Any => f.write_str("*"),
        }
    }
}

/// A list of [`DomainPattern`]s; a name matches when any entry does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainSet {
    patterns: Vec<DomainPattern>,
}

impl DomainSet {
    /// Parses every entry of `key`; `*` is refused unless `allow_any`.
    pub fn parse<S: AsRef<str>>(
        key: &'static str,
        entries: &[S],
        allow_any: bool,
    ) -> Result<DomainSet, super::ConfigError> {
        let mut patterns = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref();
            let pattern =
                DomainPattern::parse(entry).map_err(|reason| super::ConfigError::Invalid {
                    key,
                    entry: entry.to_string(),
                    reason,
                })?;
            if pattern == DomainPattern::Any && !allow_any {
                return Err(super::ConfigError::Wildcard { key });
            }
            patterns.push(pattern);
        }
        Ok(DomainSet { patterns })
    }

    /// The entries, normalised, in order.
    pub fn patterns(&self) -> &[DomainPattern] {
        &self.patterns
    }

    /// Whether `name` (as sent: any case, U-labels, a trailing dot) matches an entry. A name
    /// that is not a valid domain matches nothing.
    pub fn matches(&self, name: &str) -> bool {
        normalize(name).is_some_and(|n| self.matches_normalized(&n))
    }

    /// [`DomainSet::matches`] for a name already [`normalize`]d.
    pub fn matches_normalized(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_lowercases_strips_one_dot_and_converts_u_labels() {
        assert_eq!(normalize("Example.ORG.").as_deref(), Some("example.org"));
        assert_eq!(
            normalize("bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize("BÜCHER.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize("xn--bcher-kva.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(normalize("example.org.."), None);
        assert_eq!(normalize("a..b"), None);
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("."), None);
    }

    #[test]
    fn patterns_match_exact_suffix_and_any() {
        let exact = DomainPattern::parse("Target.Test.").unwrap();
        assert!(exact.matches("target.test"));
        assert!(!exact.matches("a.target.test"));
        let suffix = DomainPattern::parse(".target.test").unwrap();
        assert!(suffix.matches("a.target.test"));
        assert!(suffix.matches("b.a.target.test"));
        assert!(!suffix.matches("target.test"));
        assert!(!suffix.matches("eviltarget.test"));
        assert!(DomainPattern::parse("*")
            .unwrap()
            .matches("anything.example"));
        assert!(DomainPattern::parse("").is_err());
        assert!(DomainPattern::parse(".").is_err());
    }

    #[test]
    fn covers_compares_patterns() {
        let p = |s| DomainPattern::parse(s).unwrap();
        assert!(p("*").covers(&p(".x.test")));
        assert!(p(".test").covers(&p(".x.test")));
        assert!(p(".test").covers(&p("x.test")));
        assert!(!p(".x.test").covers(&p(".test")));
        assert!(!p("x.test").covers(&p(".x.test")));
        assert!(!p(".x.test").covers(&p("x.test")));
        assert!(!p("x.test").covers(&p("*")));
    }

    #[test]
    fn a_set_refuses_the_wildcard_unless_allowed() {
        let err = DomainSet::parse("[relay] domains", &["a.test", "*"], false).unwrap_err();
        assert_eq!(
            err,
            super::super::ConfigError::Wildcard {
                key: "[relay] domains"
            }
        );
        assert!(err.to_string().contains("[relay] domains"));
        assert!(DomainSet::parse("route domains", &["*"], true).is_ok());
        let set = DomainSet::parse("k", &["a.test", ".b.test"], false).unwrap();
        assert!(set.matches("A.TEST."));
        assert!(set.matches("x.b.test"));
        assert!(!set.matches("b.test"));
        assert!(!set.matches("not a domain"));
    }
}
