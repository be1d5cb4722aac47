//! The throttling proxy: moto never throttles, so quota tests put this HTTP/1.1 proxy between
//! the client and moto. It forwards every request unchanged and relays the answer, except that
//! calls over a token-bucket quota are answered, without forwarding, with HTTP 400
//! `ThrottlingException` exactly as AWS sends it (JSON protocols: `x-amzn-ErrorType` header and
//! `__type` body; query protocols such as STS: the XML `<ErrorResponse>` with code
//! `Throttling`), so the AWS SDK classifies it as throttling.
//!
//! **Echo mode** ([`ThrottleProxy::echo_next`]) plays a proxy, WAF or error page that quotes the
//! request in its error: the next calls of an operation are answered, without forwarding, with
//! an error whose text holds the whole request body ([`Echo::AwsJson`]: an AWS-shaped JSON error
//! whose `message` is the body; [`Echo::Html`]: an HTML page with the body in it, as a WAF
//! sends; [`Echo::Truncated`]: plain text with the first 40 bytes of the body).
//!
//! The operation of a request is the part after the `.` of its `X-Amz-Target` header
//! (`secretsmanager.CreateSecret` -> `CreateSecret`, `TrentService.Decrypt` -> `Decrypt`), else the
//! `Action=` of a form-encoded body or of the query string (STS `AssumeRole`), else `"Other"`.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// Operation name for requests that name none.
pub const OTHER: &str = "Other";

/// Secrets Manager's write group as the AWS quota (and secretport's `write_per_second`) counts it.
pub const WRITE_OPS: &[&str] = &[
    "CreateSecret",
    "PutSecretValue",
    "UpdateSecret",
    "TagResource",
];
/// Secrets Manager's read group as secretport's `read_per_second` counts it.
pub const READ_OPS: &[&str] = &[
    "BatchGetSecretValue",
    "GetSecretValue",
    "DescribeSecret",
    "ListSecrets",
];
/// Prefixes of the operations [`ThrottleProxy::writes_forwarded`] counts as writes.
pub const WRITE_PREFIXES: &[&str] = &[
    "Create",
    "Put",
    "Update",
    "Tag",
    "Untag",
    "Delete",
    "Restore",
    "Replicate",
    "Remove",
];

/// A token bucket: holds up to `burst` tokens, refills at `rate_per_sec`, starts full. Each
/// admitted call takes one token.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket as of `now`.
    pub fn new(rate_per_sec: f64, burst: u32, now: Instant) -> TokenBucket {
        assert!(
            rate_per_sec >= 0.0 && rate_per_sec.is_finite(),
            "bad rate {rate_per_sec}"
        );
        TokenBucket {
            rate_per_sec,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // Time never runs backwards for a bucket: an earlier `now` adds nothing.
        if let Some(elapsed) = now.checked_duration_since(self.last) {
            self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate_per_sec).min(self.burst);
            self.last = now;
        }
    }

    /// Tokens available at `now` (fractional).
    pub fn available_at(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Whether a token is available at `now`, without taking it.
    pub fn can_take_at(&mut self, now: Instant) -> bool {
        // The epsilon absorbs float error at exact refill boundaries (0.2 s at 5/s = 1 token).
        self.available_at(now) + 1e-9 >= 1.0
    }

    /// Takes one token if available at `now`.
    pub fn try_take_at(&mut self, now: Instant) -> bool {
        if self.can_take_at(now) {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    /// [`try_take_at`](Self::try_take_at) now.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }
}

/// A quota: one token bucket shared by a set of operations.
#[derive(Clone, Debug)]
pub struct Quota {
    pub ops: Vec<String>,
    pub rate_per_sec: f64,
    pub burst: u32,
}

impl Quota {
    /// One bucket of `rate_per_sec` (burst `burst`) shared by `ops`.
    pub fn new(ops: &[&str], rate_per_sec: f64, burst: u32) -> Quota {
        Quota {
            ops: ops.iter().map(|s| s.to_string()).collect(),
            rate_per_sec,
            burst,
        }
    }

    /// A bucket for one operation.
    pub fn per_op(op: &str, rate_per_sec: f64, burst: u32) -> Quota {
        Quota::new(&[op], rate_per_sec, burst)
    }

    /// One bucket shared by [`WRITE_OPS`] (CreateSecret, PutSecretValue, UpdateSecret,
    /// TagResource), like AWS's combined write quota.
    pub fn writes(rate_per_sec: f64, burst: u32) -> Quota {
        Quota::new(WRITE_OPS, rate_per_sec, burst)
    }

    /// One bucket shared by [`READ_OPS`].
    pub fn reads(rate_per_sec: f64, burst: u32) -> Quota {
        Quota::new(READ_OPS, rate_per_sec, burst)
    }
}

/// Per-operation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Passed on to the upstream (whatever it then answered).
    pub forwarded: u64,
    /// Answered with a throttling error by the proxy.
    pub throttled: u64,
    /// Answered with an error injected by [`ThrottleProxy::fail_next`].
    pub injected: u64,
}

struct Bucket {
    ops: Vec<String>,
    bucket: TokenBucket,
}

/// How an echoing error quotes the request body (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// AWS-shaped JSON error (`__type` + `message`), the message being the request body.
    AwsJson,
    /// `text/html` page that includes the request body verbatim.
    Html,
    /// `text/plain` with 60 bytes of the request body from its `"SecretString"`/`"SecretBinary"`.
    Truncated,
}

