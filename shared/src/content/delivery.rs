//! How a provider's bytes leave the content function: gathered into pieces of up to
//! [`GATHERED`] while they come faster than they are sent, and cut off at the invocation's
//! deadline.
//!
//! Every piece the function answers costs the same whatever its size: a hand-over between
//! the handler and the Lambda runtime's sending task, a chunk header and a write on the
//! connection to the Runtime API, and in AWS a frame of the streamed answer. A provider's
//! answer comes in the pieces its HTTP reads give (tens of KB), so passing each on as it is
//! spent most of the function's time on those costs rather than on the bytes (a benchmark
//! of a plain fetch loop of the same file ran at twice the speed). Gathering adds no wait:
//! whatever has come is sent as soon as the provider has nothing more ready, so a slow
//! provider's bytes go out as they come; and the memory stays bounded by [`GATHERED`] and
//! one provider piece, whatever the file's size.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;

use crate::deadline::Deadline;
use crate::providers::content::{ByteStream, ContentStream};

/// The most bytes gathered into one piece of the answer.
pub const GATHERED: usize = 1 << 20;

/// The same bytes in pieces of up to [`GATHERED`], failing at the deadline if they have
/// not all come by then: the answer is cut off visibly (its connection reset, short of its
/// length) before Lambda would end the invocation, and the provider's connection is dropped
/// with it.
pub fn delivered(stream: ContentStream, deadline: Deadline) -> ContentStream {
    let remaining = deadline.remaining();
    ContentStream {
        length: stream.length,
        body: Box::pin(Delivered {
            body: stream.body,
            end: tokio::time::Instant::now() + remaining,
            timer: Box::pin(tokio::time::sleep(remaining)),
            gathered: BytesMut::new(),
            failure: None,
            ended: false,
        }),
    }
}

struct Delivered {
    body: ByteStream,
    end: tokio::time::Instant,
    /// Polled only while the provider has nothing ready, to be woken at `end`; while bytes
    /// flow the clock is read instead, which costs less than re-arming a timer per piece.
    timer: Pin<Box<tokio::time::Sleep>>,
    gathered: BytesMut,
    /// An error to answer once the bytes gathered before it are sent.
    failure: Option<std::io::Error>,
    /// The provider's bytes ended (or failed, or the deadline passed): what is gathered is
    /// sent, then nothing.
    ended: bool,
}

fn out_of_time() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the invocation's time ran out before the last byte",
    )
}

impl Delivered {
    /// What is gathered, as one piece.
    fn take(&mut self) -> Poll<Option<std::io::Result<Bytes>>> {
        Poll::Ready(Some(Ok(self.gathered.split().freeze())))
    }

    /// Ends the stream with `error`, after what is gathered.
    fn fail(&mut self, error: std::io::Error) -> Poll<Option<std::io::Result<Bytes>>> {
        self.ended = true;
        if self.gathered.is_empty() {
            Poll::Ready(Some(Err(error)))
        } else {
            self.failure = Some(error);
            self.take()
        }
    }
}

