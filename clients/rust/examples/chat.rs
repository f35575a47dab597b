//! The Rust client of Octo: the crate's generated tonic client, `octo::pb`.
//!
//! Creates a session, streams a chat to its terminal event, resumes the stream from a
//! sequence, and shows an error's google.rpc details:
//!
//! ```sh
//! octo serve --demo &                       # in another terminal
//! cargo run --example chat -- "hello there" # OCTO_SERVER, OCTO_TOKEN, OCTO_CA_CERT as for the CLI
//! ```

use octo::pb::{
    self, chat_service_client::ChatServiceClient, session_event::Kind,
    session_service_client::SessionServiceClient,
};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig},
};
use tonic_types::StatusExt;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server =
        std::env::var("OCTO_SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let server = if server.contains("://") {
        server
    } else {
        format!("http://{server}")
    };
    let token = match std::env::var("OCTO_TOKEN") {
        Ok(token) if !token.is_empty() => Some(format!("Bearer {token}").parse()?),
        _ => None,
    };
    let prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let prompt = if prompt.is_empty() {
        "hello from Rust".to_owned()
    } else {
        prompt
    };

    // Connect: one HTTP/2 channel shared by every service client: h2c for http://, TLS
    // for https:// (the system's roots, plus the PEM file named by OCTO_CA_CERT).
    let mut endpoint = Channel::from_shared(server)?;
    if endpoint.uri().scheme_str() == Some("https") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Ok(path) = std::env::var("OCTO_CA_CERT") {
            tls = tls.ca_certificate(Certificate::from_pem(std::fs::read(path)?));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint.connect().await?;
    let auth = Bearer(token);
    let mut sessions: SessionServiceClient<Authed> =
        SessionServiceClient::with_interceptor(channel.clone(), auth.clone());
    let mut chat: ChatServiceClient<Authed> = ChatServiceClient::with_interceptor(channel, auth);

    // Create a session.
    let session = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                display_name: "rust example".to_owned(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    println!("session: {}", session.name);

    // Stream a chat: the stream ends after the turn's terminal turn_finished event.
    let mut stream = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![pb::Part {
                kind: Some(pb::part::Kind::Text(prompt)),
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut text = String::new();
    let mut first_delta = None;
    while let Some(event) = stream.message().await? {
        match event.kind {
            Some(Kind::TextDelta(delta)) => {
                first_delta.get_or_insert(event.sequence);
                text.push_str(&delta.text);
            }
            Some(Kind::TurnFinished(finished)) => {
                let status = finished.turn.map(|t| t.status()).unwrap_or_default();
                println!("reply: {text}\nturn: {}", status.as_str_name());
            }
            _ => {}
        }
    }

    // Resume: a snapshot, then every event after a sequence (then live events).
    if let Some(after) = first_delta {
        let mut resumed = chat
            .stream_events(pb::StreamEventsRequest {
                session: session.name.clone(),
                after_sequence: after,
            })
            .await?
            .into_inner();
        let mut rest = String::new();
        while let Some(event) = resumed.message().await? {
            match event.kind {
                Some(Kind::TextDelta(delta)) => rest.push_str(&delta.text),
                Some(Kind::TurnFinished(_)) => break, // the stream goes on: stop here
                _ => {}
            }
        }
        println!("resumed after {after}: {rest}");
    }

    // Errors carry google.rpc details (ErrorInfo, ResourceInfo, BadRequest).
    let missing = "sessions/019a0000-0000-7000-8000-000000000000";
    match sessions
        .get_session(pb::GetSessionRequest {
            name: missing.to_owned(),
        })
        .await
    {
        Ok(_) => anyhow::bail!("{missing} should not exist"),
        Err(status) => {
            let details = status.get_error_details();
            let reason = details.error_info().map(|i| i.reason.as_str());
            let resource = details.resource_info().map(|r| r.resource_name.as_str());
            println!(
                "error: {:?} reason={} resource={}",
                status.code(),
                reason.unwrap_or(""),
                resource.unwrap_or("")
            );
        }
    }
    Ok(())
}
