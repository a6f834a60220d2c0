//! Answers a broker gets wrong: the proxy rewrites an answer it understands whole or
//! passes none of it, and cuts what follows the end of its schema, so a broken answer
//! never carries a broker's address to a client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::proxy::proxy;

const SECRET: &[u8] = b"upstream-secret.internal";

/// A broker stand-in that answers every request with `body` behind the request's
/// correlation id.
pub(crate) fn broker_answering(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                loop {
                    let mut len = [0u8; 4];
                    if stream.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
                    if stream.read_exact(&mut frame).is_err() {
                        return;
                    }
                    let mut answer = ((4 + body.len()) as i32).to_be_bytes().to_vec();
                    answer.extend_from_slice(&frame[4..8]);
                    answer.extend_from_slice(&body);
                    if stream.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn string(s: &[u8]) -> Vec<u8> {
    [&(s.len() as i16).to_be_bytes()[..], s].concat()
}

/// A Metadata v1 answer body naming one broker at the secret host.
fn metadata_v1_one_broker() -> Vec<u8> {
    let mut b = 1i32.to_be_bytes().to_vec(); // brokers
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&string(SECRET));
    b.extend_from_slice(&9092i32.to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes()); // rack: null
    b.extend_from_slice(&1i32.to_be_bytes()); // controller
    b.extend_from_slice(&0i32.to_be_bytes()); // topics
    b
}

/// Sends a Metadata v1 request through a proxy in front of a broker answering `body`.
fn ask_metadata_v1(body: Vec<u8>) -> (TcpStream, crate::harness::Strait) {
    let (strait, listen) = proxy(&broker_answering(body), &[]);
    let mut s = TcpStream::connect(&listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut request = 3i16.to_be_bytes().to_vec();
    request.extend_from_slice(&1i16.to_be_bytes());
    request.extend_from_slice(&7i32.to_be_bytes());
    request.extend_from_slice(&string(b"test"));
    request.extend_from_slice(&(-1i32).to_be_bytes()); // all topics
    s.write_all(&[&(request.len() as i32).to_be_bytes()[..], &request].concat())
        .unwrap();
    (s, strait)
}

/// Every byte the client gets before the proxy closes the connection.
fn until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let ended = s.read_to_end(&mut got);
    let timed_out =
        matches!(&ended, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    assert!(!timed_out, "the connection was left open");
    got
}

#[test]
fn answers_that_break_their_schema_close_the_client_connection_and_leak_nothing() {
    let mut null_brokers = (-1i32).to_be_bytes().to_vec(); // v1 allows no null array
    null_brokers.extend_from_slice(&metadata_v1_one_broker()[4 + 4 + 2 + SECRET.len() + 4 + 2..]);
    null_brokers.extend_from_slice(SECRET);
    let mut truncated = metadata_v1_one_broker();
    truncated[..4].copy_from_slice(&2i32.to_be_bytes());
    truncated.extend_from_slice(SECRET);
    for (case, body) in [("null brokers", null_brokers), ("truncated", truncated)] {
        let (s, strait) = ask_metadata_v1(body);
        let got = until_closed(s);
        assert!(got.is_empty(), "{case}: the client got {} bytes", got.len());
        assert!(
            strait.log_shows("cannot rewrite the Metadata v1 answer"),
            "{case}: {}",
            strait.log_text()
        );
        let log = strait.log_text();
        assert!(
            log.contains("upstream 127.0.0.1:") && log.contains("(for client 127.0.0.1:"),
            "{case}: {log}"
        );
        assert!(strait.stop().success());
    }
}

/// Reads one answer.
fn answer(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("an answer");
    let mut got = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut got).expect("the whole answer");
    got
}

/// Bytes after the end of an answer's schema never reach the client: the answer
/// goes on without them.
#[test]
fn bytes_after_the_end_of_an_answer_are_cut() {
    let mut trailing = metadata_v1_one_broker();
    trailing.extend_from_slice(SECRET);
    let (mut s, strait) = ask_metadata_v1(trailing);
    let got = answer(&mut s);
    assert!(!got.windows(SECRET.len()).any(|w| w == SECRET), "{got:?}");
    let proxy_host = b"127.0.0.1";
    let want = 4 + metadata_v1_one_broker().len() - SECRET.len() + proxy_host.len();
    assert_eq!(got.len(), want, "the answer ends where its schema ends");
    assert!(strait.stop().success());
}

/// The same stand-in with a well-formed answer: the client gets it, rewritten.
#[test]
fn a_well_formed_answer_from_the_stand_in_goes_through_rewritten() {
    let (mut s, strait) = ask_metadata_v1(metadata_v1_one_broker());
    let got = answer(&mut s);
    assert!(!got.windows(SECRET.len()).any(|w| w == SECRET));
    assert!(got.windows(9).any(|w| w == b"127.0.0.1"));
    assert!(strait.stop().success());
}
