//! The one error type of the config layer: which key, what value, what was expected.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    // The reason is part of the message, not a `source`: error reports that print the
    // chain would print it twice.
    #[error("cannot read config {path}: {reason}")]
    Read { path: String, reason: std::io::Error },
    #[error("config is not valid TOML for strait: {0}")]
    Parse(String),
    #[error("config key `{key}` = {value}: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: String,
    },
    #[error("secret for `{key}`: {detail}")]
    Secret { key: String, detail: String },
}

pub(crate) fn invalid(
    key: impl Into<String>,
    value: impl std::fmt::Display,
    expected: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}
