//! The web console (spec §11): its pages over real traffic, escaping of hostile label
//! values, and the console driven in a real headless Chromium ([`browser`]).

mod browser;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use shsd::protocol::label::Label;

use crate::check::*;
use crate::harness::*;

use browser::Browser;

/// The newest message summary of an admin API search, polled until `ready` says yes
/// (routing runs after the 202).
async fn wait_for_summary(node: &Node, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bytes = reqwest::get(format!("{}/api/messages?{query}", node.admin_base))
            .await
            .expect("admin api")
            .bytes()
            .await
            .expect("body");
        let hits: Value = serde_json::from_slice(&bytes).expect("json");
        if let Some(hit) = hits.as_array().and_then(|hits| hits.first())
            && ready(hit)
        {
            return hit.clone();
        }
        assert!(Instant::now() < deadline, "{query}: {hits}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `label` as the portal and waits until it has reached `state`; returns its
/// local id.
async fn send_and_wait(node: &Node, label: &Label, state: &str) -> String {
    assert_accepted(&post_label(node, &node.portal(), label).await, label);
    let hit = wait_for_summary(node, &format!("txid={}", label.tx_id), |hit| {
        hit["state"] == state
    })
    .await;
    hit["local_id"].as_str().expect("local id").to_owned()
}

async fn page(node: &Node, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{}{path}", node.admin_base))
        .await
        .expect("console request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

#[tokio::test]
async fn hostile_label_values_are_shown_escaped_never_as_markup() {
    let node = Node::start().await;
    // Identifiers are NMTOKENs (intake refuses markup there); free text is not.
    let mut label = label_to(Some(BYGGLOV));
    label.subject = Some("</pre><script>alert('subject')</script>".into());
    label.meta.push(shsd::protocol::label::Meta {
        name: "kommentar".into(),
        value: "\"><img src=x onerror=alert(1)>".into(),
    });
    let id = send_and_wait(&node, &label, "RECEIVED").await;

    let (status, detail) = page(&node, &format!("/console/messages/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    assert!(!detail.contains("<script"), "{detail}");
    assert!(!detail.contains("<img"), "{detail}");
    assert!(
        detail.contains("&lt;/pre&gt;&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;"),
        "the subject, in the summary and in the label: {detail}"
    );
    assert!(
        detail.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "{detail}"
    );

    // Search fields come back into the form, escaped, and are not markup either.
    let echo = "/console/messages?corrid=%22%3E%3Cscript%3Ealert(3)%3C%2Fscript%3E";
    let (status, form) = page(&node, echo).await;
    assert_eq!(status, 200, "{form}");
    assert!(!form.contains("<script"), "{form}");
    assert!(
        form.contains("value=\"&quot;&gt;&lt;script&gt;alert(3)"),
        "{form}"
    );
    node.stop().await;
}

#[tokio::test]
async fn the_overview_counts_traffic_and_lists_mailboxes() {
    let node = Node::start().await;
    send_and_wait(&node, &label_to(Some(BYGGLOV)), "RECEIVED").await;
    send_and_wait(
        &node,
        &label_to(Some("urn:X-shs:5560000002")),
        "QUARANTINED",
    )
    .await;
    let (status, html) = page(&node, "/console").await;
    assert_eq!(status, 200);
    let tile = |id: &str| {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {html}"));
        let rest = &html[start..];
        let n = rest.find("class=\"n\">").expect("number") + "class=\"n\">".len();
        rest[n..rest[n..].find('<').expect("end") + n].to_owned()
    };
    assert_eq!(tile("received"), "2");
    assert_eq!(tile("quarantined"), "1");
    assert_eq!(tile("quarantine-count"), "1");
    // bygglov's message, and the portal's error notice about the quarantined one.
    assert!(
        html.contains(">2120000142.bygglov</a></td><td>Exempelkommun</td><td>1</td>"),
        "{html}"
    );
    assert!(
        html.contains(">5590000001</a></td><td>Exempelportalen AB</td><td>1</td>"),
        "{html}"
    );
    let (_, directory) = page(&node, "/console/directory").await;
    assert!(directory.contains("2120000142.socialtjanst"), "{directory}");
    assert!(
        directory.contains("No SHS directory is configured"),
        "{directory}"
    );
    node.stop().await;
}

/// The CSRF token of the action forms on a detail page.
fn form_token(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("an action form") + marker.len();
    html[start..start + 64].to_owned()
}

#[tokio::test]
async fn console_actions_need_the_form_token_and_a_same_site_request() {
    let node = Node::start().await;
    let id = send_and_wait(
        &node,
        &label_to(Some("urn:X-shs:5560000002")),
        "QUARANTINED",
    )
    .await;
    let (_, detail) = page(&node, &format!("/console/messages/{id}")).await;
    let token = form_token(&detail);
    assert!(detail.contains("id=\"action-requeue\""), "{detail}");
    assert!(detail.contains("id=\"action-delete\""), "{detail}");
    assert!(
        !detail.contains("id=\"action-resend\""),
        "not for quarantined messages"
    );

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/console/messages/{id}/delete", node.admin_base);
    let post = |form: String, headers: &[(&'static str, String)]| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send()
    };
    let same_origin = node.admin_base.clone();
    for (form, headers, why) in [
        (String::new(), vec![], "no token"),
        ("csrf=00".to_owned(), vec![], "a wrong token"),
        (
            format!("csrf={token}"),
            vec![("origin", "http://evil.example".to_owned())],
            "another origin",
        ),
        (
            format!("csrf={token}"),
            vec![("sec-fetch-site", "cross-site".to_owned())],
            "a cross-site request",
        ),
    ] {
        let response = post(form, &headers).await.expect("post");
        assert_eq!(response.status(), 403, "{why}");
    }
    let (_, still) = page(&node, &format!("/console/messages/{id}")).await;
    assert!(
        still.contains("QUARANTINED"),
        "nothing was deleted: {still}"
    );
    let wrong_method = client.get(&url).send().await.expect("get");
    assert_eq!(wrong_method.status(), 405);

    let response = post(
        format!("csrf={token}"),
        &[
            ("origin", same_origin),
            ("sec-fetch-site", "same-origin".to_owned()),
        ],
    )
    .await
    .expect("post");
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/console/quarantine?action=delete&outcome=done"
    );
    let (status, _) = page(&node, &format!("/console/messages/{id}")).await;
    assert_eq!(status, 404, "deleted");
    node.stop().await;
}

/// Where the overview screenshot goes: the cargo target folder of this build.
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("console-overview.png")
}

#[tokio::test]
async fn the_console_in_headless_chromium() {
    tokio::time::timeout(Duration::from_secs(120), console_in_chromium())
        .await
        .expect("the browser test finishes within two minutes");
}

async fn console_in_chromium() {
    let node = Node::start().await;
    let mut delivered = label_to(Some(BYGGLOV));
    delivered.corr_id = "corr-browser".into();
    send_and_wait(&node, &delivered, "RECEIVED").await;
    let mut lost = label_to(Some("urn:X-shs:5560000002"));
    lost.corr_id = "corr-lost".into();
    send_and_wait(&node, &lost, "QUARANTINED").await;

    let browser = Browser::start().await;
    let base = &node.admin_base;

    // The root redirects to the overview, which counts the quarantined message.
    browser.open(&format!("{base}/"), "#traffic").await;
    let url = browser
        .wait_for_url("the overview", |url| url.ends_with("/console"))
        .await;
    assert!(url.starts_with(base.as_str()), "{url}");
    assert_eq!(browser.text("#quarantine-count .n").await, "1");
    assert_eq!(browser.text("#received .n").await, "2");
    let png = browser.client.screenshot().await.expect("screenshot");
    assert!(png.len() > 1000, "a real picture: {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().expect("folder")).expect("target folder");
    std::fs::write(&path, &png).expect("write the screenshot");
    let written = std::fs::read(&path).expect("read back");
    assert!(written.starts_with(b"\x89PNG") && written.len() == png.len());

    // Search by tx.id through the form.
    browser
        .open(&format!("{base}/console/messages"), "#txid")
        .await;
    browser
        .find("#txid")
        .await
        .send_keys(&delivered.tx_id)
        .await
        .expect("type the tx.id");
    browser.find("#search").await.click().await.expect("search");
    browser
        .wait_for_url("the search", |url| url.contains("txid="))
        .await;
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("#messages tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "one hit for the tx.id");
    let row = rows[0].text().await.expect("row text");
    assert!(
        row.contains("RECEIVED") && row.contains("corr-browser"),
        "{row}"
    );

    // Its detail page with the state history.
    rows[0]
        .find(fantoccini::Locator::LinkText(&delivered.tx_id))
        .await
        .expect("the tx.id links to the detail")
        .click()
        .await
        .expect("open the detail");
    let history = browser.text("#history").await;
    assert!(
        history.contains("NEW") && history.contains("RECEIVED"),
        "{history}"
    );
    let summary = browser.text("#summary").await;
    assert!(summary.contains("corr-browser"), "{summary}");

    // The quarantine list, and why the message is there.
    browser
        .open(&format!("{base}/console/quarantine"), "#messages")
        .await;
    let quarantine = browser.text("#messages").await;
    assert!(quarantine.contains(&lost.tx_id), "{quarantine}");
    assert!(!quarantine.contains(&delivered.tx_id), "{quarantine}");
    browser
        .find("#messages tbody a")
        .await
        .click()
        .await
        .expect("open the quarantined message");
    let error = browser.text("#error").await;
    assert!(error.contains("MissingDeliveryAddress"), "{error}");
    assert!(browser.text("#history").await.contains("QUARANTINED"));

    // Requeue it: routed again at once with the same configuration, so quarantined again;
    // the history shows the round.
    browser
        .find("#action-requeue")
        .await
        .click()
        .await
        .expect("requeue");
    let flash = browser.text("#flash").await;
    assert_eq!(flash, "Requeue: done.");
    let history = browser.text("#history").await;
    let states: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|word| word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    assert_eq!(
        states,
        ["STATE", "NEW", "QUARANTINED", "NEW", "QUARANTINED"],
        "{history}"
    );
    let requeued = wait_for_summary(&node, &format!("txid={}", lost.tx_id), |_| true).await;
    assert_eq!(requeued["state"], "QUARANTINED");

    // Delete it: back on the quarantine list, which is empty now.
    browser
        .find("#action-delete")
        .await
        .click()
        .await
        .expect("delete");
    browser
        .wait_for_url("the quarantine list", |url| {
            url.contains("/console/quarantine")
        })
        .await;
    assert_eq!(browser.text("#flash").await, "Delete: done.");
    browser.find("#no-results").await;
    let audit: Value = serde_json::from_slice(
        &reqwest::get(format!("{base}/api/audit"))
            .await
            .expect("audit")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["delete", "requeue"], "{audit}");
    assert!(
        audit[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("loopback 127.0.0.1:"),
        "{audit}"
    );

    browser.close().await;
    node.stop().await;
}
