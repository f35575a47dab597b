//! Server-side titles: an untitled session is named from its first message when its
//! first turn starts, for every client (the event stream and the session list say so);
//! a session with a title keeps it.

use octo::pb;

use crate::common::{self, TestServer};

fn session_updated(event: &pb::SessionEvent) -> Option<&pb::Session> {
    match &event.kind {
        Some(pb::session_event::Kind::SessionUpdated(updated)) => updated.session.as_ref(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untitled_session_is_named_after_its_first_message() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let mut chat = server.chat().await;
    let session = common::create(&mut sessions, "").await;
    assert_eq!(session.display_name, "");
    let mut events = common::subscribe(&mut chat, &session.name, 0).await;

    let first = "  Summarise the quarterly\n report   for the core team ";
    let sent = common::send_text(&mut chat, &session.name, first, pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    let turn = common::sent_turn(&sent);
    let seen = common::collect_until(&mut events, common::finishes(&turn.name)).await;
    let title = "Summarise the quarterly report for the core team";
    assert!(
        seen.iter()
            .filter_map(session_updated)
            .any(|s| s.display_name == title),
        "no session_updated carried the title: {:?}",
        common::kinds(&seen)
    );
    let listed = sessions
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.sessions[0].display_name, title);

    // The second message does not rename it.
    let sent = common::send_text(
        &mut chat,
        &session.name,
        "something else",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("send");
    common::collect_until(
        &mut events,
        common::finishes(&common::sent_turn(&sent).name),
    )
    .await;
    let got = sessions
        .get_session(pb::GetSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.display_name, title);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_titled_session_keeps_its_title_and_long_messages_are_cut_at_a_word() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let mut chat = server.chat().await;

    let named = common::create(&mut sessions, "mine").await;
    let untitled = common::create(&mut sessions, "").await;
    let long = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron";
    for (session, text) in [(&named, "hello there"), (&untitled, long)] {
        let mut events = common::subscribe(&mut chat, &session.name, 0).await;
        let sent = common::send_text(&mut chat, &session.name, text, pb::BusyPolicy::Enqueue)
            .await
            .expect("send");
        common::collect_until(
            &mut events,
            common::finishes(&common::sent_turn(&sent).name),
        )
        .await;
    }
    let get = |name: String| {
        let mut sessions = sessions.clone();
        async move {
            sessions
                .get_session(pb::GetSessionRequest { name })
                .await
                .expect("get")
                .into_inner()
                .display_name
        }
    };
    assert_eq!(get(named.name.clone()).await, "mine");
    let cut = get(untitled.name.clone()).await;
    assert_eq!(
        cut,
        "alpha beta gamma delta epsilon zeta eta theta iota kappa…"
    );
    assert!(cut.chars().count() <= 60);
}
