//! Bounding waits in time: every wait on a peer (a handshake, a close, a
//! stalled write) and the shutdown have a limit.

use std::future::Future;
use std::time::{Duration, Instant};

use smol::{Timer, future};

/// `work`'s output, or `None` if it takes longer than `limit`.
pub(crate) async fn with_timeout<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    // Not through `with_deadline`: awaiting it here would store `work` twice.
    future::or(async { Some(work.await) }, async {
        Timer::after(limit).await;
        None
    })
    .await
}

/// `work`'s output, or `None` if it is not done by `deadline`.
pub(crate) async fn with_deadline<T>(
    deadline: Instant,
    work: impl Future<Output = T>,
) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await
}
