//! Tags, one type for every resource kind: what the file wants, what AWS holds, and the diff
//! between them, which says both what to set and what to remove.

use std::collections::{BTreeMap, HashMap};

use crate::config::EnvName;
use crate::names::APP;

/// A resource's tags. Keys under `aws:` belong to AWS and are never read as ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeMap<String, String>);

/// What to change to make one set of tags another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagChanges {
    /// Keys to add or overwrite, with their values.
    pub set: BTreeMap<String, String>,
    /// Keys to remove.
    pub remove: Vec<String>,
}

impl TagChanges {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

impl Tags {
    /// The tags of every resource of an environment: the file's own, then `app` and `env`,
    /// which nothing overrides.
    pub fn for_env(env: &EnvName, file: &BTreeMap<String, String>) -> Tags {
        let mut tags = file.clone();
        tags.insert("app".into(), APP.into());
        tags.insert("env".into(), env.to_string());
        Tags(tags)
    }

    /// Tags as AWS returns them.
    pub fn observed<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
        Tags(pairs.into_iter().filter(|(k, _)| !k.starts_with("aws:")).map(|(k, v)| (k.into(), v.into())).collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether these are the tags of environment `env` of this app: what makes a resource
    /// with one of the environment's names its own.
    pub fn belong_to(&self, env: &EnvName) -> bool {
        self.get("app") == Some(APP) && self.get("env") == Some(env.as_str())
    }

    /// What to set and remove on a resource tagged `have` to make it tagged `self`.
    pub fn changes_from(&self, have: &Tags) -> TagChanges {
        TagChanges {
            set: self
                .0
                .iter()
                .filter(|(k, v)| have.0.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            remove: have.0.keys().filter(|k| !self.0.contains_key(*k)).cloned().collect(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// As Lambda and API Gateway take them.
    pub fn to_map(&self) -> HashMap<String, String> {
        self.0.clone().into_iter().collect()
    }
}

impl TagChanges {
    pub fn set_map(&self) -> HashMap<String, String> {
        self.set.clone().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        Tags::observed(pairs.iter().copied())
    }

    #[test]
    fn a_tag_gone_from_the_file_is_removed_and_a_changed_one_set() {
        let want = tags(&[("app", "promo-codes"), ("team", "growth")]);
        let have = tags(&[("app", "promo-codes"), ("team", "core"), ("old", "x")]);
        let changes = want.changes_from(&have);
        assert_eq!(changes.set, BTreeMap::from([("team".to_owned(), "growth".to_owned())]));
        assert_eq!(changes.remove, ["old"]);
        assert!(want.changes_from(&want).is_empty());
    }

    #[test]
    fn aws_own_tags_are_never_ours_to_remove() {
        let have = tags(&[("aws:cloudformation:stack-name", "s"), ("app", "promo-codes")]);
        assert_eq!(have, tags(&[("app", "promo-codes")]));
    }

    #[test]
    fn a_neighbour_environment_s_tags_are_not_ours() {
        let dev = EnvName::parse("dev").unwrap();
        let dev_eu = EnvName::parse("dev-eu").unwrap();
        let theirs = Tags::for_env(&dev_eu, &BTreeMap::new());
        assert!(theirs.belong_to(&dev_eu));
        assert!(!theirs.belong_to(&dev));
    }
}
