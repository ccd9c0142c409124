//! What Medchain's proxy path costs against raw `umbral-pre`, measured in the
//! same run on the same material (native code, one core).
//!
//! `cargo run --release -p medchain-umbral --example reencrypt_cost [iterations]`
//!
//! - proxy: open the sealed key fragment (decrypt, decode, verify against the
//!   patient's keys), re-encrypt, encode the capsule fragment; raw: re-encrypt
//!   an already verified key fragment.
//! - chain: decode and verify a capsule fragment from its wire bytes (what
//!   `submit_fragment` does); raw: verify an already decoded fragment.

use medchain_umbral::*;
use std::time::Instant;

fn per_op(iterations: u32, mut f: impl FnMut()) -> f64 {
	f();
	let t = Instant::now();
	for _ in 0..iterations {
		f();
	}
	t.elapsed().as_secs_f64() * 1e3 / iterations as f64
}

fn main() {
	let iterations: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
	let mut fx = Fixture::new(7, 2);
	let (capsule_bytes, _) = fx.capsule();
	let sealed = fx.sealed_kfrags(2);
	let verifying = fx.signer.verifying_key();
	let (delegating, receiving) = (fx.patient.public_key(), fx.grantee.public_key());
	let keys = Delegation { verifying_key: &verifying, delegating_key: &delegating, receiving_key: &receiving };
	let capsule = capsule(&capsule_bytes).expect("fixture capsule");
	let kfrag = open_kfrag(&fx.proxies[0], &sealed[0].capsule, &sealed[0].ciphertext, &keys).expect("fixture kfrag");
	let cfrag_bytes = fx.cfrag(0, &capsule_bytes, &sealed[0]).expect("fixture cfrag");
	let cfrag = capsule_frag(&cfrag_bytes).expect("fixture cfrag");

	let raw_reencrypt = per_op(iterations, || {
		let _ = umbral_pre::reencrypt(&capsule, kfrag.clone());
	});
	let proxy = per_op(iterations, || {
		let k = open_kfrag(&fx.proxies[0], &sealed[0].capsule, &sealed[0].ciphertext, &keys).expect("opens");
		let _ = reencrypt([1; 32], &capsule, k).expect("re-encrypts");
	});
	let raw_verify = per_op(iterations, || {
		let _ = cfrag.clone().verify(&capsule, &verifying, &delegating, &receiving).expect("verifies");
	});
	let chain_verify = per_op(iterations, || {
		let _ = verify_cfrag(&capsule, &cfrag_bytes, &keys).expect("verifies");
	});
	println!("iterations: {iterations}");
	println!("re-encryption  raw umbral-pre {raw_reencrypt:.3} ms | Medchain proxy path {proxy:.3} ms | ratio {:.2}", proxy / raw_reencrypt);
	println!("cfrag verify   raw umbral-pre {raw_verify:.3} ms | Medchain on-chain path {chain_verify:.3} ms | ratio {:.2}", chain_verify / raw_verify);
}
