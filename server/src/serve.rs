//! Accepting and serving connections, with the limits a public server needs against clients that
//! hold sockets without finishing requests (slowloris): a deadline from accept to the first
//! request, a header-read timeout, an idle limit on every connection (HTTP/2 included), a cap on
//! request heads (431), a body deadline (`body_deadline`, in `startup::router`), and a cap on
//! concurrent connections.

use std::{
    future::Future,
    net::SocketAddr,
    pin::{pin, Pin},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    Router,
};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulConnection},
    service::TowerToHyperService,
};
use signoff::client_addr::{counting_key, is_trusted_proxy, Cidr};
use tokio::{
    net::TcpListener,
    sync::{watch, Semaphore},
};
use tower::ServiceExt;

/// The largest request head served (request line and headers): Signoff's own cookies and headers
/// take a few kilobytes; a larger head is answered 431 (HTTP/1) or refused (HTTP/2).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// HTTP/2: how often an idle-looking connection is pinged, and how long the answer may take.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection asked to close that has not closed by then is dropped: it has no request
/// in flight, and HTTP/2's closing handshake (GOAWAY, then a PING the client must answer) would
/// otherwise let a client that never answers keep it.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `SERVER_MAX_CONNECTIONS`, `SERVER_HEADER_READ_TIMEOUT`, `SERVER_IDLE_TIMEOUT`. (The event
/// streams' budget and a body's deadline are Signoff's: `signoff::Config`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; a further one is answered 503 at once and closed.
    pub max_connections: usize,
    /// Of those, the most one client address (IPv4, or IPv6 /64) may hold: its next one is
    /// answered 503 at once. Trusted proxies (`TRUSTED_PROXIES`) are not limited: they carry
    /// many clients.
    pub max_connections_per_client: usize,
    /// How long a client may take to send a request's headers before the connection is closed:
    /// from the moment it is accepted for the first request (the bytes that tell HTTP/1 from
    /// HTTP/2 included), from the first byte of the head for later ones.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight stays open (kept-alive HTTP/1, HTTP/2).
    pub idle_timeout: Duration,
}

impl ServerLimits {
    /// The default share of one client address: an eighth of the slots.
    pub fn default_share(max_connections: usize) -> usize {
        (max_connections / 8).max(1)
    }

    /// The default budget of event streams (`EVENT_STREAM_MAX_TOTAL`, a budget of their own
    /// inside `max_connections`): a quarter of the slots, so that pages held open leave slots
    /// for ordinary requests.
    pub fn default_stream_budget(max_connections: usize) -> usize {
        (max_connections / 4).max(1)
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_client: Self::default_share(1024),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for the
/// connections in flight to finish their requests. Each request carries the peer address
/// (`ConnectInfo<SocketAddr>`). A connection over the cap, or over its address's share, is
/// answered `503` with `Retry-After` at once and closed: it never waits in the backlog.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    trusted_proxies: Vec<Cidr>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let shares = Shares::new(limits.max_connections_per_client, trusted_proxies);
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    // Tells every connection to finish its requests in flight and close.
    let (stop, stopping) = watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let mut shutdown = pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let admitted = shares
            .take(peer.ip())
            .and_then(|share| Some((share, Arc::clone(&permits).try_acquire_owned().ok()?)));
        let Some((share, permit)) = admitted else {
            refuse(stream, &refusals);
            continue;
        };
        let (activity, in_flight) = watch::channel(0usize);
        let activity = Arc::new(activity);
        let router = router.clone();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // Held until the response body is done (or the request is dropped): the
            // connection is busy until then, however long a stream lasts.
            let busy = Busy::enter(&activity);
            let response = router.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Body::new(BusyBody { inner: body, busy })),
                )
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            close_when_idle(connection, in_flight, stopping, limits).await;
            drop(share);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it has ended: all of them back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// Runs `connection` until it ends, closing it once it has had no request in flight for
/// `idle_timeout`, or (before its first request) for `header_read_timeout` from the accept: a
/// socket that sends nothing, or only part of the HTTP/2 preface, is closed on time (hyper's own
/// header timer starts only once the protocol is known). A closed idle connection gets
/// [`CLOSE_GRACE`] to finish (HTTP/2 sends GOAWAY), then is dropped. When the server stops, the
/// connection finishes its requests in flight and closes.
async fn close_when_idle<C>(
    connection: C,
    mut in_flight: watch::Receiver<usize>,
    mut stopping: watch::Receiver<bool>,
    limits: ServerLimits,
) where
    C: GracefulConnection<Error = Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = pin!(connection);
    let mut deadline = limits.header_read_timeout;
    let idle = loop {
        let busy = *in_flight.borrow_and_update() > 0;
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            changed = in_flight.changed() => {
                if changed.is_err() {
                    break true;
                }
                // Activity: the next quiet spell is measured from now, with the idle limit.
                deadline = limits.idle_timeout;
            }
            _ = stopping.wait_for(|stop| *stop) => break false,
            () = tokio::time::sleep(deadline), if !busy => break true,
        }
    };
    connection.as_mut().graceful_shutdown();
    if idle {
        tracing::debug!("closing an idle connection");
        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
    } else {
        let _ = connection.await;
    }
}

