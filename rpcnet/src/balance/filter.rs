//! Tag filters: `"role=worker,zone=eu-1"` selects members whose tags match every clause.
//! A clause is `key=value`, `key!=value`, or a bare `key` (the tag is present).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A parsed tag filter.
///
/// ```
/// use std::collections::BTreeMap;
/// use rpcnet::balance::TagFilter;
/// let filter: TagFilter = "role=worker,zone!=us-1,gpu".parse().unwrap();
/// let tags = BTreeMap::from([
///     ("role".to_string(), "worker".to_string()),
///     ("zone".to_string(), "eu-1".to_string()),
///     ("gpu".to_string(), "a100".to_string()),
/// ]);
/// assert!(filter.matches(&tags));
/// assert!("role=".parse::<TagFilter>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagFilter {
    clauses: Vec<Clause>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Equals(String, String),
    NotEquals(String, String),
    Present(String),
}

/// Why a filter could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tag filter `{filter}`: {reason}; write clauses like `role=worker`, `zone!=us-1` or `gpu`, joined by commas"
)]
pub struct FilterError {
    /// The filter as given.
    pub filter: String,
    /// What is wrong with it.
    pub reason: String,
}

impl TagFilter {
    /// A filter that matches every member.
    pub fn any() -> Self {
        Self::default()
    }

    /// Whether `tags` satisfy every clause.
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        self.clauses.iter().all(|clause| match clause {
            Clause::Equals(key, value) => tags.get(key) == Some(value),
            Clause::NotEquals(key, value) => tags.get(key) != Some(value),
            Clause::Present(key) => tags.contains_key(key),
        })
    }

    /// The filter as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn valid_part(part: &str) -> bool {
    !part.is_empty() && !part.contains(['=', '!', ',']) && part.trim() == part
}

impl FromStr for TagFilter {
    type Err = FilterError;

    fn from_str(source: &str) -> Result<Self, FilterError> {
        let fail = |reason: String| FilterError { filter: source.to_owned(), reason };
        let mut clauses = Vec::new();
        if source.trim().is_empty() {
            return Ok(Self { clauses, source: String::new() });
        }
        for raw in source.split(',') {
            let clause = raw.trim();
            let parsed = if let Some((key, value)) = clause.split_once("!=") {
                Clause::NotEquals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = clause.split_once('=') {
                Clause::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else {
                Clause::Present(clause.to_owned())
            };
            let ok = match &parsed {
                Clause::Equals(k, v) | Clause::NotEquals(k, v) => valid_part(k) && valid_part(v),
                Clause::Present(k) => valid_part(k),
            };
            if !ok {
                return Err(fail(format!("clause `{clause}` needs a non-empty key and value without `=`, `!` or `,`")));
            }
            clauses.push(parsed);
        }
        Ok(Self { clauses, source: source.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_comma_means_and() {
        let filter: TagFilter = "role=worker,zone=eu-1".parse().unwrap();
        assert!(filter.matches(&tags(&[("role", "worker"), ("zone", "eu-1")])));
        assert!(!filter.matches(&tags(&[("role", "worker"), ("zone", "us-1")])), "every clause must hold");
        assert!(!filter.matches(&tags(&[("role", "worker")])));
    }

    #[test]
    fn not_equals_and_presence() {
        let filter: TagFilter = "zone!=us-1, gpu".parse().unwrap();
        assert!(filter.matches(&tags(&[("gpu", "yes")])), "an absent tag is not equal to us-1");
        assert!(!filter.matches(&tags(&[("gpu", "yes"), ("zone", "us-1")])));
        assert!(!filter.matches(&tags(&[("zone", "eu-1")])), "gpu must be present");
    }

    #[test]
    fn the_empty_filter_matches_everything() {
        assert!("".parse::<TagFilter>().unwrap().matches(&tags(&[])));
        assert!(TagFilter::any().matches(&tags(&[("a", "b")])));
    }

    #[test]
    fn malformed_filters_are_clear_errors() {
        for bad in ["role=", "=worker", "role==worker", "role=a,,zone=b", "role!", "a=b=c"] {
            let err = bad.parse::<TagFilter>().unwrap_err();
            assert!(err.to_string().contains(bad), "the error must quote `{bad}`: {err}");
        }
    }
}
