//! A multi-threaded smol executor.

use std::sync::Arc;

use smol::{Executor, Task};

/// `threads` threads running one executor; tasks spawned on it run on any
/// of them. The threads run until the process exits: the load generator
/// ends by printing its summary and exiting, which closes every socket at
/// once, rather than by unwinding thousands of tasks one by one.
pub struct Runtime {
    executor: Arc<Executor<'static>>,
}

impl Runtime {
    pub fn start(threads: usize) -> anyhow::Result<Self> {
        let executor = Arc::new(Executor::new());
        for n in 0..threads.max(1) {
            let executor = executor.clone();
            std::thread::Builder::new()
                .name(format!("loadgen-{n}"))
                .spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())))?;
        }
        Ok(Runtime { executor })
    }

    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.executor.spawn(future)
    }
}
