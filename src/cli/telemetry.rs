//! Optional span export to an OpenTelemetry collector over OTLP/HTTP (protobuf), plain
//! or over TLS with the same rustls setup as the brokers'.
//!
//! Without an endpoint nothing here runs. The data path's spans are at debug level, so
//! with the usual log filter no layer wants them and each costs one cached callsite
//! check; only this module's layer asks for them, and only when export is on.

use clap::Args;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::path::PathBuf;

use strait::config::{self, Config, TracingConfig};
use strait::net::tls::{client_config, TlsFiles};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::{Layer, Registry};

/// The span export option, shared by `run`, `mirror` and `proxy`.
#[derive(Args)]
pub struct OtlpArgs {
    /// Send spans to the OTLP/HTTP collector at URL (e.g. http://127.0.0.1:4318; spans
    /// go to URL/v1/traces); overrides [tracing] otlp_endpoint in the config. Off by default.
    #[arg(long = "otlp-endpoint", env = "STRAIT_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// PEM CA certificates an https:// collector's certificate must chain to (default:
    /// the system's roots); overrides [tracing] otlp_ca.
    #[arg(long = "otlp-ca", env = "STRAIT_OTLP_CA", value_name = "FILE")]
    pub otlp_ca: Option<String>,
}

impl OtlpArgs {
    /// The tracing settings of `mirror` and `proxy`, which read no config file.
    pub fn tracing(self) -> TracingConfig {
        TracingConfig {
            otlp_endpoint: self.otlp_endpoint,
            otlp_ca: self.otlp_ca,
        }
    }

    /// Puts the option into the config, which then validates it like the file's own.
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if self.otlp_endpoint.is_some() {
            config.tracing.otlp_endpoint.clone_from(&self.otlp_endpoint);
        }
        if self.otlp_ca.is_some() {
            config.tracing.otlp_ca.clone_from(&self.otlp_ca);
        }
        if self.otlp_endpoint.is_some() || self.otlp_ca.is_some() {
            config::validate::validate(config)?;
        }
        Ok(())
    }
}

/// The exporter behind the span layer. Spans wait in a batch on the exporter's own
/// thread; `shutdown` sends what is left.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Builds the exporter for the configured collector. Call it outside the async
    /// runtime: the HTTP client is a blocking one, living on the exporter's thread.
    pub fn start(tracing: &TracingConfig) -> anyhow::Result<Telemetry> {
        let endpoint = tracing.otlp_endpoint.as_deref().unwrap_or_default();
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let cannot = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot set up span export to {url}: {e}");
        let tls = client_config(&TlsFiles {
            ca: tracing.otlp_ca.as_ref().map(PathBuf::from),
            ..TlsFiles::default()
        })
        .map_err(|e| cannot(&e))?;
        let client = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| cannot(&e))?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .build()
            .map_err(|e| cannot(&e))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("strait").build())
            .build();
        Ok(Telemetry { provider })
    }

    /// A layer turning strait's spans (and the events inside them) into OpenTelemetry
    /// spans. It ignores other crates, the exporter's own HTTP client among them, so
    /// exporting never produces spans to export.
    pub fn layer(&self) -> Box<dyn Layer<Registry> + Send + Sync> {
        let tracer = self.provider.tracer("strait");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_threads(false)
            .with_filter(Targets::new().with_target("strait", Level::DEBUG))
            .boxed()
    }

    /// Exports the spans still queued. Blocks until the collector answered or the
    /// exporter gave up, so it runs after the runtime has finished its work.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "spans not exported at shutdown");
        }
    }
}
