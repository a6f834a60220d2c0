//! DescribeConfigs, versions 1 to 4: each resource's configs with their source, so the
//! mirror can copy the ones set on a topic itself. Synonyms and documentation are
//! skipped.

use kafka_protocol::messages::DescribeConfigsRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub config_source: i8,
    pub is_sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigsResult {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub configs: Vec<ConfigEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsResponse {
    pub results: Vec<ConfigsResult>,
}

impl Decode for DescribeConfigsResponse {
    const API: &'static str = "DescribeConfigs";
    const WHAT: &'static str = "DescribeConfigs response";
    const VERSIONS: (i16, i16) = (1, 4);
    const FIRST_FLEXIBLE: i16 = 4;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let count = b.array_len(2 + b.min_string() + 1 + b.min_string() + b.min_array() + b.min_tags())?;
        let mut results = Vec::new();
        for _ in 0..count {
            results.push(read_result(b, version)?);
        }
        Ok(DescribeConfigsResponse { results })
    }
}

fn read_result(b: &mut Body<'_>, version: i16) -> Result<ConfigsResult, WireError> {
    let error_code = b.i16()?;
    let error_message = b.string()?;
    let _resource_type = b.i8()?;
    b.skip_string()?; // resource name: strait asks about one topic at a time
    let count = b.array_len(2 * b.min_string() + 3 + b.min_array() + b.min_tags())?;
    let mut configs = Vec::new();
    for _ in 0..count {
        configs.push(read_config(b, version)?);
    }
    b.tagged_fields()?;
    Ok(ConfigsResult {
        error_code,
        error_message,
        configs,
    })
}

fn read_config(b: &mut Body<'_>, version: i16) -> Result<ConfigEntry, WireError> {
    let name = b.string()?.unwrap_or_default();
    let value = b.string()?;
    let _read_only = b.bool()?;
    let config_source = b.i8()?;
    let is_sensitive = b.bool()?;
    let synonyms = b.array_len(2 * b.min_string() + 1 + b.min_tags())?;
    for _ in 0..synonyms {
        b.skip_string()?; // name
        b.skip_string()?; // value
        let _source = b.i8()?;
        b.tagged_fields()?;
    }
    if version >= 3 {
        let _config_type = b.i8()?;
        b.skip_string()?; // documentation
    }
    b.tagged_fields()?;
    Ok(ConfigEntry {
        name,
        value,
        config_source,
        is_sensitive,
    })
}

impl Answered for DescribeConfigsRequest {
    type Answer = DescribeConfigsResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
    };

    use super::super::testing::*;
    use super::*;

    fn config(
        version: i16,
        name: &str,
        value: Option<&str>,
        source: i8,
        sensitive: bool,
    ) -> DescribeConfigsResourceResult {
        let synonym = DescribeConfigsSynonym::default()
            .with_name(s("log.retention.ms"))
            .with_value(Some(s("604800000")))
            .with_source(5);
        let mut c = DescribeConfigsResourceResult::default()
            .with_name(s(name))
            .with_value(value.map(s))
            .with_read_only(true)
            .with_config_source(source)
            .with_is_sensitive(sensitive)
            .with_synonyms(vec![synonym]);
        if version >= 3 {
            c = c
                .with_config_type(5)
                .with_documentation(Some(s("How long to keep a log.")));
        }
        c
    }

    fn sample(version: i16) -> kafka_protocol::messages::DescribeConfigsResponse {
        let configs = vec![
            config(version, "retention.ms", Some("86400000"), 1, false),
            config(version, "sasl.jaas.config", None, 1, true),
            config(version, "segment.bytes", Some("1073741824"), 5, false),
        ];
        let ok = DescribeConfigsResult::default()
            .with_resource_type(2)
            .with_resource_name(s("events"))
            .with_configs(configs);
        let failed = DescribeConfigsResult::default()
            .with_error_code(3)
            .with_error_message(Some(s("unknown topic")))
            .with_resource_type(2)
            .with_resource_name(s("gone"));
        kafka_protocol::messages::DescribeConfigsResponse::default()
            .with_throttle_time_ms(7)
            .with_results(vec![ok, failed])
    }

    #[test]
    fn every_version_reads_names_values_and_sources() {
        for version in 1..=4 {
            let r: DescribeConfigsResponse = decode_all(&encode(&sample(version), version), version);
            assert_eq!(r.results.len(), 2);
            let got: Vec<_> = r.results[0]
                .configs
                .iter()
                .map(|c| (c.name.as_str(), c.value.as_deref(), c.config_source, c.is_sensitive))
                .collect();
            assert_eq!(
                got,
                [
                    ("retention.ms", Some("86400000"), 1, false),
                    ("sasl.jaas.config", None, 1, true),
                    ("segment.bytes", Some("1073741824"), 5, false)
                ],
                "v{version}"
            );
            assert_eq!(r.results[0].error_code, 0);
            assert_eq!(r.results[1].error_code, 3);
            assert_eq!(r.results[1].error_message.as_deref(), Some("unknown topic"));
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<DescribeConfigsResponse>(|_| vec![0; 4]);
        // v1: one result for topic "t" with one config "n" = null whose synonym count
        // is i32::MAX.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 2, 0, 1, b't', 0, 0, 0, 1];
        body.extend_from_slice(&[0, 1, b'n', 0xff, 0xff, 0, 1, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(matches!(
            refused::<DescribeConfigsResponse>(&body, 1),
            WireError::Truncated { .. }
        ));
    }
}
