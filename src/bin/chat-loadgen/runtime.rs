//! The load generator's threads: a multi-threaded smol executor for the
//! clients, and one thread of its own for the fanout senders.

use std::sync::Arc;

use smol::{Executor, Task};

/// `threads` threads running the clients' executor, plus one thread for
/// tasks that must run on time. The threads run until the process exits:
/// the load generator ends by printing its summary and exiting, which
/// closes every socket at once, rather than by unwinding thousands of
/// tasks one by one.
pub struct Runtime {
    executor: Arc<Executor<'static>>,
    /// Open-loop senders wake at their due times here, not behind a queue
    /// of thousands of receivers that the main executor may have to run
    /// first. Sockets are shared freely between the two: smol has a single
    /// reactor per process.
    punctual: Arc<Executor<'static>>,
}

impl Runtime {
    pub fn start(threads: usize) -> anyhow::Result<Self> {
        let executor = Arc::new(Executor::new());
        for n in 0..threads.max(1) {
            run_forever(format!("loadgen-{n}"), executor.clone())?;
        }
        let punctual = Arc::new(Executor::new());
        run_forever("loadgen-punctual".into(), punctual.clone())?;
        Ok(Runtime { executor, punctual })
    }

    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.executor.spawn(future)
    }

    /// Spawns a task on the thread kept for work that must run on time.
    pub fn spawn_punctual<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.punctual.spawn(future)
    }
}

fn run_forever(name: String, executor: Arc<Executor<'static>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())))?;
    Ok(())
}