struct Fault {
    remaining: u64,
    status: u16,
    error_type: String,
    echo: Option<Echo>,
    /// Forward the call first (it lands), then answer the error: a lost response.
    forward: bool,
}

/// Answers a forwarded call with an error when its request and response hold given texts.
#[derive(Clone)]
struct Refusal {
    request_has: String,
    response_has: String,
    status: u16,
    code: String,
    message: String,
}

#[derive(Default)]
struct State {
    refusals: Vec<Refusal>,
    buckets: Vec<Bucket>,
    counts: HashMap<String, OpCounts>,
    forwarded_at: HashMap<String, Vec<Instant>>,
    /// First and last time a call of the operation arrived (forwarded, throttled or injected).
    arrivals: HashMap<String, (Instant, Instant)>,
    faults: HashMap<String, Fault>,
    delay: Duration,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    state: Mutex<State>,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    upstream_errors: AtomicU64,
    connections: AtomicU64,
}

enum Decision {
    Forward(Duration),
    Throttle,
    Inject {
        status: u16,
        error_type: String,
        echo: Option<Echo>,
        forward: bool,
    },
}

impl Shared {
    fn decide(&self, op: &str) -> Decision {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let state = &mut *state;
        state
            .arrivals
            .entry(op.to_string())
            .and_modify(|(_, last)| *last = now)
            .or_insert((now, now));
        if let Some(fault) = state.faults.get_mut(op) {
            if fault.remaining > 0 {
                fault.remaining -= 1;
                let decision = Decision::Inject {
                    status: fault.status,
                    error_type: fault.error_type.clone(),
                    echo: fault.echo,
                    forward: fault.forward,
                };
                state.counts.entry(op.to_string()).or_default().injected += 1;
                return decision;
            }
        }
        let mut applicable: Vec<&mut Bucket> = state
            .buckets
            .iter_mut()
            .filter(|b| b.ops.iter().any(|o| o == op))
            .collect();
        let admitted = applicable.iter_mut().all(|b| b.bucket.can_take_at(now));
        let counts = state.counts.entry(op.to_string()).or_default();
        if !admitted {
            counts.throttled += 1;
            return Decision::Throttle;
        }
        for b in applicable {
            b.bucket.try_take_at(now);
        }
        counts.forwarded += 1;
        state
            .forwarded_at
            .entry(op.to_string())
            .or_default()
            .push(now);
        Decision::Forward(state.delay)
    }
}

