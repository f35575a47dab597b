//! ChatService with its two event streams, `Chat` and `StreamEvents`, served so that each
//! event is converted and encoded once for all of a session's subscribers. The generated
//! service converts and encodes every event once per subscriber; with 1,000 subscribers
//! that was about 40% of the server's CPU. Every other method goes to the generated
//! service unchanged, and gRPC-Web and the JSON gateway, which call this service, get the
//! same bytes.

use std::{
    convert::Infallible,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes};
use futures::Stream;
use prost::Message;
use tonic::{
    Response, Status,
    body::Body,
    codec::{Codec, EncodeBuf, Encoder},
    server::{Grpc, NamedService, ServerStreamingService},
};
use tower::Service;

use super::chat::{ChatApi, event_pb};
use crate::{pb::chat_service_server::ChatServiceServer, runtime::events::Event};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An event stream as encoded messages.
pub type EncodedEventStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// The event as sent: its `SessionEvent` encoding, shared by every subscriber.
pub fn encoded_event(event: &Event) -> Bytes {
    event
        .wire
        .get_or_encode(|| event_pb(event).encode_to_vec().into())
}

const CHAT: &str = "/octo.v1.ChatService/Chat";
const STREAM_EVENTS: &str = "/octo.v1.ChatService/StreamEvents";

/// The ChatService as mounted on the server.
#[derive(Clone)]
pub struct ChatRoutes {
    api: Arc<ChatApi>,
    generated: ChatServiceServer<ChatApi>,
    max_message_bytes: usize,
}

impl ChatRoutes {
    pub fn new(api: ChatApi, max_message_bytes: usize) -> Self {
        let api = Arc::new(api);
        ChatRoutes {
            generated: ChatServiceServer::from_arc(api.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            api,
            max_message_bytes,
        }
    }

    fn grpc<Req: Message + Default + Send + 'static>(&self) -> Grpc<EncodedCodec<Req>> {
        Grpc::new(EncodedCodec(PhantomData)).apply_max_message_size_config(
            Some(self.max_message_bytes),
            Some(self.max_message_bytes),
        )
    }
}

impl NamedService for ChatRoutes {
    const NAME: &'static str = <ChatServiceServer<ChatApi> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for ChatRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            CHAT => self.serve(request, |api, req| {
                Box::pin(async move { api.chat_events(req, encoded_event).await })
            }),
            STREAM_EVENTS => self.serve(request, |api, req| {
                Box::pin(async move { api.session_events(req, encoded_event).await })
            }),
            _ => self.generated.call(request),
        }
    }
}

type OpenEvents<Req> =
    fn(Arc<ChatApi>, Req) -> BoxFuture<Result<Response<EncodedEventStream>, Status>>;

impl ChatRoutes {
    /// Serves one of the two event streams, opened by `open`, with the encoded codec.
    fn serve<Req: Message + Default + Send + 'static>(
        &self,
        request: http::Request<Body>,
        open: OpenEvents<Req>,
    ) -> BoxFuture<Result<http::Response<Body>, Infallible>> {
        let mut grpc = self.grpc::<Req>();
        let method = EventsMethod {
            api: self.api.clone(),
            open,
        };
        Box::pin(async move { Ok(grpc.server_streaming(method, request).await) })
    }
}

/// `Chat` or `StreamEvents` as tonic calls it: the request and how to open its stream.
struct EventsMethod<Req> {
    api: Arc<ChatApi>,
    open: OpenEvents<Req>,
}

impl<Req> ServerStreamingService<Req> for EventsMethod<Req> {
    type Response = Bytes;
    type ResponseStream = EncodedEventStream;
    type Future = BoxFuture<Result<Response<EncodedEventStream>, Status>>;

    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        (self.open)(self.api.clone(), request.into_inner())
    }
}

/// Decodes the request with prost; writes the already encoded events as they are.
struct EncodedCodec<Req>(PhantomData<Req>);

impl<Req: Message + Default + Send + 'static> Codec for EncodedCodec<Req> {
    type Encode = Bytes;
    type Decode = Req;
    type Encoder = EncodedEncoder;
    type Decoder = tonic_prost::ProstDecoder<Req>;

    fn encoder(&mut self) -> EncodedEncoder {
        EncodedEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

struct EncodedEncoder;

impl Encoder for EncodedEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}
