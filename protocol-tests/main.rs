//! strait's protocol tests, in one binary: the wire layer against batches from real
//! producers, the client and the mirror against real brokers (librdkafka's mock cluster,
//! Tansu) and real clients (confluent-kafka, kafka-python, kcat).

mod cli;
mod client;
mod faults;
mod golden;
mod harness;
mod metrics;
mod mirror;
mod otlp;
mod probe;
mod proxy;
mod security;