/// Files the process needs besides its client connections: the listener, the database's files
/// and sockets beyond the pools, logs, the static files being served, the resolver.
const FD_RESERVE: u64 = 256;

/// The open-file limit could not be raised to what the connection cap needs.
#[derive(Debug, thiserror::Error)]
#[error(
    "SERVER_MAX_CONNECTIONS={max_connections} needs {needed} open files, but this process may \
     open at most {hard} (RLIMIT_NOFILE hard limit): lower SERVER_MAX_CONNECTIONS, or raise the \
     limit (`ulimit -Hn`, systemd `LimitNOFILE=`)"
)]
pub struct FileLimitError {
    max_connections: usize,
    needed: u64,
    hard: u64,
}

/// Raises the process's soft open-file limit (`RLIMIT_NOFILE`) to what `limits` and
/// `database_connections` need, so that clients can never make the server run out of file
/// descriptors (`accept` failing with `EMFILE`, and the database and files with it). Returns
/// the soft limit in force. Fails when the hard limit is too low: better a clear refusal to
/// start than a server that falls over under load.
#[cfg(unix)]
pub fn ensure_file_limit(
    limits: &ServerLimits,
    database_connections: u32,
) -> Result<u64, FileLimitError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

    let needed = (limits.max_connections + REFUSALS_AT_ONCE) as u64
        + 2 * u64::from(database_connections)
        + FD_RESERVE;
    let current = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let soft = current.current.unwrap_or(u64::MAX);
    let hard = current.maximum.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(soft);
    }
    let refused = FileLimitError {
        max_connections: limits.max_connections,
        needed,
        hard,
    };
    if hard < needed {
        return Err(refused);
    }
    // Raising the soft limit up to the hard one needs no privilege.
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: current.maximum,
        },
    )
    .map_err(|_| refused)?;
    tracing::info!(from = soft, to = needed, "raised the open-file limit");
    Ok(needed)
}

/// Elsewhere the limit is the platform's business.
#[cfg(not(unix))]
pub fn ensure_file_limit(
    limits: &ServerLimits,
    _database_connections: u32,
) -> Result<u64, FileLimitError> {
    Ok(limits.max_connections as u64)
}

/// Refusals being written at once; past that a refused connection is just closed.
const REFUSALS_AT_ONCE: usize = 64;
/// What a refused connection is told (HTTP/1.1; an HTTP/2 client sees its connection closed).
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
    Content-Type: text/plain\r\nContent-Length: 32\r\nConnection: close\r\n\r\n\
    The server is busy; try again.\r\n";

/// Answers a connection that cannot be served with [`REFUSAL`] and closes it, reading (and
/// dropping) what the client already sent for a moment, so that the close is orderly rather
/// than a reset that could lose the answer. Bounded: a flood of refusals costs at most
/// [`REFUSALS_AT_ONCE`] sockets for a second each.
fn refuse(mut stream: tokio::net::TcpStream, refusals: &Arc<Semaphore>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(slot) = Arc::clone(refusals).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(REFUSAL).await?;
            stream.shutdown().await?;
            let mut buffer = [0u8; 4096];
            let mut drained = 0;
            while drained < 64 * 1024 {
                match stream.read(&mut buffer).await? {
                    0 => break,
                    read => drained += read,
                }
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        drop(slot);
    });
}

/// The connections each client address holds, against its share.
#[derive(Clone)]
struct Shares {
    max: usize,
    trusted: Arc<Vec<Cidr>>,
    held: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Shares {
    fn new(max: usize, trusted: Vec<Cidr>) -> Self {
        Self {
            max,
            trusted: Arc::new(trusted),
            held: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when it holds its share already.
    /// A trusted proxy's connections are not counted.
    fn take(&self, ip: std::net::IpAddr) -> Option<Share> {
        if is_trusted_proxy(ip, &self.trusted) {
            return Some(Share(None));
        }
        let key = counting_key(ip);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Share(Some((self.clone(), key))))
    }
}

/// One connection's place in its address's share; given back when the connection ends.
struct Share(Option<(Shares, String)>);

impl Drop for Share {
    fn drop(&mut self) {
        let Some((shares, key)) = self.0.take() else {
            return;
        };
        let mut held = shares.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&key);
            }
        }
    }
}

/// One request in flight on a connection: counted while it lives.
struct Busy(Arc<watch::Sender<usize>>);

impl Busy {
    fn enter(activity: &Arc<watch::Sender<usize>>) -> Self {
        activity.send_modify(|count| *count += 1);
        Self(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct BusyBody {
    inner: Body,
    #[allow(dead_code)] // held for its Drop
    busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The peer address type requests carry.
pub type Peer = ConnectInfo<SocketAddr>;