/// A throttling HTTP/1.1 proxy on `127.0.0.1:<random port>` in front of `upstream` (a moto
/// endpoint). Stops when dropped.
pub struct ThrottleProxy {
    endpoint: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl ThrottleProxy {
    /// Starts the proxy in the current tokio runtime. Operations without a quota pass freely.
    pub async fn start(upstream: &str, quotas: Vec<Quota>) -> ThrottleProxy {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("build proxy's reqwest client");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            http,
            state: Mutex::new(State::default()),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let proxy_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind throttle proxy");
        let endpoint = format!("http://{}", proxy_listener.local_addr().unwrap());
        let proxy = ThrottleProxy {
            endpoint,
            shared: shared.clone(),
            server: tokio::spawn(serve(proxy_listener, shared)),
        };
        proxy.set_quotas(quotas);
        proxy
    }

    /// `http://127.0.0.1:PORT`: point the client's `endpoint_url` here.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The upstream endpoint requests are forwarded to.
    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    /// Replaces the quotas (buckets start full).
    pub fn set_quotas(&self, quotas: Vec<Quota>) {
        let now = Instant::now();
        self.shared.state.lock().unwrap().buckets = quotas
            .into_iter()
            .map(|q| Bucket {
                bucket: TokenBucket::new(q.rate_per_sec, q.burst, now),
                ops: q.ops,
            })
            .collect();
    }

    /// Answers the next `count` calls of `op` with HTTP `status` and AWS error code
    /// `error_type` (e.g. `500`, `"InternalServiceError"`) without forwarding them.
    pub fn fail_next(&self, op: &str, count: u64, status: u16, error_type: &str) {
        self.shared.state.lock().unwrap().faults.insert(
            op.to_string(),
            Fault {
                remaining: count,
                status,
                error_type: error_type.to_string(),
                echo: None,
                forward: false,
            },
        );
    }

    /// Forwards the next `count` calls of `op` (they land upstream) but answers each with HTTP
    /// 500 `InternalServiceError`, as when a response is lost on the way back.
    pub fn lose_responses(&self, op: &str, count: u64) {
        self.shared.state.lock().unwrap().faults.insert(
            op.to_string(),
            Fault {
                remaining: count,
                status: 500,
                error_type: "InternalServiceError".to_string(),
                echo: None,
                forward: true,
            },
        );
    }

    /// Answers the next `count` calls of `op` with HTTP `status` and an error text that quotes
    /// the request body as `echo` says, without forwarding them (a proxy or WAF that echoes).
    pub fn echo_next(&self, op: &str, count: u64, status: u16, echo: Echo) {
        self.shared.state.lock().unwrap().faults.insert(
            op.to_string(),
            Fault {
                remaining: count,
                status,
                error_type: "RequestRejected".to_string(),
                echo: Some(echo),
                forward: false,
            },
        );
    }

    /// From now on, a forwarded call whose request body contains `request_has` and whose
    /// upstream answer contains `response_has` is answered with HTTP `status`, error `code` and
    /// `message` instead (e.g. SSM refusing a decrypting read of a parameter whose KMS key the
    /// caller may not use: moto does not check KMS keys for SecureStrings).
    pub fn refuse_answers(
        &self,
        request_has: &str,
        response_has: &str,
        status: u16,
        code: &str,
        message: &str,
    ) {
        self.shared.state.lock().unwrap().refusals.push(Refusal {
            request_has: request_has.into(),
            response_has: response_has.into(),
            status,
            code: code.into(),
            message: message.into(),
        });
    }

    /// Delays every forwarded request by `delay` before passing it on (makes concurrency
    /// visible in [`peak_in_flight`](Self::peak_in_flight)).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state.lock().unwrap().delay = delay;
    }

    fn counts(&self, op: &str) -> OpCounts {
        self.shared
            .state
            .lock()
            .unwrap()
            .counts
            .get(op)
            .copied()
            .unwrap_or_default()
    }

    /// Calls of `op` passed on to the upstream.
    pub fn forwarded(&self, op: &str) -> u64 {
        self.counts(op).forwarded
    }

    /// Calls of `op` answered with a throttling error.
    pub fn throttled(&self, op: &str) -> u64 {
        self.counts(op).throttled
    }

    /// Calls of `op` answered with an injected error.
    pub fn injected(&self, op: &str) -> u64 {
        self.counts(op).injected
    }

    /// All calls passed on to the upstream.
    pub fn total_forwarded(&self) -> u64 {
        let state = self.shared.state.lock().unwrap();
        state.counts.values().map(|c| c.forwarded).sum()
    }

