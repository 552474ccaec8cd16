//! The frame every console page shares: head with inline CSS, navigation, who is signed
//! in, and the response headers that lock the page down (no script may run at all, no
//! framing, no external loads), so even an escaping mistake could not run a script.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use super::html::esc;
use crate::admin::Actor;
use crate::store::State;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Overview,
    Messages,
    Quarantine,
    Directory,
}

const NAV: [(Nav, &str, &str); 4] = [
    (Nav::Overview, "/console", "Overview"),
    (Nav::Messages, "/console/messages", "Messages"),
    (Nav::Quarantine, "/console/quarantine", "Quarantine"),
    (Nav::Directory, "/console/directory", "Directory"),
];

/// No scripts, no external anything; inline `<style>` only; forms post to this origin.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;background:#f4f6f9}
header{background:#1f3a5f;color:#fff;padding:.6rem 1.5rem;display:flex;align-items:center;gap:2rem;flex-wrap:wrap}
header .brand{font-weight:700;font-size:1.1rem}
header nav a{color:#dbe6f5;text-decoration:none;margin-right:1.2rem;padding:.2rem 0}
header nav a.active{color:#fff;border-bottom:2px solid #fff}
header .who{margin-left:auto;font-size:.85rem;color:#c7d4e6}
main{max-width:1280px;margin:0 auto;padding:1.2rem 1.5rem 3rem}
h1{font-size:1.4rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
section.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:1rem 1.2rem;margin-bottom:1rem}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.8rem}
.tile{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:.7rem .9rem}
.tile .n{font-size:1.6rem;font-weight:700}
.tile .l{font-size:.8rem;color:#5b6575;text-transform:uppercase;letter-spacing:.03em}
.tile.warn .n{color:#b3261e}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{background:#eef2f7;font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#4a5566}
tbody tr:nth-child(even){background:#fafbfd}
td.mono,.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.85rem;word-break:break-all}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.2rem;margin:0}
dl.kv dt{color:#5b6575}
dl.kv dd{margin:0;word-break:break-word}
.state{display:inline-block;padding:.05rem .45rem;border-radius:3px;font-size:.78rem;font-weight:600;background:#e3e8ee}
.state.QUARANTINED{background:#fbe2e0;color:#8c1d18}
.state.RECEIVED,.state.FETCHED{background:#e1ecfb;color:#1b4b8f}
.state.ACKNOWLEDGED,.state.SENT{background:#dff3e4;color:#1c6b33}
form.search{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:.6rem 1rem;align-items:end}
form.search label{display:flex;flex-direction:column;font-size:.8rem;color:#4a5566;gap:.2rem}
input,select,button{font:inherit;padding:.3rem .45rem;border:1px solid #b9c3cf;border-radius:4px;background:#fff}
button{background:#1f3a5f;color:#fff;border-color:#1f3a5f;cursor:pointer}
button.danger{background:#b3261e;border-color:#b3261e}
form.inline{display:inline-block;margin:0 .5rem .5rem 0}
.flash{padding:.6rem 1rem;border-radius:5px;margin-bottom:1rem;background:#dff3e4;border:1px solid #9fd4ae}
.flash.error{background:#fbe2e0;border-color:#e8a29c}
.note{color:#5b6575;font-size:.9rem}
pre.label{background:#f7f9fb;border:1px solid #e3e8ee;padding:.8rem;overflow:auto;max-height:28rem;font-size:.8rem;white-space:pre-wrap;word-break:break-all}
a{color:#1b4b8f}
";

/// A whole console page: `body` is HTML built by the page modules (every dynamic value in
/// it escaped with [`esc`]).
pub(super) fn page(title: &str, nav: Nav, actor: &Actor, body: &str) -> Response<Full<Bytes>> {
    let mut html = String::with_capacity(body.len() + STYLE.len() + 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · shsd</title><style>{STYLE}</style></head><body><header>\
         <span class=\"brand\">shsd console</span><nav>",
        esc(title)
    );
    for (entry, href, text) in NAV {
        let class = if entry == nav {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(html, "<a href=\"{href}\"{class}>{text}</a>");
    }
    let _ = writeln!(
        html,
        "</nav><span class=\"who\">{}</span></header><main>{body}</main></body></html>",
        esc(&actor.to_string())
    );
    respond(StatusCode::OK, html)
}

/// A page that only says what went wrong (unknown id, bad request).
pub(super) fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    actor: &Actor,
) -> Response<Full<Bytes>> {
    let body = format!(
        "<h1>{}</h1><section class=\"card\"><p>{}</p></section>",
        esc(title),
        esc(message)
    );
    let mut response = page(title, Nav::Overview, actor, &body);
    *response.status_mut() = status;
    response
}

/// `303 See Other` to a console path (after a form post, and from `/`).
pub(super) fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    secure(&mut response);
    response
}

/// A state as a coloured badge.
pub(super) fn state_badge(state: State) -> String {
    let name = state.as_str();
    format!("<span class=\"state {name}\">{name}</span>")
}

fn respond(status: StatusCode, html: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(&mut response);
    response
}

fn secure(response: &mut Response<Full<Bytes>>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it a browser sends `Origin: null` on form posts, which the
    // cross-site check rightly refuses. `same-origin` still sends nothing to other sites.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
