//! Which source topics a flow copies and what they are called on the target.

use regex::Regex;

use crate::mirror::settings::FlowSettings;

pub struct TopicFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    rename: String,
    source_cluster: String,
    target_cluster: String,
}

impl TopicFilter {
    pub fn new(cfg: &FlowSettings) -> TopicFilter {
        TopicFilter {
            include: cfg.include.clone(),
            exclude: cfg.exclude.clone(),
            rename: cfg.rename.clone(),
            source_cluster: cfg.source_name.clone(),
            target_cluster: cfg.target_name.clone(),
        }
    }

    /// Kafka's internal topics and strait's own start with "__" and are never copied.
    /// Neither is a copy: a topic this flow's template made from its source, or one the
    /// same template made from its target (the other half of an active/active pair),
    /// which would otherwise go round in a loop.
    pub fn selects(&self, topic: &str, internal: bool) -> bool {
        if internal
            || topic.starts_with("__")
            || self.is_renamed(topic, &self.source_cluster)
            || self.is_renamed(topic, &self.target_cluster)
        {
            return false;
        }
        self.include.iter().any(|r| r.is_match(topic)) && !self.exclude.iter().any(|r| r.is_match(topic))
    }

    fn is_renamed(&self, topic: &str, cluster: &str) -> bool {
        let template = self.rename.replace("{source}", cluster);
        let Some((prefix, suffix)) = template.split_once("{topic}") else {
            return false;
        };
        !(prefix.is_empty() && suffix.is_empty())
            && topic.len() > prefix.len() + suffix.len()
            && topic.starts_with(prefix)
            && topic.ends_with(suffix)
    }

    pub fn target_name(&self, topic: &str) -> String {
        self.rename
            .replace("{source}", &self.source_cluster)
            .replace("{topic}", topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::settings::whole_name;

    fn filter(topics: &[&str], exclude: &[&str], rename: &str) -> TopicFilter {
        let compile = |patterns: &[&str]| patterns.iter().map(|p| whole_name(p).unwrap()).collect();
        TopicFilter {
            include: compile(topics),
            exclude: compile(exclude),
            rename: rename.into(),
            source_cluster: "sea".into(),
            target_cluster: "hk".into(),
        }
    }

    #[test]
    fn include_exclude_and_internal_topics() {
        let f = filter(&["events\\..*", ".*logs"], &["events\\.secret"], "{topic}");
        assert!(f.selects("events.click", false));
        assert!(f.selects("applogs", false));
        assert!(!f.selects("events.secret", false));
        assert!(!f.selects("xevents.click", false), "patterns match whole names");
        assert!(!f.selects("__consumer_offsets", true));
        assert!(!f.selects("__strait_heartbeats", false));
    }

    #[test]
    fn rename_and_loop_prevention() {
        let f = filter(&[".*"], &[], "{source}.{topic}");
        assert_eq!(f.target_name("clicks"), "sea.clicks");
        assert!(f.selects("clicks", false));
        assert!(!f.selects("sea.clicks", false), "its own output is never copied back");
        assert!(
            !f.selects("hk.clicks", false),
            "copies from its target are never copied back"
        );
        assert!(f.selects("na.clicks", false), "copies from a third cluster flow on");
    }
}
