//! What each path answers, and who may ask. Every request first: its `Host` exactly the
//! address served (else 421: a page of another site whose name a DNS server rebinds to this
//! address sends its own name). Every `/api/` route then: not from another site
//! (`Sec-Fetch-Site` `cross-site` or `same-site`, or an `Origin` other than the served one:
//! 403, before any work), and with the token printed once (`Authorization: Bearer`, else 401,
//! before any work: another process of this machine reads nothing and takes no stream). The
//! control routes then: there only with `--control` (else 403), `Sec-Fetch-Site` only
//! `same-origin` (or none sent), a JSON body.

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::Served;
use super::data;
use super::http::{self, Answer, Refused, Request};

const PAGE: &str = include_str!("../../../templates/serve/index.html");
const SCRIPT: &str = include_str!("../../../templates/serve/app.js");
const STYLE: &str = include_str!("../../../templates/serve/app.css");

/// Serves one connection: one request, one answer (or the live stream), holding `slot` (one of
/// the connections served at once) until then; a live stream holds one of the streams' slots
/// instead, or is refused (503) when they are all taken.
pub(super) async fn connection(mut stream: TcpStream, served: &Served, slot: OwnedSemaphorePermit) {
    // Let go (closed, no answer) if a newer connection needs the slot before this one's
    // request came whole.
    let (id, let_go) = served.reading();
    let read = tokio::select! {
        r = http::read_request(&mut stream) => Some(r),
        _ = let_go => None,
    };
    served.read(id);
    let Some(read) = read else {
        return;
    };
    let request = match read {
        Ok(r) => r,
        Err(Refused(Some((status, reason)))) => {
            http::write_answer(&mut stream, &Answer::error(status, reason, reason), false).await;
            return;
        }
        Err(Refused(None)) => return,
    };
    let head_only = request.method == "HEAD";
    if let Err(a) = host_is_served(&request, served) {
        http::write_answer(&mut stream, &a, head_only).await;
        return;
    }
    if request.path().starts_with("/api/")
        && let Err(why) = not_cross_site(&request, served, &["same-origin", "none"])
    {
        http::write_answer(
            &mut stream,
            &Answer::error(403, "Forbidden", why),
            head_only,
        )
        .await;
        return;
    }
    if request.path().starts_with("/api/")
        && let Err(a) = carries_the_token(&request, served)
    {
        http::write_answer(&mut stream, &a, head_only).await;
        return;
    }
    if request.method == "GET" && request.path() == "/api/events" {
        let Ok(live) = served.streams.clone().try_acquire_owned() else {
            let busy = Answer::error(
                503,
                "Service Unavailable",
                "too many live streams open: the page reads the status without one",
            );
            http::write_answer(&mut stream, &busy, false).await;
            return;
        };
        drop(slot);
        let cursor = request
            .header("last-event-id")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok());
        super::sse::stream(&mut stream, served, cursor).await;
        let _ = stream.shutdown().await;
        drop(live);
        return;
    }
    // The stream's head, without a stream (red team 8: it answered 404).
    if head_only && request.path() == "/api/events" {
        let head = Answer::new(200, "OK", "text/event-stream; charset=utf-8", Vec::new());
        http::write_answer(&mut stream, &head, true).await;
        return;
    }
    let answer = answer(&request, served).await;
    http::write_answer(&mut stream, &answer, head_only).await;
    drop(slot);
}

/// `Err` (401) unless the request carries the token `orch serve` printed, as its one
/// `Authorization: Bearer`.
fn carries_the_token(r: &Request, served: &Served) -> Result<(), Answer> {
    let sent = match r.header("authorization") {
        Ok(Some(v)) => v.strip_prefix("Bearer ").unwrap_or(""),
        _ => "",
    };
    if same_bytes(sent.as_bytes(), served.token.as_bytes()) {
        Ok(())
    } else {
        Err(Answer::error(
            401,
            "Unauthorized",
            "this server answers the page opened at the address `orch serve` printed, with its #token=",
        ))
    }
}

