//! SASL PLAIN and SCRAM-SHA-256/512 (RFC 5802) over SaslHandshake v1 and
//! SaslAuthenticate, as Kafka brokers expect them.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

use super::{Connection, NetError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Clone)]
pub struct SaslConfig {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn sasl_error(conn: &Connection, mechanism: Mechanism, detail: impl Into<String>) -> NetError {
    NetError::Sasl {
        broker: conn.broker().to_owned(),
        mechanism: mechanism.name(),
        detail: detail.into(),
    }
}

pub async fn authenticate(conn: &Connection, config: &SaslConfig) -> Result<(), NetError> {
    let m = config.mechanism;
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(m.name()));
    let response = conn.request(&handshake, 1).await?;
    if response.error_code != 0 {
        return Err(sasl_error(
            conn,
            m,
            format!(
                "broker refused the mechanism (error {}); it offers {:?}",
                response.error_code, response.mechanisms
            ),
        ));
    }
    match m {
        Mechanism::Plain => {
            let token = format!("\0{}\0{}", config.username, config.password);
            exchange(conn, m, token.into_bytes()).await.map(|_| ())
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => scram(conn, config).await,
    }
}

/// One SaslAuthenticate round: send our message, return the server's.
async fn exchange(conn: &Connection, m: Mechanism, message: Vec<u8>) -> Result<Vec<u8>, NetError> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
    let (response, _) = conn.request_best(&request, (0, 2)).await?;
    if response.error_code != 0 {
        let message = response.error_message.unwrap_or_default();
        return Err(sasl_error(conn, m, format!("error {}: {message}", response.error_code)));
    }
    Ok(response.auth_bytes)
}

/// What differs between SCRAM-SHA-256 and SCRAM-SHA-512.
struct ScramHash {
    pbkdf2: pbkdf2::Algorithm,
    hmac: hmac::Algorithm,
    digest: &'static digest::Algorithm,
    len: usize,
}

fn scram_hash(m: Mechanism) -> ScramHash {
    if m == Mechanism::ScramSha512 {
        ScramHash {
            pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
            hmac: hmac::HMAC_SHA512,
            digest: &digest::SHA512,
            len: 64,
        }
    } else {
        ScramHash {
            pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
            hmac: hmac::HMAC_SHA256,
            digest: &digest::SHA256,
            len: 32,
        }
    }
}

/// Usernames escape ',' and '=' (RFC 5802 section 5.1).
fn scram_escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn attribute(message: &str, key: char) -> Option<&str> {
    message
        .split(',')
        .find_map(|part| part.strip_prefix(key).and_then(|p| p.strip_prefix('=')))
}

/// The most PBKDF2 iterations a server may ask for: Kafka's own limit for SCRAM
/// credentials. A server asking for more would make each login cost seconds of CPU.
pub const MAX_ITERATIONS: u32 = 16_384;

/// The client side of SCRAM, given the server's first message: returns the client's
/// final message and the server signature to expect.
pub fn scram_client_final(
    m: Mechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>), String> {
    let h = scram_hash(m);
    let nonce = attribute(server_first, 'r').ok_or("server-first has no nonce")?;
    let salt = attribute(server_first, 's').ok_or("server-first has no salt")?;
    let salt = B64.decode(salt).map_err(|e| format!("bad salt: {e}"))?;
    let iterations: u32 = attribute(server_first, 'i')
        .ok_or("server-first has no iteration count")?
        .parse()
        .map_err(|e| format!("bad iteration count: {e}"))?;
    let client_nonce = attribute(client_first_bare, 'r').ok_or("no client nonce")?;
    if !nonce.starts_with(client_nonce) {
        return Err("server nonce does not extend ours".into());
    }
    if iterations > MAX_ITERATIONS {
        return Err(format!(
            "the server asks for {iterations} iterations, more than Kafka's limit of {MAX_ITERATIONS}: refused, since each costs CPU time"
        ));
    }
    let iterations = std::num::NonZeroU32::new(iterations).ok_or("iteration count 0")?;
    let mut salted = vec![0u8; h.len];
    pbkdf2::derive(h.pbkdf2, iterations, &salt, password.as_bytes(), &mut salted);
    let salted_key = hmac::Key::new(h.hmac, &salted);
    let client_key = hmac::sign(&salted_key, b"Client Key");
    let stored_key = digest::digest(h.digest, client_key.as_ref());
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac::sign(&hmac::Key::new(h.hmac, stored_key.as_ref()), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac::sign(&salted_key, b"Server Key");
    let server_signature = hmac::sign(&hmac::Key::new(h.hmac, server_key.as_ref()), auth_message.as_bytes());
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature.as_ref().to_vec(),
    ))
}

async fn scram(conn: &Connection, config: &SaslConfig) -> Result<(), NetError> {
    let m = config.mechanism;
    let mut raw = [0u8; 18];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| sasl_error(conn, m, "no randomness for the nonce"))?;
    let client_first_bare = format!("n={},r={}", scram_escape(&config.username), B64.encode(raw));
    let server_first = exchange(conn, m, format!("n,,{client_first_bare}").into_bytes()).await?;
    let server_first = String::from_utf8_lossy(&server_first).into_owned();
    // The key derivation is thousands of hash rounds: off the async workers, so the
    // other connections' tasks keep running meanwhile.
    let password = config.password.clone();
    let bare = client_first_bare.clone();
    let derived = tokio::task::spawn_blocking(move || scram_client_final(m, &password, &bare, &server_first))
        .await
        .map_err(|e| sasl_error(conn, m, format!("key derivation failed: {e}")))?;
    let (client_final, expected) = derived.map_err(|e| sasl_error(conn, m, e))?;
    let server_final = exchange(conn, m, client_final.into_bytes()).await?;
    let server_final = String::from_utf8_lossy(&server_final).into_owned();
    if let Some(err) = attribute(&server_final, 'e') {
        return Err(sasl_error(conn, m, format!("server says {err}")));
    }
    let verifier = attribute(&server_final, 'v').ok_or_else(|| sasl_error(conn, m, "no server signature"))?;
    if B64.decode(verifier).ok().as_deref() != Some(&expected[..]) {
        return Err(sasl_error(
            conn,
            m,
            "server signature does not match: not the broker we trust",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3 test vector for SCRAM-SHA-256.
    #[test]
    fn scram_sha256_matches_rfc7677() {
        let first = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (last, sig) = scram_client_final(Mechanism::ScramSha256, "pencil", first, server_first).unwrap();
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(B64.encode(sig), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn an_iteration_count_beyond_kafkas_limit_is_refused() {
        let first = "n=user,r=abc";
        let at = |i: u32| format!("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
        assert!(scram_client_final(Mechanism::ScramSha256, "pw", first, &at(MAX_ITERATIONS)).is_ok());
        let refused = scram_client_final(Mechanism::ScramSha256, "pw", first, &at(MAX_ITERATIONS + 1));
        assert!(refused.unwrap_err().contains("Kafka's limit"));
        assert!(scram_client_final(Mechanism::ScramSha256, "pw", first, &at(u32::MAX)).is_err());
    }

    #[test]
    fn escapes_usernames() {
        assert_eq!(scram_escape("a=b,c"), "a=3Db=2Cc");
    }
}
