//! A proxy of one command's own, for its lifetime: what `verify` and a resolving agent are
//! served by wherever they run (`orch merge`, `orch resolve`, the integration preview, the
//! merge train of `orch up`), as `orch up`'s proxy serves its attempts. It runs on a thread of
//! its own with a runtime of its own, so that a command without one (`orch merge`) and a
//! blocking thread of `orch up` start their processes the same way; dropped, it stops, and
//! what it served ends with it.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::allow::AllowList;
use super::proxy::{NetAttempt, NetProxy};

/// The proxy and the runtime it runs on; stopped when dropped.
#[derive(Debug)]
pub(crate) struct OwnProxy {
    proxy: Arc<NetProxy>,
    handle: tokio::runtime::Handle,
    /// Its end: the thread stops its runtime when this is dropped.
    _stop: oneshot::Sender<()>,
}

impl OwnProxy {
    /// Starts the proxy's thread and runtime.
    pub(crate) fn start() -> Result<Self, String> {
        let proxy = NetProxy::private()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("orch-net-proxy".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start the network proxy: {e}")));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| format!("cannot start the network proxy's thread: {e}"))?;
        let handle = handle
            .recv()
            .map_err(|_| "the network proxy's thread ended".to_string())??;
        Ok(Self {
            proxy,
            handle,
            _stop: stop,
        })
    }

    /// The network of one process (`unit` of `plan`, logging to `log`) that may reach `allow`
    /// in a namespace of its own ([`NetProxy::attempt`]).
    pub(crate) fn attempt(
        &self,
        plan: &str,
        unit: &str,
        log: &Path,
        allow: AllowList,
    ) -> Result<NetAttempt, String> {
        let _in = self.handle.enter();
        self.proxy.attempt(plan, unit, log, allow)
    }

    /// The same where no namespace can be made ([`NetProxy::attempt_ports`]).
    pub(crate) fn attempt_ports(
        &self,
        plan: &str,
        unit: &str,
        log: &Path,
        allow: AllowList,
    ) -> Result<NetAttempt, String> {
        let _in = self.handle.enter();
        self.proxy.attempt_ports(plan, unit, log, allow)
    }
}
