//! Loopback servers for the network tests: an HTTP server that answers with its name and keeps
//! every request's bytes, and a UDP sink; both stop when dropped. Only loopback addresses.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A loopback HTTP server that answers every request with its name and records the requests it
/// got (their head and what followed it at once).
pub struct Server {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(addr: &str, name: &'static str) -> Server {
        let listener = TcpListener::bind(addr).expect("bind a loopback server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // The head, and whatever comes with it within the read timeout.
                loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 65536 {
                        break;
                    }
                }
                h.lock().expect("hits").push(buf);
                let body = name.as_bytes();
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(body);
            }
        });
        Server { addr, hits, stop }
    }

    /// The first line of each request.
    pub fn hits(&self) -> Vec<String> {
        self.raw()
            .iter()
            .map(|b| {
                String::from_utf8_lossy(b)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    /// Each request's bytes.
    pub fn raw(&self) -> Vec<Vec<u8>> {
        self.hits.lock().expect("hits").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loopback UDP socket that keeps every datagram it gets (and answers none).
pub struct UdpSink {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl UdpSink {
    pub fn start() -> UdpSink {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    g.lock().expect("got").push(buf[..n].to_vec());
                }
            }
        });
        UdpSink { addr, got, stop }
    }

    pub fn got(&self) -> Vec<Vec<u8>> {
        self.got.lock().expect("got").clone()
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The python scripted agents run with (the system's: a version manager's shim needs a HOME
/// of its own).
pub fn python() -> String {
    ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("python3")
        .to_string()
}
