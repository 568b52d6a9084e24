//! What an open event stream costs the server in memory, counted by the allocator (bytes live,
//! not a timing): viewers must cost (almost) nothing, and 1,000 of them fit in the server's
//! budget (docs/benchmarks.md, "Viewers cost nothing"). A test binary of its own: the counting
//! allocator sees every allocation of the process, so nothing else may run beside it.

mod common;

use std::alloc::System;
use std::time::Duration;

use cap::Cap;
use common::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Opens `GET /api/v1/events` on a connection of its own and returns once the server answered
/// its head (the stream is then open on the server). Raw sockets: the client side of each
/// stream costs a socket and nothing the count would mistake for the server's.
async fn open_stream(addr: std::net::SocketAddr, token: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the stream");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_holds_little_memory_on_the_server() {
    const STREAMS: usize = 300;
    /// Per stream: hyper's read and write buffers (8 KB each), the connection's task, the SSE
    /// body and its broadcast receiver — about 30 KB measured. Handing `axum::serve` the router
    /// itself (rather than `into_make_service`) copied every route and layer per connection:
    /// about 140 KB per stream, and 1,000 viewers cost 179 MB.
    const BUDGET_PER_STREAM: usize = 64 * 1024;

    let h = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The real server loop, as `main` runs it.
    tokio::spawn(deployer::serve(
        listener,
        h.state.clone(),
        std::future::pending(),
    ));
    let hub = h.state.services.hub().clone();

    // Warm-up: one-time allocations (lazy statics, the runtime's, the broadcast's) come first.
    let warm: Vec<TcpStream> =
        futures::future::join_all((0..20).map(|_| open_stream(addr, &h.token))).await;
    drop(warm);
    for _ in 0..100 {
        if hub.subscribers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // As many viewers as it takes: each person may hold STREAMS_PER_PERSON streams.
    let people = STREAMS.div_ceil(deployer::live::STREAMS_PER_PERSON);
    let mut tokens = Vec::with_capacity(people);
    for i in 0..people {
        let name = format!("viewer-{i}");
        tokens.push(h.token_of(&name, &name, "viewer").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let before = ALLOCATOR.allocated();
    let mut streams = Vec::with_capacity(STREAMS);
    for i in 0..STREAMS {
        streams.push(open_stream(addr, &tokens[i % people]).await);
    }
    assert_eq!(hub.subscribers(), STREAMS, "every stream is open");
    let after = ALLOCATOR.allocated();
    let per_stream = after.saturating_sub(before) / STREAMS;
    assert!(
        per_stream < BUDGET_PER_STREAM,
        "an open event stream holds {per_stream} bytes on the server (budget {BUDGET_PER_STREAM}; \
         {STREAMS} streams: {} KB)",
        after.saturating_sub(before) / 1024
    );
    println!("an open event stream holds {per_stream} bytes ({STREAMS} streams)");

    // And it is given back when the viewer leaves (noticed at the latest by the next keep-alive
    // comment, 15 s).
    drop(streams);
    for _ in 0..1_000 {
        if hub.subscribers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.subscribers(), 0, "every stream closed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = ALLOCATOR.allocated().saturating_sub(before);
    assert!(
        left < STREAMS * 4 * 1024,
        "{} KB still held after {STREAMS} streams closed",
        left / 1024
    );
}
