//! The directory view: what the configuration says about who is who — the organisations
//! this node hosts with their mailboxes, the `[[clients]]` rules (peer nodes, narrowed
//! business systems) and the admin identities. The real directory (file/LDAP) and the
//! agreements come with a later issue; the page says so.

use std::fmt::Write as _;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::html::esc;
use super::layout::{self, Nav};
use crate::admin::{Actor, AdminServer};
use crate::config::{ClientMatch, Role};

impl AdminServer {
    /// The directory page.
    pub(super) fn directory_page(&self, actor: &Actor) -> Response<Full<Bytes>> {
        let config = self.broker.config();
        let mut body = String::from(
            "<h1>Directory</h1><div class=\"flash\">This view shows the configuration \
             (<span class=\"mono\">[[organisations]]</span>, <span class=\"mono\">[[clients]]\
             </span>, <span class=\"mono\">[[admin.identities]]</span>). The SHS directory \
             (file or LDAP), products and agreements are not built yet; they come with a \
             later version and will be shown here.</div>",
        );
        body.push_str(
            "<h2>Local organisations</h2><table id=\"organisations\"><thead><tr>\
             <th>Organisation</th><th>Name</th><th>Mailboxes</th></tr></thead><tbody>",
        );
        for org in &config.organisations {
            let mut mailboxes = vec![org.number.as_str().to_owned()];
            mailboxes.extend(
                org.sub_addresses
                    .iter()
                    .map(|sub| format!("{}.{sub}", org.number)),
            );
            let _ = write!(
                body,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                esc(org.number.as_str()),
                esc(&org.name),
                esc(&mailboxes.join(", "))
            );
        }
        body.push_str("</tbody></table>");

        body.push_str(
            "<h2>Clients and peer nodes</h2><p class=\"note\">Without a rule, a certificate \
             whose subject carries an organisation number sends as that organisation and reads \
             its mailboxes.</p>",
        );
        if config.clients.is_empty() {
            body.push_str(
                "<p class=\"note\">No <span class=\"mono\">[[clients]]</span> rules.</p>",
            );
        } else {
            body.push_str(
                "<table id=\"clients\"><thead><tr><th>Certificate</th><th>Role</th>\
                 <th>Acts for</th><th>Sub-addresses</th><th>Products</th></tr></thead><tbody>",
            );
            for rule in &config.clients {
                let role = match rule.role {
                    Role::Client => "client",
                    Role::PeerNode => "peer node (may send for any organisation)",
                };
                let products: Vec<String> = rule.products.iter().map(|p| p.to_string()).collect();
                let _ = write!(
                    body,
                    "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td>\
                     <td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                    esc(&describe(&rule.matches)),
                    esc(role),
                    esc(rule.acts_for.as_ref().map(|o| o.as_str()).unwrap_or("")),
                    esc(&or_all(rule.sub_addresses.join(", "))),
                    esc(&or_all(products.join(", ")))
                );
            }
            body.push_str("</tbody></table>");
        }

        body.push_str("<h2>Admin identities</h2>");
        if config.admin.tls {
            body.push_str(
                "<table id=\"admins\"><thead><tr><th>Name</th><th>Certificate</th></tr></thead><tbody>",
            );
            for admin in &config.admin.identities {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td class=\"mono\">{}</td></tr>",
                    esc(&admin.name),
                    esc(&describe(&admin.matches))
                );
            }
            body.push_str("</tbody></table>");
        } else {
            body.push_str(
                "<p class=\"note\">This admin listener is plain HTTP on loopback: anyone with a \
                 shell on the host can use it. Admin identities apply with admin TLS.</p>",
            );
        }
        layout::page("Directory", Nav::Directory, actor, &body)
    }
}

fn describe(matches: &ClientMatch) -> String {
    match matches {
        ClientMatch::Fingerprint(fingerprint) => format!("fingerprint {fingerprint}"),
        ClientMatch::Organisation(org) => format!("organisation {}", org.as_str()),
    }
}

fn or_all(list: String) -> String {
    if list.is_empty() {
        "all".to_owned()
    } else {
        list
    }
}
