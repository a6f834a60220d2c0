//! strait's protocol tests, in one binary: the wire layer against batches from real
//! producers, the client and the mirror against real brokers (librdkafka's mock cluster,
//! Tansu) and real clients (confluent-kafka, kafka-python, kcat); the deployment files in deploy/
//! against the Kubernetes schemas, systemd and the binary.

mod cli;
mod client;
mod container;
mod dashboard;
mod deploy;
mod distance;
mod faults;
mod golden;
mod group_fencing;
mod group_settings;
mod harness;
mod metrics;
mod mirror;
mod otlp;
mod probe;
mod proxy;
mod proxy_answers;
mod proxy_deadlines;
mod proxy_faults;
mod proxy_fds;
mod proxy_leaders;
mod proxy_listeners;
mod reload;
mod scale_out;
mod security;
mod stalls;
mod transactions_client;
