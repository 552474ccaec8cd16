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

/// `body`, keeping `held` (a request slot, say) until the body is dropped: sent to its end
/// or abandoned by the client. It says what `body` says about its size, so a whole body
/// keeps its `Content-Length` (a mapped body would be sent chunked).
pub fn holding<T: Send + Sync + Unpin + 'static>(body: ResponseBody, held: T) -> ResponseBody {
    Holding { body, _held: held }.boxed()
}

struct Holding<T> {
    body: ResponseBody,
    _held: T,
}

impl<T: Unpin> Body for Holding<T> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
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

    /// What is held lives as long as the body; a whole body keeps its exact size.
    #[tokio::test]
    async fn a_held_value_goes_with_the_body_and_the_size_stays_known() {
        let held = std::sync::Arc::new(());
        let body = holding(full("whole"), std::sync::Arc::clone(&held));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(std::sync::Arc::strong_count(&held), 2);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"whole");
        assert_eq!(std::sync::Arc::strong_count(&held), 1);

        let (_sender, streamed) = channel(1);
        assert_eq!(holding(streamed, ()).size_hint().exact(), None);
    }
}