impl Stream for Delivered {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return match this.failure.take() {
                Some(error) => Poll::Ready(Some(Err(error))),
                None if !this.gathered.is_empty() => this.take(),
                None => Poll::Ready(None),
            };
        }
        loop {
            if tokio::time::Instant::now() >= this.end {
                return this.fail(out_of_time());
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(piece))) => {
                    // A piece as large as a gathered one goes on as it is, uncopied.
                    if this.gathered.is_empty() && piece.len() >= GATHERED {
                        return Poll::Ready(Some(Ok(piece)));
                    }
                    this.gathered.extend_from_slice(&piece);
                    if this.gathered.len() >= GATHERED {
                        return this.take();
                    }
                }
                Poll::Ready(Some(Err(error))) => return this.fail(error),
                Poll::Ready(None) => {
                    this.ended = true;
                    return match this.gathered.is_empty() {
                        true => Poll::Ready(None),
                        false => this.take(),
                    };
                }
                Poll::Pending if !this.gathered.is_empty() => return this.take(),
                Poll::Pending => {
                    return match this.timer.as_mut().poll(cx) {
                        Poll::Ready(()) => this.fail(out_of_time()),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt as _;

    use super::*;

    fn pieces(sizes: &[usize]) -> ContentStream {
        let mut next = 0u8;
        let pieces: Vec<std::io::Result<Bytes>> = sizes
            .iter()
            .map(|&size| {
                let piece: Vec<u8> = (0..size)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect();
                Ok(Bytes::from(piece))
            })
            .collect();
        ContentStream {
            length: None,
            body: Box::pin(futures::stream::iter(pieces)),
        }
    }

    async fn collect(stream: ContentStream) -> (Vec<usize>, Vec<u8>, Option<std::io::Error>) {
        let mut body = stream.body;
        let (mut sizes, mut bytes, mut error) = (Vec::new(), Vec::new(), None);
        while let Some(piece) = body.next().await {
            match piece {
                Ok(piece) => {
                    sizes.push(piece.len());
                    bytes.extend_from_slice(&piece);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        (sizes, bytes, error)
    }

    fn later() -> Deadline {
        Deadline::after(Duration::from_secs(60))
    }

    #[tokio::test]
    async fn ready_pieces_are_gathered_up_to_the_limit_in_order() {
        let sizes = [64 << 10; 40];
        let (expected_sizes, expected, _) = collect(pieces(&sizes)).await;
        assert_eq!(expected_sizes.len(), 40);
        let (sizes, bytes, error) = collect(delivered(pieces(&sizes), later())).await;
        assert!(error.is_none());
        assert_eq!(bytes, expected);
        // 40 pieces of 64 KiB: two full pieces of 1 MiB, then the rest.
        assert_eq!(sizes, vec![GATHERED, GATHERED, 8 * (64 << 10)]);
    }

    #[tokio::test]
    async fn a_large_piece_goes_on_alone_and_small_ones_after_it() {
        let (sizes, bytes, _) = collect(delivered(pieces(&[GATHERED + 5, 10, 20]), later())).await;
        assert_eq!(sizes, vec![GATHERED + 5, 30]);
        assert_eq!(bytes.len(), GATHERED + 35);
    }

    #[tokio::test]
    async fn what_has_come_is_sent_when_the_provider_has_nothing_ready() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<std::io::Result<Bytes>>();
        let stream = ContentStream {
            length: None,
            body: Box::pin(rx),
        };
        let mut body = delivered(stream, later()).body;
        tx.unbounded_send(Ok(Bytes::from_static(b"abc"))).unwrap();
        tx.unbounded_send(Ok(Bytes::from_static(b"de"))).unwrap();
        // Both ready: one piece, without waiting for more.
        assert_eq!(body.next().await.unwrap().unwrap(), "abcde");
        tx.unbounded_send(Ok(Bytes::from_static(b"f"))).unwrap();
        assert_eq!(body.next().await.unwrap().unwrap(), "f");
        drop(tx);
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn an_error_comes_after_the_bytes_before_it() {
        let stream = ContentStream {
            length: None,
            body: Box::pin(futures::stream::iter(vec![
                Ok(Bytes::from_static(b"abc")),
                Err(std::io::Error::other("reset")),
                Ok(Bytes::from_static(b"never")),
            ])),
        };
        let (sizes, bytes, error) = collect(delivered(stream, later())).await;
        assert_eq!((sizes, bytes), (vec![3], b"abc".to_vec()));
        assert_eq!(error.unwrap().to_string(), "reset");
    }

    #[tokio::test]
    async fn a_stalled_provider_is_cut_off_at_the_deadline() {
        let stream = ContentStream {
            length: None,
            body: Box::pin(
                futures::stream::iter(vec![Ok(Bytes::from_static(b"abc"))])
                    .chain(futures::stream::pending()),
            ),
        };
        let deadline = Deadline::after(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let (sizes, _, error) = collect(delivered(stream, deadline)).await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(sizes, vec![3]);
        assert_eq!(error.unwrap().kind(), std::io::ErrorKind::TimedOut);
    }
}
