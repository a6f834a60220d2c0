//! Secrets: written inline, or as `${env:NAME}` or `${file:PATH}` so that the config file
//! itself holds none. A secret never prints: Debug and Display show `<redacted>`.

use serde::Deserialize;

use super::ConfigError;

#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    pub fn new(raw: impl Into<String>) -> Self {
        Secret(raw.into())
    }

    /// Where the secret comes from, for `strait check` output: never the secret itself.
    pub fn source(&self) -> String {
        if self.0.starts_with("${env:") || self.0.starts_with("${file:") {
            self.0.clone()
        } else {
            "inline".to_owned()
        }
    }

    /// The secret's value, reading the environment variable or file it names.
    pub fn resolve(&self, key: &str) -> Result<String, ConfigError> {
        let err = |detail: String| ConfigError::Secret {
            key: key.to_owned(),
            detail,
        };
        if let Some(name) = self.0.strip_prefix("${env:").and_then(|s| s.strip_suffix('}')) {
            return std::env::var(name).map_err(|_| err(format!("environment variable {name} is not set")));
        }
        if let Some(path) = self.0.strip_prefix("${file:").and_then(|s| s.strip_suffix('}')) {
            let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read {path}: {e}")))?;
            return Ok(text.trim_end_matches(['\r', '\n']).to_owned());
        }
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_file_secrets_resolve_and_never_print() {
        std::env::set_var("STRAIT_TEST_SECRET_X", "hunter2");
        let s = Secret::new("${env:STRAIT_TEST_SECRET_X}");
        assert_eq!(s.resolve("k").unwrap(), "hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let dir = std::env::temp_dir().join(format!("strait-secret-{}", std::process::id()));
        std::fs::write(&dir, "pw\n").unwrap();
        let f = Secret::new(format!("${{file:{}}}", dir.display()));
        assert_eq!(f.resolve("k").unwrap(), "pw");
        std::fs::remove_file(dir).unwrap();
        assert!(Secret::new("${env:STRAIT_SURELY_UNSET_VAR}").resolve("k").is_err());
        assert_eq!(Secret::new("inline-pw").source(), "inline");
    }
}
