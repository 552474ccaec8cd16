//! The directory view: the SHS directory (agreements, organisations, products, delivery
//! addresses) when one is configured, then what the configuration says about who is who —
//! the organisations this node hosts with their mailboxes, the `[[clients]]` rules (peer
//! nodes, narrowed business systems) and the admin identities.

use std::fmt::Write as _;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::html::esc;
use super::layout::{self, Nav};
use crate::admin::{Actor, AdminServer};
use crate::config::{ClientMatch, Role};
use crate::directory::Listing;

impl AdminServer {
    /// The directory page.
    pub(super) async fn directory_page(&self, actor: &Actor) -> Response<Full<Bytes>> {
        let config = self.broker.config();
        let mut body = String::from("<h1>Directory</h1>");
        match self.broker.directory() {
            None => body.push_str(
                "<div class=\"flash\">No SHS directory is configured (<span class=\"mono\">\
                 [directory]</span>): messages go to this node's own organisations without \
                 agreement checks.</div>",
            ),
            Some(directory) => match directory.snapshot().await {
                Ok(listing) => shs_directory(&mut body, &listing),
                Err(err) => {
                    tracing::warn!(error = %err, "console: the directory cannot be listed");
                    body.push_str(
                        "<div class=\"flash\">The directory cannot be listed now; see the log.</div>",
                    );
                }
            },
        }
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

/// The agreements, organisations, products and addresses of the SHS directory.
fn shs_directory(body: &mut String, listing: &Listing) {
    body.push_str(
        "<h2>Agreements</h2><table id=\"agreements\"><thead><tr><th>Id</th><th>Principal</th>\
         <th>Customer</th><th>Flow</th><th>Transfer</th><th>Products</th><th>Valid</th>\
         <th>Confirm</th></tr></thead><tbody>",
    );
    for agreement in &listing.agreements {
        let products: Vec<String> = agreement.products.iter().map(|p| p.to_string()).collect();
        let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
             <td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{} – {}</td><td>{}</td></tr>",
            esc(&agreement.id),
            esc(agreement.principal.as_str()),
            esc(agreement
                .customer
                .as_ref()
                .map_or("anyone (public)", |c| c.as_str())),
            esc(agreement.flow.as_str()),
            esc(agreement.transfer.as_str()),
            esc(&products.join(", ")),
            esc(&day(agreement.valid_from)),
            esc(&day(agreement.valid_to)),
            if agreement.confirm { "yes" } else { "no" },
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(
        "<h2>Organisations</h2><table id=\"directory-organisations\"><thead><tr>\
         <th>Organisation</th><th>Name</th></tr></thead><tbody>",
    );
    for organisation in &listing.organisations {
        let _ = write!(
            body,
            "<tr><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(organisation.number.as_str()),
            esc(&organisation.name)
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(
        "<h2>Products</h2><table id=\"products\"><thead><tr><th>Product</th><th>Name</th>\
         <th>Data parts</th></tr></thead><tbody>",
    );
    for product in &listing.products {
        let parts: Vec<&str> = product
            .data
            .iter()
            .map(|d| d.datapart_type.as_str())
            .collect();
        let _ = write!(
            body,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&product.id.to_string()),
            esc(&product.name),
            esc(&or_all(parts.join(", ")))
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(
        "<h2>Delivery addresses</h2><table id=\"addresses\"><thead><tr><th>Organisation</th>\
         <th>Product</th><th>URL</th></tr></thead><tbody>",
    );
    for address in &listing.addresses {
        let product = address.product.map(|p| p.to_string()).unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            esc(address.organisation.as_str()),
            esc(&or_all(product)),
            esc(&address.url)
        );
    }
    body.push_str("</tbody></table>");
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
