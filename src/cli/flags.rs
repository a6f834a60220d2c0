//! What the one-flow and one-proxy commands share: their flags become a config, which is
//! validated like a file's, and a mistake is then reported by the flag the user typed,
//! not by the config key it became.

use strait::config::ConfigError;

/// A config error about a key set from a flag, told with the flag's name; `flags` pairs
/// config keys (as validation names them, without their indexes) with flags.
pub fn name_the_flag(error: ConfigError, flags: &[(&str, &str)]) -> anyhow::Error {
    if let ConfigError::Invalid { key, value, expected } = &error {
        let bare = without_indexes(key);
        if let Some((_, flag)) = flags.iter().find(|(k, _)| *k == bare) {
            return anyhow::anyhow!("{flag} {value}: expected {expected}");
        }
    }
    error.into()
}

/// `mirror[0].topics[2]` as `mirror.topics`.
fn without_indexes(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut depth = 0;
    for c in key.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Patterns given as one value (an environment variable, or a flag) split at commas that
/// stand outside braces, brackets and parentheses: `a,b` is two patterns, `o{1,2}rders`
/// one. Kafka topic names cannot hold a comma, so no pattern needs one at its top level.
pub fn split_patterns(values: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for value in values {
        let mut depth = 0i32;
        let mut current = String::new();
        let mut escaped = false;
        for c in value.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => depth -= 1,
                ',' if depth <= 0 => {
                    out.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        out.push(current);
    }
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_split_patterns_only_outside_groups() {
        let split = |v: &[&str]| split_patterns(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(split(&["a,b"]), ["a", "b"]);
        assert_eq!(split(&["o{1,2}rders"]), ["o{1,2}rders"]);
        assert_eq!(split(&["x[,]y,(a|b),c"]), ["x[,]y", "(a|b)", "c"]);
        assert_eq!(split(&["a\\,b"]), ["a\\,b"], "an escaped comma stays");
        assert_eq!(split(&["a", "b,c"]), ["a", "b", "c"], "a repeated flag adds patterns");
        assert_eq!(split(&["a,,"]), ["a"]);
    }

    #[test]
    fn a_key_set_from_a_flag_is_told_by_the_flag() {
        let e = ConfigError::Invalid {
            key: "mirror[0].topics[1]".into(),
            value: "\"(\"".into(),
            expected: "a valid regular expression".into(),
        };
        let told = name_the_flag(e, &[("mirror.topics", "--topics")]).to_string();
        assert_eq!(told, "--topics \"(\": expected a valid regular expression");
        let other = ConfigError::Invalid {
            key: "proxy[0].listen".into(),
            value: "x".into(),
            expected: "y".into(),
        };
        assert!(name_the_flag(other, &[]).to_string().contains("proxy[0].listen"));
    }
}