/// `Err` (421) unless the request names exactly the address served as its one `Host`.
fn host_is_served(r: &Request, served: &Served) -> Result<(), Answer> {
    match r.header("host") {
        Ok(Some(h)) if h == served.authority => Ok(()),
        _ => Err(Answer::error(
            421,
            "Misdirected Request",
            "this server answers only requests for the address it serves",
        )),
    }
}

async fn answer(r: &Request, served: &Served) -> Answer {
    let path = r.path();
    if path.starts_with("/api/")
        && let Err(a) = carries_the_token(r, served)
    {
        return a;
    }
    if let Some(verb) = path.strip_prefix("/api/control/") {
        return control(r, served, verb).await;
    }
    // A `HEAD` is answered as its `GET` is, without the body ([`http::write_answer`]).
    if r.method != "GET" && r.method != "HEAD" {
        return Answer::error(405, "Method Not Allowed", "only GET here");
    }
    match path {
        "/" | "/index.html" => Answer::new(200, "OK", "text/html; charset=utf-8", PAGE),
        "/app.js" => Answer::new(200, "OK", "text/javascript; charset=utf-8", SCRIPT),
        "/app.css" => Answer::new(200, "OK", "text/css; charset=utf-8", STYLE),
        "/api/info" => Answer::json(
            200,
            "OK",
            &json!({"control": served.control, "version": env!("CARGO_PKG_VERSION")}),
        ),
        "/api/status" => super::status::status(served).await,
        "/api/logs" => data::logs(served, r.query("plan"), r.query("task")).await,
        _ => Answer::error(404, "Not Found", "no such page"),
    }
}

/// `POST /api/control/<verb>`: the checks in order, then the verb.
async fn control(r: &Request, served: &Served, verb: &str) -> Answer {
    if !served.control {
        return Answer::error(
            403,
            "Forbidden",
            "this server is read-only: a person starts `orch serve --control` to act from the page",
        );
    }
    if r.method != "POST" {
        return Answer::error(405, "Method Not Allowed", "control is POST only");
    }
    if let Err(why) = not_cross_site(r, served, &["same-origin"]) {
        return Answer::error(403, "Forbidden", why);
    }
    let json_type = matches!(r.header("content-type"), Ok(Some(t)) if t.split(';').next().map(str::trim) == Some("application/json"));
    if !json_type {
        return Answer::error(
            415,
            "Unsupported Media Type",
            "a control request's body is JSON (`Content-Type: application/json`)",
        );
    }
    let args = match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Answer::error(
                400,
                "Bad Request",
                "a control request's body is a JSON object",
            );
        }
    };
    data::control(served, verb, &args).await
}

/// `Err` with why, when the request may come from another site: a `Sec-Fetch-Site` other than
/// those in `sites` (`cross-site`, `same-site`: another port or name of this machine; `none`, a
/// person's own navigation, for reads only), sent twice, or an `Origin` other than the served
/// one (`null` included). Without either header (not a browser's request) it is not refused.
fn not_cross_site(r: &Request, served: &Served, sites: &[&str]) -> Result<(), &'static str> {
    match r.header("sec-fetch-site") {
        Ok(None) => {}
        Ok(Some(s)) if sites.contains(&s) => {}
        _ => return Err("this server answers its own page only (Sec-Fetch-Site)"),
    }
    match r.header("origin") {
        Ok(None) => Ok(()),
        Ok(Some(o)) if o == format!("http://{}", served.authority) => Ok(()),
        _ => Err("this server answers its own page only (Origin)"),
    }
}

