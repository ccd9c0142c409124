//! HTTP serving for the tools' servers (the record gateway, the model
//! store): `hyper` 1 connections under [`ConnectionLimits`], so a client that
//! sends slowly is cut off, the server's connections are bounded, and one
//! client (one IP address) holds at most a few of them: a client opening
//! many slow connections is answered `429` past its share while others are
//! still served.

use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{
	collections::HashMap,
	net::IpAddr,
	sync::{Arc, Mutex},
	time::Duration,
};

/// What one client's connections may cost a server.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
	/// Connections served at once; more wait in the listen queue.
	pub max_connections: usize,
	/// Connections served at once to one IP address; one more is answered
	/// `429 Too Many Requests` and closed.
	pub max_per_client: usize,
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
			max_per_client: 8,
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
	let clients = Arc::new(Mutex::new(HashMap::new()));
	// Refusals being written at once; past these, a connection is dropped.
	let refusals = Arc::new(tokio::sync::Semaphore::new(64));
	tokio::spawn(async move {
		loop {
			let Ok(slot) = slots.clone().acquire_owned().await else { return };
			let Ok((socket, peer)) = listener.accept().await else {
				// Out of descriptors, say: pause instead of spinning.
				tokio::time::sleep(Duration::from_millis(100)).await;
				continue;
			};
			let Some(share) = ClientShare::take(&clients, client_of(peer.ip()), limits.max_per_client) else {
				drop(slot);
				if let Ok(refusing) = refusals.clone().try_acquire_owned() {
					tokio::spawn(async move {
						refuse(socket).await;
						drop(refusing);
					});
				}
				continue;
			};
			// Answers go out as written: with Nagle's algorithm a response's
			// tail waits for the client's delayed acknowledgement (up to 40 ms).
			let _ = socket.set_nodelay(true);
			let service = make_service();
			tokio::spawn(async move {
				let _share = share;
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

/// Whose share a connection from `ip` counts against: an IPv4 address (as
/// such also when mapped into IPv6), or an IPv6 /64 (one host's usual
/// allocation, within which it could pick a new address per connection).
fn client_of(ip: IpAddr) -> IpAddr {
	match ip.to_canonical() {
		IpAddr::V6(v6) => {
			let mut octets = v6.octets();
			octets[8..].fill(0);
			IpAddr::V6(octets.into())
		},
		v4 => v4,
	}
}

/// One of a client's connections, counted against its share while held.
struct ClientShare {
	clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
	ip: IpAddr,
}

impl ClientShare {
	/// A connection of `ip`'s, if it holds fewer than `most`.
	fn take(clients: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, most: usize) -> Option<Self> {
		let mut counts = clients.lock().ok()?;
		let count = counts.entry(ip).or_insert(0);
		if *count >= most {
			return None;
		}
		*count += 1;
		Some(ClientShare { clients: clients.clone(), ip })
	}
}

impl Drop for ClientShare {
	fn drop(&mut self) {
		if let Ok(mut counts) = self.clients.lock() {
			if let Some(count) = counts.get_mut(&self.ip) {
				*count = count.saturating_sub(1);
				if *count == 0 {
					counts.remove(&self.ip);
				}
			}
		}
	}
}

/// Answers a connection past its client's share with `429` and closes it.
async fn refuse(socket: tokio::net::TcpStream) {
	const TOO_MANY: &[u8] =
		b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	let answer = async {
		socket.writable().await?;
		socket.try_write(TOO_MANY)
	};
	let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

#[cfg(test)]
mod tests {
	use super::*;
	use std::io::{Read, Write};

	/// A server answering `200 ok` to anything, within `limits`.
	fn server(limits: ConnectionLimits) -> std::net::SocketAddr {
		crate::runtime().block_on(async {
			let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
			let addr = listener.local_addr().unwrap();
			accept(listener, limits, || {
				hyper::service::service_fn(|_request| async {
					Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
				})
			});
			addr
		})
	}

	/// Sends a GET from `source` (an address on the loopback network) and
	/// reads the answer to its end.
	fn get_from(source: &str, addr: std::net::SocketAddr) -> String {
		let stream = crate::runtime().block_on(async {
			let socket = tokio::net::TcpSocket::new_v4().unwrap();
			socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
			socket.connect(addr).await.unwrap().into_std().unwrap()
		});
		let mut stream = stream;
		stream.set_nonblocking(false).unwrap();
		stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
		stream.write_all(b"GET / HTTP/1.1\r\nHost: s\r\n\r\n").unwrap();
		let mut answer = Vec::new();
		let _ = stream.read_to_end(&mut answer);
		String::from_utf8_lossy(&answer).into_owned()
	}

	#[test]
	fn a_client_is_its_ipv4_address_or_its_ipv6_64() {
		let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
		let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
		let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
		assert_eq!(client_of(a), client_of(b));
		assert_ne!(client_of(a), client_of(c));
		let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
		assert_eq!(client_of(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
	}

	#[test]
	fn one_client_cannot_take_every_connection() {
		let limits = ConnectionLimits {
			max_connections: 8,
			max_per_client: 2,
			header_timeout: Duration::from_secs(20),
			connection_timeout: Duration::from_secs(20),
		};
		let addr = server(limits);
		// 127.0.0.1 opens two connections and sends nothing.
		let stalled: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
		std::thread::sleep(Duration::from_millis(200));
		// Its third is refused at once; another client is served.
		assert!(get_from("127.0.0.1", addr).starts_with("HTTP/1.1 429"));
		assert!(get_from("127.0.0.2", addr).contains("200 OK"));
		// Once it lets go of one, it is served again.
		drop(stalled);
		let mut answer = String::new();
		for _ in 0..50 {
			answer = get_from("127.0.0.1", addr);
			if answer.contains("200 OK") {
				break;
			}
			std::thread::sleep(Duration::from_millis(100));
		}
		assert!(answer.contains("200 OK"), "{answer}");
	}
}
