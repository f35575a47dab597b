//! The JSON/HTTP surface, derived from the `google.api.http` annotations in the
//! descriptor set: a generic transcoder that turns a JSON request into the RPC's protobuf
//! request, calls the same gRPC service in-process (so auth, validation and errors are
//! identical on every protocol), and turns the answer back into JSON or, for
//! server-streaming RPCs, `text/event-stream`.

use std::convert::Infallible;

/// The gRPC service the gateway calls in-process: every Octo service behind auth.
pub type GrpcService = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// Placeholder until the transcoder lands: every path is a JSON 404.
#[derive(Clone)]
pub struct JsonGateway {
    _grpc: GrpcService,
}

impl JsonGateway {
    pub fn new(
        _descriptor_set: &[u8],
        grpc: GrpcService,
        _max_body_bytes: usize,
    ) -> Result<Self, String> {
        Ok(Self { _grpc: grpc })
    }

    pub async fn handle(&self, _req: http::Request<tonic::body::Body>) -> http::Response<tonic::body::Body> {
        let mut response = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from_static(br#"{"code":5,"message":"no such route","details":[]}"#),
        )));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        response
    }
}