    /// All calls answered with a throttling error.
    pub fn total_throttled(&self) -> u64 {
        let state = self.shared.state.lock().unwrap();
        state.counts.values().map(|c| c.throttled).sum()
    }

    /// Forwarded calls of write operations (names starting with one of [`WRITE_PREFIXES`]:
    /// Create, Put, Update, Tag, Untag, Delete, Restore, Replicate, Remove).
    pub fn writes_forwarded(&self) -> u64 {
        let state = self.shared.state.lock().unwrap();
        state
            .counts
            .iter()
            .filter(|(op, _)| is_write(op))
            .map(|(_, c)| c.forwarded)
            .sum()
    }

    /// Counters of every operation seen so far.
    pub fn snapshot(&self) -> BTreeMap<String, OpCounts> {
        let state = self.shared.state.lock().unwrap();
        state
            .counts
            .iter()
            .map(|(op, c)| (op.clone(), *c))
            .collect()
    }

    /// The largest number of forwarded calls of `ops` that fell within any window of length
    /// `window` (forward decisions are timestamped as they are made).
    pub fn peak_rate(&self, ops: &[&str], window: Duration) -> u64 {
        let mut times: Vec<Instant> = {
            let state = self.shared.state.lock().unwrap();
            ops.iter()
                .filter_map(|op| state.forwarded_at.get(*op))
                .flatten()
                .copied()
                .collect()
        };
        peak_in_window(&mut times, window)
    }

    /// Time between the first and the last call of `op` that reached the proxy (whatever
    /// happened to them); `None` if none did. Tells a test whether a burst really arrived at once.
    pub fn arrival_span(&self, op: &str) -> Option<Duration> {
        let state = self.shared.state.lock().unwrap();
        state
            .arrivals
            .get(op)
            .map(|(first, last)| last.duration_since(*first))
    }

    /// The most requests the proxy was forwarding at the same time.
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Forwarded requests the upstream did not answer (connection errors; the client got 502).
    pub fn upstream_errors(&self) -> u64 {
        self.shared.upstream_errors.load(Ordering::SeqCst)
    }

    /// Client connections accepted so far (shows whether clients reuse connections).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Zeroes every counter, timestamp and the in-flight peak (quotas and faults stay).
    pub fn reset_counters(&self) {
        let mut state = self.shared.state.lock().unwrap();
        state.counts.clear();
        state.forwarded_at.clear();
        state.arrivals.clear();
        self.shared.peak_in_flight.store(0, Ordering::SeqCst);
        self.shared.upstream_errors.store(0, Ordering::SeqCst);
    }
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.server.abort();
    }
}

/// Whether `op` counts as a write for [`ThrottleProxy::writes_forwarded`].
pub fn is_write(op: &str) -> bool {
    WRITE_PREFIXES.iter().any(|p| op.starts_with(p))
}

/// Max number of `times` inside any window `[t, t + window)`.
pub fn peak_in_window(times: &mut [Instant], window: Duration) -> u64 {
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

/// The operation a request calls (see the module docs).
pub fn operation_name(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = target.rsplit('.').next().unwrap_or(target).trim();
        if !op.is_empty() {
            return op.to_string();
        }
    }
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let from_body = form
        .then(|| std::str::from_utf8(body).ok())
        .flatten()
        .and_then(form_action);
    from_body
        .or_else(|| query.and_then(form_action))
        .unwrap_or_else(|| OTHER.to_string())
}

fn form_action(form: &str) -> Option<String> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "Action")
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "expect"
    )
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, format!("proxy: {e}"))),
    };
    let json_protocol = parts.headers.contains_key("x-amz-target");
    let op = operation_name(&parts.headers, parts.uri.query(), &body);
    let delay = match shared.decide(&op) {
        Decision::Throttle => return Ok(throttling_response(json_protocol)),
        Decision::Inject {
            status,
            error_type,
            echo,
            forward: lost,
        } => {
            if lost {
                let _ = forward(&shared, parts, body.clone(), Duration::ZERO, json_protocol).await;
            }
            return Ok(match echo {
                None => error_response(
                    json_protocol,
                    status,
                    &error_type,
                    "Injected by the test proxy",
                ),
                Some(echo) => echo_response(json_protocol, status, &error_type, echo, &body),
            });
        }
        Decision::Forward(delay) => delay,
    };

    let in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak_in_flight.fetch_max(in_flight, Ordering::SeqCst);
    let result = forward(&shared, parts, body, delay, json_protocol).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(result.unwrap_or_else(|e| {
        shared.upstream_errors.fetch_add(1, Ordering::SeqCst);
        plain(StatusCode::BAD_GATEWAY, format!("proxy: upstream: {e}"))
    }))
}

