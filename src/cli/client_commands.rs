//! `shsd send | list | fetch | ack`: the SHS client on the command line, over mTLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;

use crate::client::{ClientError, OutgoingPart, ShsClient, build_message};
use crate::protocol::label::SequenceType;
use crate::protocol::mime::{Limits, TransferDecoder, split_message};
use crate::protocol::urn::Address;
use crate::tls::{ClientTlsFiles, TlsError, client_config};

use super::Connection;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The certificate files could not be loaded.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The node refused or could not be reached.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// A local file could not be read or written.
    #[error("{0}: {1}")]
    File(PathBuf, std::io::Error),
    /// An argument is wrong.
    #[error("{0}")]
    Usage(String),
}

/// Arguments of `shsd send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    connection: Connection,
    /// The sender address (your organisation).
    #[arg(long, default_value = "urn:X-shs:5590000001")]
    from: String,
    /// The receiver address; leave out for product addressing.
    #[arg(long)]
    to: Option<String>,
    /// The product id.
    #[arg(long, default_value = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00")]
    product: String,
    /// A data part to send (repeat for several).
    #[arg(long = "file", required = true)]
    files: Vec<PathBuf>,
    /// The datapartType of the parts.
    #[arg(long, default_value = "xml")]
    datapart_type: String,
}

/// Arguments of `shsd list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    connection: Connection,
    /// The mailbox address.
    mailbox: String,
    /// Query parameters of spec §3.3, e.g. `filter=noack&maxhits=10`.
    #[arg(long, default_value = "")]
    query: String,
}

/// Arguments of `shsd fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    connection: Connection,
    /// The mailbox address.
    mailbox: String,
    /// The message's tx.id.
    tx_id: String,
    /// The folder to write `message.mime`, `label.xml` and the data parts into.
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

/// Arguments of `shsd ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    #[command(flatten)]
    connection: Connection,
    /// The mailbox address.
    mailbox: String,
    /// The message's tx.id.
    tx_id: String,
}

fn client(connection: &Connection) -> Result<ShsClient, CommandError> {
    let tls = client_config(&ClientTlsFiles {
        roots: vec![connection.ca.clone()],
        cert_chain: Some(connection.cert.clone()),
        key: Some(connection.key.clone()),
    })?;
    Ok(ShsClient::new(&connection.url, tls)?)
}

fn address(text: &str) -> Result<Address, CommandError> {
    text.parse()
        .map_err(|err| CommandError::Usage(format!("{text:?} is not an SHS address: {err}")))
}

/// Sends the files as one message and prints the receipt.
pub async fn send(args: SendArgs) -> Result<(), CommandError> {
    let mut parts = Vec::new();
    for path in &args.files {
        let bytes = std::fs::read(path).map_err(|err| CommandError::File(path.clone(), err))?;
        parts.push(OutgoingPart {
            datapart_type: args.datapart_type.clone(),
            content_type: content_type_for(path).to_owned(),
            filename: path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned()),
            bytes,
        });
    }
    let (body, boundary, _) = build_message(
        &args.from,
        args.to.as_deref(),
        &args.product,
        SequenceType::Event,
        &parts,
    );
    let receipt = client(&args.connection)?
        .send(Bytes::from(body), &boundary)
        .await?;
    println!(
        "{} tx.id={} local.id={} arrival={} duplicate={}",
        receipt.status.as_u16(),
        receipt.tx_id,
        receipt.local_id,
        receipt.arrival,
        if receipt.duplicate { "yes" } else { "no" }
    );
    Ok(())
}

/// Prints the mailbox's message list as XML.
pub async fn list(args: ListArgs) -> Result<(), CommandError> {
    let mailbox = address(&args.mailbox)?;
    let list = client(&args.connection)?
        .list(&mailbox, &args.query)
        .await?;
    print!("{}", String::from_utf8_lossy(&list.to_xml()));
    Ok(())
}

/// Fetches a message and writes it whole (`message.mime`), its label (`label.xml`) and each
/// data part decoded under its (sanitised) file name.
pub async fn fetch(args: FetchArgs) -> Result<(), CommandError> {
    let mailbox = address(&args.mailbox)?;
    let message = client(&args.connection)?
        .fetch(&mailbox, &args.tx_id)
        .await?;
    let written = write_fetched(&message, &args.out)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// Acknowledges a message.
pub async fn ack(args: AckArgs) -> Result<(), CommandError> {
    let mailbox = address(&args.mailbox)?;
    client(&args.connection)?.ack(&mailbox, &args.tx_id).await?;
    println!("OK");
    Ok(())
}

/// Writes a fetched message into `dir`; returns the files written.
pub fn write_fetched(message: &[u8], dir: &Path) -> Result<Vec<PathBuf>, CommandError> {
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, CommandError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|err| CommandError::File(path.clone(), err))?;
        Ok(path)
    };
    std::fs::create_dir_all(dir).map_err(|err| CommandError::File(dir.to_owned(), err))?;
    let split =
        split_message(message, Some("message/rfc822"), Limits::default()).map_err(|err| {
            CommandError::Usage(format!(
                "the node sent a message that does not parse: {err}"
            ))
        })?;
    let mut written = vec![
        write("message.mime", message)?,
        write("label.xml", &split.label)?,
    ];
    for (index, (headers, raw)) in split.parts.iter().enumerate() {
        let mut decoder = TransferDecoder::new(
            headers
                .transfer_encoding()
                .map_err(|err| CommandError::Usage(err.to_string()))?,
        );
        let mut bytes = Vec::with_capacity(raw.len());
        decoder
            .decode(raw, &mut bytes)
            .and_then(|()| decoder.finish(&mut bytes))
            .map_err(|err| CommandError::Usage(err.to_string()))?;
        let name = headers
            .filename()
            .map(|name| sanitise(&name))
            .filter(|name| !name.is_empty() && name != "message.mime" && name != "label.xml")
            .unwrap_or_else(|| format!("part-{}.bin", index + 1));
        written.push(write(&name, &bytes)?);
    }
    Ok(written)
}

/// A sender's file name made safe as a local file name: no folders, no control characters,
/// no leading dots.
fn sanitise(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim_start_matches('.')
        .trim()
        .to_owned()
}

fn content_type_for(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("xml") => "text/xml",
        Some("txt") => "text/plain",
        Some("pdf") => "application/pdf",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The TLS client config of the example portal, for `demo`.
pub fn example_client(dir: &Path, stem: &str) -> Result<Arc<rustls::ClientConfig>, CommandError> {
    Ok(client_config(&ClientTlsFiles {
        roots: vec![dir.join("ca.pem")],
        cert_chain: Some(dir.join(format!("{stem}.pem"))),
        key: Some(dir.join(format!("{stem}-key.pem"))),
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("C:\\x\\ansökan.xml"), "ansökan.xml");
        assert_eq!(sanitise(".bashrc"), "bashrc");
        assert_eq!(sanitise("a\u{0}b\nc"), "abc");
        assert_eq!(sanitise("/"), "");
    }
}
