//! HTTP bodies: whole (small documents) or streamed from a channel (fetch responses, push
//! requests), so a large message flows between the store and a socket in bounded chunks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

/// The body type of every response.
pub type ResponseBody = BoxBody<Bytes, io::Error>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A streamed body and the sender that feeds it. At most `capacity` chunks wait in the
/// channel, which bounds memory whatever the message size; an `Err` sent aborts the
/// response (the client sees a truncated body, never a silently short one).
pub fn channel(capacity: usize) -> (mpsc::Sender<io::Result<Bytes>>, ResponseBody) {
    let (sender, receiver) = mpsc::channel(capacity);
    (sender, ChannelBody { receiver }.boxed())
}

struct ChannelBody {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|result| result.map(Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_body_yields_what_was_sent_then_ends() {
        let (sender, body) = channel(2);
        tokio::spawn(async move {
            for piece in ["a", "bc", "def"] {
                sender.send(Ok(Bytes::from(piece))).await.unwrap();
            }
        });
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"abcdef");
    }

    #[tokio::test]
    async fn an_error_aborts_the_body() {
        let (sender, body) = channel(2);
        sender.send(Ok(Bytes::from("a"))).await.unwrap();
        sender
            .send(Err(io::Error::other("store failed")))
            .await
            .unwrap();
        drop(sender);
        assert!(body.collect().await.is_err());
    }
}
