//! Request and response headers. Only what is needed to route a frame is read here: the
//! api key, version and correlation id, and where the body starts.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::varint::Reader;
use super::WireError;

/// The routing part of a request header, read from a frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRoute {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads api key, version and correlation id: the first 8 bytes of every request header
/// version, so this works for api keys strait has never heard of.
pub fn request_route(frame: &[u8]) -> Result<RequestRoute, WireError> {
    let mut r = Reader::new(frame, "request header");
    Ok(RequestRoute {
        api_key: r.i16()?,
        api_version: r.i16()?,
        correlation_id: r.i32()?,
    })
}

/// Header version of a request; `None` for an api key kafka-protocol does not know.
pub fn request_header_version(api_key: i16, api_version: i16) -> Option<i16> {
    ApiKey::try_from(api_key)
        .ok()
        .map(|k| k.request_header_version(api_version))
}

/// Header version of a response to the given request.
pub fn response_header_version(api_key: i16, api_version: i16) -> Option<i16> {
    ApiKey::try_from(api_key)
        .ok()
        .map(|k| k.response_header_version(api_version))
}

/// Offset of the request body in a frame: after client id (v1+) and tagged fields (v2).
pub fn request_body_offset(frame: &[u8], header_version: i16) -> Result<usize, WireError> {
    let mut r = Reader::new(frame, "request header");
    r.take(8)?;
    if header_version >= 1 {
        let len = r.i16()?;
        if len > 0 {
            r.take(len as usize)?;
        }
    }
    if header_version >= 2 {
        r.skip_tagged_fields()?;
    }
    Ok(r.position())
}

/// Correlation id of a response frame.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32, WireError> {
    Reader::new(frame, "response header").i32()
}

/// Splits a response frame into (correlation id, body) given its header version.
pub fn split_response(frame: &Bytes, header_version: i16) -> Result<(i32, Bytes), WireError> {
    let mut r = Reader::new(frame, "response header");
    let correlation_id = r.i32()?;
    if header_version >= 1 {
        r.skip_tagged_fields()?;
    }
    Ok((correlation_id, frame.slice(r.position()..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_header_is_an_error_not_a_panic() {
        assert!(request_route(&[0, 3, 0]).is_err());
        assert!(response_correlation_id(&[1, 2]).is_err());
    }

    #[test]
    fn body_offset_skips_client_id_and_tags() {
        // Metadata v9 uses header v2: key, version, correlation, client id "ab", no tags.
        let frame = [0, 3, 0, 9, 0, 0, 0, 7, 0, 2, b'a', b'b', 0, 0xAA];
        let route = request_route(&frame).unwrap();
        assert_eq!(route.correlation_id, 7);
        let hv = request_header_version(3, 9).unwrap();
        assert_eq!(hv, 2);
        assert_eq!(request_body_offset(&frame, hv).unwrap(), 13);
    }

    #[test]
    fn api_versions_response_header_is_v0_even_when_flexible() {
        assert_eq!(response_header_version(18, 3), Some(0));
        assert_eq!(response_header_version(3, 9), Some(1));
        assert_eq!(response_header_version(999, 0), None);
    }
}
