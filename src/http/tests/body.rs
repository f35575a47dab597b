//! The gateway's raw bodies: RPCs answering `google.api.HttpBody` (the Files API's
//! DownloadFile) against the fake gRPC service.

use super::*;
use crate::pb::google_api::HttpBody;

fn chunk(content_type: &str, data: &'static [u8]) -> Frame<Bytes> {
    let message = HttpBody {
        content_type: content_type.into(),
        data: Bytes::from_static(data),
        extensions: Vec::new(),
    };
    Frame::data(encode_frame(&message.encode_to_vec()).expect("frame"))
}

const DOWNLOAD: &str = "/v1/sessions/s1/files:download?path=a%2Fb.txt";

#[tokio::test]
async fn chunks_become_one_typed_body() {
    let fake = fake(|_| {
        streamed(
            grpc_headers(),
            vec![
                chunk("text/plain; charset=utf-8", b""),
                chunk("", b"hello "),
                chunk("", b"world"),
                Frame::trailers(status_headers(tonic::Code::Ok, "")),
            ],
            false,
            None,
        )
    });
    let response = gateway(&fake)
        .handle(request(Method::GET, DOWNLOAD, ""))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(read_all(response).await, "hello world");
    let call = only_call(&fake);
    assert_eq!(call.path, "/octo.v1.FileService/DownloadFile");
    let req = pb::DownloadFileRequest::decode(call.message).expect("request");
    assert_eq!(
        (req.session.as_str(), req.path.as_str()),
        ("sessions/s1", "a/b.txt")
    );
}

#[tokio::test]
async fn no_type_is_octet_stream_and_an_error_first_is_json() {
    let typeless = fake(|_| {
        streamed(
            grpc_headers(),
            vec![
                chunk("", b"\x00\x01"),
                Frame::trailers(status_headers(tonic::Code::Ok, "")),
            ],
            false,
            None,
        )
    });
    let response = gateway(&typeless)
        .handle(request(Method::GET, DOWNLOAD, ""))
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&bytes[..], b"\x00\x01");

    let failing =
        fake(|_| trailers_only(status_headers(tonic::Code::NotFound, "file nope not found")));
    let (status, headers, json) = body_json(
        gateway(&failing)
            .handle(request(Method::GET, DOWNLOAD, ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(json["message"], "file nope not found");
}

#[tokio::test]
async fn an_error_after_the_first_byte_breaks_the_body() {
    let fake = fake(|_| {
        streamed(
            grpc_headers(),
            vec![
                chunk("application/octet-stream", b"partial"),
                Frame::trailers(status_headers(tonic::Code::Internal, "disk gone")),
            ],
            false,
            None,
        )
    });
    let response = gateway(&fake)
        .handle(request(Method::GET, DOWNLOAD, ""))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert_eq!(
        first.into_data().expect("data"),
        Bytes::from_static(b"partial")
    );
    let failed = body.frame().await.expect("an outcome");
    assert!(failed.is_err(), "the body fails rather than ending cleanly");
}

#[tokio::test]
async fn downloads_take_no_access_token_parameter() {
    let fake = fake(|_| unreachable!("rejected before the call"));
    let (status, _, json) = body_json(
        gateway(&fake)
            .handle(request(
                Method::GET,
                &format!("{DOWNLOAD}&access_token=t"),
                "",
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json["details"][0]["fieldViolations"][0]["field"],
        "access_token"
    );
}