/// Whether `a` and `b` are the same, in a time that does not tell where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(control: bool) -> Served {
        Served::new(
            "/nowhere/plans.toml".into(),
            "/nowhere/.orch".into(),
            "127.0.0.1:4000".into(),
            "t0k".into(),
            control,
        )
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            target: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
                .collect(),
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn only_the_served_host_is_answered() {
        let s = served(false);
        for host in [
            Some("evil.example"),
            Some("127.0.0.1.evil:4000"),
            Some("127.0.0.1:4001"),
            Some("localhost:4000"),
            Some("127.0.0.1"),
            None,
        ] {
            let headers: Vec<(&str, &str)> = host.map(|h| vec![("host", h)]).unwrap_or_default();
            let r = request("GET", "/", &headers);
            assert_eq!(
                host_is_served(&r, &s).err().map(|a| a.status),
                Some(421),
                "{host:?}"
            );
        }
        assert!(host_is_served(&request("GET", "/", &[("host", "127.0.0.1:4000")]), &s).is_ok());
        let twice = request(
            "GET",
            "/",
            &[("host", "127.0.0.1:4000"), ("host", "evil.example")],
        );
        assert!(host_is_served(&twice, &s).is_err());
    }

    #[tokio::test]
    async fn every_api_route_needs_the_token_and_the_page_does_not() {
        let h = "127.0.0.1:4000";
        for control in [false, true] {
            let s = served(control);
            for path in [
                "/api/info",
                "/api/status",
                "/api/logs?plan=a&task=1.1",
                "/api/events",
                "/api/control/pause",
                "/api/nowhere",
            ] {
                for method in ["GET", "HEAD", "POST"] {
                    for auth in [
                        None,
                        Some("Bearer "),
                        Some("Bearer t0"),
                        Some("Bearer t0k "),
                        Some("Bearer T0K"),
                        Some("bearer t0k"),
                        Some("t0k"),
                        Some("Basic dDBr"),
                    ] {
                        let mut headers = vec![("host", h), ("content-type", "application/json")];
                        headers.extend(auth.map(|a| ("authorization", a)));
                        let a = answer(&request(method, path, &headers), &s).await;
                        assert_eq!(a.status, 401, "{method} {path} {auth:?}");
                    }
                }
            }
            let twice = request(
                "GET",
                "/api/info",
                &[
                    ("host", h),
                    ("authorization", "Bearer t0k"),
                    ("authorization", "Bearer t0k"),
                ],
            );
            assert_eq!(answer(&twice, &s).await.status, 401);
            let with = request(
                "GET",
                "/api/info",
                &[("host", h), ("authorization", "Bearer t0k")],
            );
            assert_eq!(answer(&with, &s).await.status, 200);
            for path in ["/", "/index.html", "/app.js", "/app.css"] {
                let a = answer(&request("GET", path, &[("host", h)]), &s).await;
                assert_eq!(a.status, 200, "{path}");
            }
        }
    }

    #[tokio::test]
    async fn control_needs_the_flag_the_origin_and_the_token() {
        let bearer = "Bearer t0k";
        let h = "127.0.0.1:4000";
        let ro = served(false);
        let ok = [
            ("host", h),
            ("authorization", bearer),
            ("content-type", "application/json"),
        ];
        assert_eq!(
            answer(&request("POST", "/api/control/pause", &ok), &ro)
                .await
                .status,
            403
        );
        assert_eq!(
            answer(&request("GET", "/api/control/x", &[]), &ro)
                .await
                .status,
            401
        );
        let rw = served(true);
        let cases: [(&[(&str, &str)], u16); 6] = [
            (&[("host", h), ("content-type", "application/json")], 401),
            (
                &[
                    ("host", h),
                    ("authorization", "Bearer nope"),
                    ("content-type", "application/json"),
                ],
                401,
            ),
            (
                &[
                    ("host", h),
                    ("authorization", "t0k"),
                    ("content-type", "application/json"),
                ],
                401,
            ),
            (
                &[
                    ("host", h),
                    ("authorization", bearer),
                    ("origin", "http://evil.example"),
                    ("content-type", "application/json"),
                ],
                403,
            ),
            (
                &[
                    ("host", h),
                    ("authorization", bearer),
                    ("origin", "null"),
                    ("content-type", "application/json"),
                ],
                403,
            ),
            (
                &[
                    ("host", h),
                    ("authorization", bearer),
                    ("sec-fetch-site", "cross-site"),
                    ("content-type", "application/json"),
                ],
                403,
            ),
        ];
        for (headers, status) in cases {
            let a = answer(&request("POST", "/api/control/pause", headers), &rw).await;
            assert_eq!(a.status, status, "{headers:?}");
        }
        let plain = [
            ("host", h),
            ("authorization", bearer),
            ("content-type", "text/plain"),
        ];
        assert_eq!(
            answer(&request("POST", "/api/control/pause", &plain), &rw)
                .await
                .status,
            415
        );
    }
}
