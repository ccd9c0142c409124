//! The store against a real MongoDB wire-protocol server (SecantusDB, which
//! `scripts/setup.sh` installs into `~/.cache/medchain/venv`): round trip,
//! digest mismatch, duplicate insert, listing, erasure, server down.

use medchain_record_store::{
	journal::{JournaledRead, Served},
	DigestAlgorithm, Digests, RecordStore, StoreError,
};
use mongodb::bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary};
use std::{
	net::TcpListener,
	path::PathBuf,
	process::{Child, Command},
	time::{Duration, Instant},
};

/// A SecantusDB server on a free port, killed on drop.
struct Server {
	child: Child,
	port: u16,
}

impl Server {
	fn start() -> Server {
		let bin = std::env::var_os("MEDCHAIN_SECANTUSD").map(PathBuf::from).unwrap_or_else(|| {
			PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/medchain/venv/bin/secantusd-py")
		});
		assert!(bin.exists(), "{} is missing: run scripts/setup.sh", bin.display());
		let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
		let child = Command::new(&bin)
			.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--storage-path", ":memory:"])
			.stdout(std::process::Stdio::null())
			.stderr(std::process::Stdio::null())
			.spawn()
			.expect("secantusd-py starts");
		let start = Instant::now();
		while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
			assert!(start.elapsed() < Duration::from_secs(20), "SecantusDB did not open its port");
			std::thread::sleep(Duration::from_millis(100));
		}
		Server { child, port }
	}

	fn uri(&self) -> String {
		format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
	}
}

impl Drop for Server {
	fn drop(&mut self) {
		let _ = self.child.kill();
		let _ = self.child.wait();
	}
}