async fn forward(
    shared: &Shared,
    parts: hyper::http::request::Parts,
    body: Bytes,
    delay: Duration,
    json_protocol: bool,
) -> Result<Response<Full<Bytes>>, reqwest::Error> {
    let refusals = shared.state.lock().unwrap().refusals.clone();
    let request_body = body.clone();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("{}{}", shared.upstream, path);
    let mut headers = parts.headers;
    let names: Vec<HeaderName> = headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in names {
        headers.remove(&name);
    }
    let upstream = shared
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await?;
    let status = upstream.status();
    let mut response_headers = upstream.headers().clone();
    let names: Vec<HeaderName> = response_headers
        .keys()
        .filter(|n| hop_by_hop(n))
        .cloned()
        .collect();
    for name in names {
        response_headers.remove(&name);
    }
    let bytes = upstream.bytes().await?;
    let contains = |hay: &[u8], needle: &str| {
        !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    for r in &refusals {
        if contains(&request_body, &r.request_has) && contains(&bytes, &r.response_has) {
            return Ok(error_response(json_protocol, r.status, &r.code, &r.message));
        }
    }
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

/// An error that quotes `body` (see [`Echo`]).
pub fn echo_response(
    json_protocol: bool,
    status: u16,
    code: &str,
    echo: Echo,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let text = String::from_utf8_lossy(body);
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match echo {
        Echo::AwsJson => error_response(
            json_protocol,
            status,
            code,
            &format!("request rejected by policy: {text}"),
        ),
        Echo::Html => {
            let page = format!(
                "<html><head><title>{status} Request Rejected</title></head><body>\
                 <h1>Request Rejected</h1><p>The request body was:</p><pre>{text}</pre></body></html>"
            );
            let mut r = Response::new(Full::new(Bytes::from(page)));
            *r.status_mut() = status_code;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Echo::Truncated => {
            // what a WAF shows of the part that matched its rule: 60 bytes from the value field
            let from = body.windows(7).position(|w| w == b"\"Secret").unwrap_or(0);
            let cut = &body[from..body.len().min(from + 60)];
            let mut r = plain(
                status_code,
                format!("rejected: {}...", String::from_utf8_lossy(cut)),
            );
            *r.status_mut() = status_code;
            r
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// What AWS answers an over-quota call: HTTP 400 `ThrottlingException` (JSON protocols) or
/// `Throttling` (query protocols such as STS).
pub fn throttling_response(json_protocol: bool) -> Response<Full<Bytes>> {
    if json_protocol {
        error_response(true, 400, "ThrottlingException", "Rate exceeded")
    } else {
        error_response(false, 400, "Throttling", "Rate exceeded")
    }
}

fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An AWS-shaped error: JSON protocols get `x-amzn-ErrorType` plus a `{"__type", "message"}`
/// body (what aws-sdk-rust's JSON error parser reads); query protocols get the XML
/// `<ErrorResponse>` that STS sends.
pub fn error_response(
    json_protocol: bool,
    status: u16,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let request_id = request_id();
    let (content_type, body) = if json_protocol {
        let body = serde_json::json!({ "__type": code, "message": message }).to_string();
        ("application/x-amz-json-1.1", body)
    } else {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
             <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    \
             <Message>{message}</Message>\n  </Error>\n  \
             <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
        );
        ("text/xml", body)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&request_id).expect("ascii request id"),
    );
    if json_protocol {
        if let Ok(value) = HeaderValue::from_str(code) {
            headers.insert("x-amzn-errortype", value);
        }
    }
    response
}
