//! OTLP over gRPC: tonic's HTTP/2 client on a runtime of the exporter's thread of its own.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::transport::{Channel, Endpoint};

use super::export::TIMEOUT;

/// A connection (made lazily) to the collector's gRPC services.
pub(crate) struct Client {
    rt: tokio::runtime::Runtime,
    channel: Channel,
}

fn request<T>(msg: T, headers: &BTreeMap<String, String>) -> Result<tonic::Request<T>, String> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(TIMEOUT);
    for (k, v) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("header `{k}`: {e}"))?;
        let value = v
            .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
            .map_err(|e| format!("header `{k}`: {e}"))?;
        req.metadata_mut().insert(key, value);
    }
    Ok(req)
}

impl Client {
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("no runtime for gRPC: {e}"))?;
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("`{url}`: {e}"))?
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT);
        let channel = {
            let _guard = rt.enter();
            endpoint.connect_lazy()
        };
        Ok(Self { rt, channel })
    }

    pub(crate) fn traces(
        &mut self,
        msg: ExportTraceServiceRequest,
        headers: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let req = request(msg, headers)?;
        let mut c = TraceServiceClient::new(self.channel.clone());
        self.rt
            .block_on(async { tokio::time::timeout(TIMEOUT, c.export(req)).await })
            .map_err(|_| "the collector did not answer in time (gRPC)".to_string())?
            .map(|_| ())
            .map_err(|e| format!("gRPC export of traces: {}", e.message()))
    }

    pub(crate) fn metrics(
        &mut self,
        msg: ExportMetricsServiceRequest,
        headers: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let req = request(msg, headers)?;
        let mut c = MetricsServiceClient::new(self.channel.clone());
        self.rt
            .block_on(async { tokio::time::timeout(TIMEOUT, c.export(req)).await })
            .map_err(|_| "the collector did not answer in time (gRPC)".to_string())?
            .map(|_| ())
            .map_err(|e| format!("gRPC export of metrics: {}", e.message()))
    }
}