async fn store(server: &Server) -> RecordStore {
	RecordStore::connect(&server.uri(), "medchain", "records", "hospital-1").await.expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_list_and_erase() {
	let server = Server::start();
	let s = store(&server).await;
	let a = s.put("patient-a", "LabResult", DigestAlgorithm::Sm3, b"ciphertext one").await.unwrap();
	let b = s.put("patient-a", "Imaging", DigestAlgorithm::Sha2_256, b"ciphertext two").await.unwrap();
	s.put("patient-b", "LabResult", DigestAlgorithm::Blake2_256, b"other").await.unwrap();
	assert_eq!(a.pointer.store_id, "hospital-1");
	assert_eq!(a.pointer.collection, "records");
	assert_eq!(a.digest, DigestAlgorithm::Sm3.digest(b"ciphertext one"));
	assert_eq!(a.size, 14);

	assert_eq!(s.get(a.pointer.object_id, &a.digest).await.unwrap(), b"ciphertext one");
	let listed = s.list_by_patient("patient-a", 10).await.unwrap();
	assert_eq!(listed, vec![a.clone(), b.clone()]);
	assert_eq!(s.list_by_patient("patient-a", 1).await.unwrap(), vec![a.clone()]);

	s.delete(a.pointer.object_id).await.unwrap();
	assert!(matches!(s.get(a.pointer.object_id, &a.digest).await, Err(StoreError::NotFound)));
	assert!(matches!(s.delete(a.pointer.object_id).await, Err(StoreError::NotFound)));
	assert_eq!(s.list_by_patient("patient-a", 10).await.unwrap(), vec![b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_document_is_refused() {
	let server = Server::start();
	let s = store(&server).await;
	let r = s.put("patient-a", "LabResult", DigestAlgorithm::Sm3, b"original").await.unwrap();
	// Someone with database access swaps the content behind the chain's back.
	let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
	raw.database("medchain")
		.collection::<mongodb::bson::Document>("records")
		.update_one(
			doc! { "_id": ObjectId::from_bytes(r.pointer.object_id) },
			doc! { "$set": { "ciphertext": Binary { subtype: BinarySubtype::Generic, bytes: b"tampered".to_vec() } } },
		)
		.await
		.unwrap();
	match s.get(r.pointer.object_id, &r.digest).await {
		Err(StoreError::DigestMismatch { expected, actual }) => {
			assert_eq!(expected, r.digest);
			assert_eq!(actual, DigestAlgorithm::Sm3.digest(b"tampered"));
		},
		other => panic!("expected a digest mismatch, got {other:?}"),
	}
	// A wrong expected digest is refused the same way.
	assert!(matches!(s.get(r.pointer.object_id, &[0; 32]).await, Err(StoreError::DigestMismatch { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_ciphertext_is_not_stored_twice() {
	let server = Server::start();
	let s = store(&server).await;
	s.put("patient-a", "LabResult", DigestAlgorithm::Sha2_256, b"same").await.unwrap();
	assert!(matches!(
		s.put("patient-a", "LabResult", DigestAlgorithm::Sha2_256, b"same").await,
		Err(StoreError::Duplicate)
	));
	// Another patient may hold identical bytes.
	s.put("patient-b", "LabResult", DigestAlgorithm::Sha2_256, b"same").await.unwrap();
	assert_eq!(s.list_by_patient("patient-a", 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_gives_a_clear_error() {
	// Nothing listens on this port.
	let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
	let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
	match RecordStore::connect(&uri, "medchain", "records", "hospital-1").await {
		Err(e @ StoreError::Unreachable(_)) => assert!(e.to_string().starts_with("MongoDB is unreachable")),
		Err(other) => panic!("expected Unreachable, got {other:?}"),
		Ok(_) => panic!("connected to nothing"),
	}
	// The server goes away after connecting: puts fail and store nothing.
	let mut server = Server::start();
	let s = store(&server).await;
	server.child.kill().unwrap();
	server.child.wait().unwrap();
	assert!(matches!(
		s.put("patient-a", "LabResult", DigestAlgorithm::Sm3, b"lost?").await,
		Err(StoreError::Unreachable(_))
	));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_what_each_read_served_and_holds_back_the_newest() {
	use medchain_record_store::journal::state;
	let server = Server::start();
	let s = store(&server).await;
	let journal = s.journal();
	journal.prepare().await.unwrap();
	let read = |id: u8, served: Served| journaled(id, 7, served);
	assert!(journal.append(&read(1, Served::Record)).await.unwrap());
	assert!(journal.append(&read(2, Served::KeyFragment)).await.unwrap());
	// The same signed request again: not a new read.
	assert!(!journal.append(&read(2, Served::KeyFragment)).await.unwrap());
	// Just served: held back while its server may still withhold it.
	assert!(journal.take(32, Duration::from_secs(60)).await.unwrap().is_empty());
	assert!(journal.unlogged(32, Duration::from_secs(60)).await.unwrap().is_empty());
	tokio::time::sleep(Duration::from_millis(20)).await;
	let mut unlogged = journal.unlogged(32, Duration::ZERO).await.unwrap();
	unlogged.sort_by_key(|r| r.read);
	assert_eq!(unlogged, vec![read(1, Served::Record), read(2, Served::KeyFragment)], "what was served survives");
	assert!(journal.withhold(&[2; 32], "not allowed any more").await.unwrap());
	assert_eq!(journal.take(32, Duration::ZERO).await.unwrap(), vec![read(1, Served::Record)]);
	assert_eq!(journal.count(state::WITHHELD).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_read_is_never_logged_as_served_and_one_the_submitter_took_is_never_withheld() {
	use medchain_record_store::journal::state;
	let server = Server::start();
	let s = store(&server).await;
	let journal = s.journal();
	journal.prepare().await.unwrap();
	let read = |id: u8| journaled(id, u64::from(id), Served::Record);
	for id in 1..=3 {
		assert!(journal.append(&read(id)).await.unwrap());
	}
	tokio::time::sleep(Duration::from_millis(20)).await;
	// A server withholds read 3 while the submitter is about to log: the
	// submitter takes the others only.
	assert!(journal.withhold(&[3; 32], "not allowed any more").await.unwrap());
	let mut taken = journal.take(32, Duration::ZERO).await.unwrap();
	taken.sort_by_key(|r| r.read);
	assert_eq!(taken, vec![read(1), read(2)]);
	assert_eq!(journal.count(state::SUBMITTING).await.unwrap(), 2);
	// Taken, read 1 can no longer be withheld by a server whose last check
	// came too late: it is logged (a read logged that was not served,
	// never the other way round).
	assert!(!journal.withhold(&[1; 32], "not checked again in time").await.unwrap());
	// The submitter marks what it logged: a read withheld meanwhile is not
	// overwritten, even named among them.
	journal.mark(&[[1; 32], [3; 32]], state::LOGGED, "0xb1").await.unwrap();
	assert_eq!(journal.count(state::LOGGED).await.unwrap(), 1);
	assert_eq!(journal.count(state::WITHHELD).await.unwrap(), 1, "still withheld");
	// A crash before read 2 was known final: taken again, never lost.
	assert_eq!(journal.take(32, Duration::ZERO).await.unwrap(), vec![read(2)]);
	assert_eq!(journal.unlogged(32, Duration::ZERO).await.unwrap(), vec![read(2)]);
	journal.mark(&[[2; 32]], state::LOGGED, "0xb2").await.unwrap();
	assert!(journal.take(32, Duration::ZERO).await.unwrap().is_empty());
	assert!(journal.unlogged(32, Duration::ZERO).await.unwrap().is_empty());
	// An entry that does not parse (altered behind the gateway) holds up no
	// other read: marked refused, an alarm, and the rest taken.
	let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
	raw.database("medchain")
		.collection::<mongodb::bson::Document>(medchain_record_store::journal::COLLECTION)
		.insert_one(doc! { "_id": "garbled", "state": state::PENDING, "checked_at": 0_i64, "served": mongodb::bson::DateTime::from_millis(0) })
		.await
		.unwrap();
	assert!(journal.append(&read(4)).await.unwrap());
	tokio::time::sleep(Duration::from_millis(20)).await;
	assert_eq!(journal.take(32, Duration::ZERO).await.unwrap(), vec![read(4)]);
	assert_eq!(journal.count(state::REFUSED).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_journaled_at_once_share_a_write_and_a_replay_among_them_is_still_caught() {
	use medchain_record_store::journal::state;
	let server = Server::start();
	let s = store(&server).await;
	let journal = s.journal();
	journal.prepare().await.unwrap();
	let read = |id: u8| journaled(id, u64::from(id), Served::KeyFragment);
	// Journaled before: its replay in the crowd below is refused.
	assert!(journal.append(&read(0)).await.unwrap());
	// 60 reads at once, read 7 twice among them (a replay racing itself).
	let ids: Vec<u8> = (0..60).chain([7]).collect();
	let appends: Vec<_> = ids
		.iter()
		.map(|&id| {
			let journal = journal.clone();
			tokio::spawn(async move { (id, journal.append(&read(id)).await.unwrap()) })
		})
		.collect();
	let mut fresh = std::collections::BTreeMap::<u8, Vec<bool>>::new();
	for a in appends {
		let (id, written) = a.await.unwrap();
		fresh.entry(id).or_default().push(written);
	}
	assert_eq!(fresh[&0], vec![false], "journaled before");
	let mut seven = fresh[&7].clone();
	seven.sort();
	assert_eq!(seven, vec![false, true], "one of the two is the replay");
	assert!((1..60u8).filter(|id| *id != 7).all(|id| fresh[&id] == vec![true]));
	assert_eq!(journal.count(state::PENDING).await.unwrap(), 60, "every read once");
	let mut pending = journal.unlogged(100, Duration::ZERO).await.unwrap();
	pending.sort_by_key(|r| r.read);
	assert_eq!(pending, (0..60).map(read).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_journal_write_fails_is_told_so() {
	let mut server = Server::start();
	let s = store(&server).await;
	let journal = s.journal();
	journal.prepare().await.unwrap();
	server.child.kill().unwrap();
	server.child.wait().unwrap();
	let (read, other) = (journaled(9, 7, Served::Record), journaled(8, 7, Served::Record));
	// Two at once, in one batch: both fail, neither counts as journaled.
	let (a, b) = tokio::join!(journal.append(&read), journal.append(&other));
	assert!(matches!(a, Err(StoreError::Unreachable(_))), "{a:?}");
	assert!(matches!(b, Err(StoreError::Unreachable(_))), "{b:?}");
}

/// Read `id` of `record` by one reader under grant 3, checked at block 40.
fn journaled(id: u8, record: u64, served: Served) -> JournaledRead {
	JournaledRead {
		read: [id; 32],
		record,
		accessor: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
		purpose: "Treatment".into(),
		grant: Some(3),
		checked_at: 40,
		served,
	}
}
