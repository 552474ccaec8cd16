//! Routing with a file directory over the real daemon (spec §5.2, §9): a direct message
//! under an agreement, product addressing fanning out to two organisations, a missing
//! agreement answered with an `error`, and the directory on the console.

use crate::check::*;
use crate::harness::*;

/// The portal may send PRODUCT to the municipality and to a second organisation
/// (5560000002, hosted here too: its certificate reads its mailbox).
fn directory(dir: &std::path::Path) -> Extra {
    let toml = format!(
        r#"
[[agreements]]
id = "portal-kommun"
principal = "2120000142"
customer = "5590000001"
products = ["{PRODUCT}"]
flow = "from-customer"

[[agreements]]
id = "portal-bolaget"
principal = "5560000002"
customer = "5590000001"
products = ["{PRODUCT}"]
flow = "from-customer"
"#
    );
    let path = dir.join("directory.toml");
    std::fs::write(&path, toml).unwrap();
    Extra(format!(
        "[[organisations]]\nnumber = \"5560000002\"\n[directory]\nfile = {:?}\n",
        path.display().to_string()
    ))
}

#[tokio::test]
async fn agreements_govern_direct_and_product_addressed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with(directory(dir.path())).await;
    let portal = node.portal();

    // Direct, under the portal-kommun agreement.
    let direct = label_to(Some(BYGGLOV));
    assert_accepted(&post_label(&node, &portal, &direct).await, &direct);
    let listed = wait_for_messages(&node, "2120000142.bygglov", "").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tx_id, direct.tx_id);

    // Product addressed: one copy for each organisation with an agreement.
    let mut spread = label_to(None);
    spread.corr_id = "corr-spread".into();
    assert_accepted(&post_label(&node, &portal, &spread).await, &spread);
    let kommun = wait_for_messages(&node, "2120000142", "?corrid=corr-spread").await;
    let bolaget = wait_for_messages(&node, "5560000002", "?corrid=corr-spread").await;
    assert_eq!(kommun.len(), 1, "{kommun:?}");
    assert_eq!(bolaget.len(), 1, "{bolaget:?}");
    assert_ne!(kommun[0].tx_id, bolaget[0].tx_id);
    assert_ne!(kommun[0].tx_id, spread.tx_id);
    assert_eq!(kommun[0].to.as_deref(), Some("urn:X-shs:2120000142"));
    assert_eq!(bolaget[0].to.as_deref(), Some("urn:X-shs:5560000002"));
    // Each copy fetches whole, with the original data part.
    let fetched = fetch(&node, &node.peer_node(), "5560000002", &bolaget[0].tx_id).await;
    assert_eq!(fetched.parts.len(), 1);

    // The municipality may not send the product to the portal: MissingAgreement, and an
    // error in the municipality's mailbox.
    let mut back = label_to(Some(PORTAL));
    back.from.as_mut().unwrap().value = KOMMUN.into();
    back.corr_id = "corr-back".into();
    assert_accepted(&post_label(&node, &node.bygglov(), &back).await, &back);
    let errors = wait_for_messages(&node, "2120000142", "?corrid=corr-back").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].product.as_deref(), Some("urn:X-shs:error"));
    let notice = fetch(&node, &node.bygglov(), "2120000142", &errors[0].tx_id).await;
    let document = String::from_utf8_lossy(&notice.parts[0].1).into_owned();
    assert!(document.contains("MissingAgreement"), "{document}");

    // The console shows the agreements.
    let page = reqwest::get(format!("{}/console/directory", node.admin_base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("portal-kommun") && page.contains("portal-bolaget"),
        "{page}"
    );
    node.stop().await;
}
