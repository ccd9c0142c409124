//! HTTP serving for the tools' servers (the record gateway, the model
//! store): `hyper` 1 connections under [`ConnectionLimits`], so a client that
//! sends slowly is cut off and the server's connections are bounded. The
//! bound is for all clients together: one client opening many slow
//! connections can still delay others for up to the connection time.

use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{sync::Arc, time::Duration};

/// What one client's connections may cost a server.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
	/// Connections served at once; more wait in the listen queue.
	pub max_connections: usize,
	/// Time to send the request's headers; a slower client is cut off.
	pub header_timeout: Duration,
	/// Time a connection may take in all (one request each, no keep-alive):
	/// a client trickling its body is cut off here.
	pub connection_timeout: Duration,
}

impl Default for ConnectionLimits {
	fn default() -> Self {
		ConnectionLimits {
			max_connections: 64,
			header_timeout: Duration::from_secs(10),
			connection_timeout: Duration::from_secs(120),
		}
	}
}

/// Accepts connections on `listener` for as long as the runtime runs, and
/// serves each with a service from `make_service` (HTTP/1.1, one request
/// per connection) within `limits`.
pub fn accept<S, B>(
	listener: tokio::net::TcpListener,
	limits: ConnectionLimits,
	make_service: impl Fn() -> S + Send + 'static,
) where
	S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
	S::Future: Send + 'static,
	S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
	B: hyper::body::Body + Send + 'static,
	B::Data: Send,
	B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
	let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
	tokio::spawn(async move {
		loop {
			let Ok(slot) = slots.clone().acquire_owned().await else { return };
			let Ok((socket, _)) = listener.accept().await else {
				// Out of descriptors, say: pause instead of spinning.
				tokio::time::sleep(Duration::from_millis(100)).await;
				continue;
			};
			let service = make_service();
			tokio::spawn(async move {
				let connection = hyper::server::conn::http1::Builder::new()
					.timer(TokioTimer::new())
					.header_read_timeout(limits.header_timeout)
					.keep_alive(false)
					.serve_connection(TokioIo::new(socket), service);
				// Past its time the connection is dropped, whatever it was doing.
				let _ = tokio::time::timeout(limits.connection_timeout, connection).await;
				drop(slot);
			});
		}
	});
}
