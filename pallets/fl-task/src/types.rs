//! Types of the federated-learning pallet: task specifications, rounds, model
//! updates and the fixed-point number format of model parameters.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use alloc::vec::Vec;
use frame_support::{
	traits::{ConstU32, Get},
	BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::Permill;

/// Identifier of a learning task.
pub type TaskId = u32;

/// Index of a round within a task, from 0.
pub type RoundIndex = u32;

/// A model parameter (or a loss) in fixed point: the real value times
/// [`FIXED_ONE`]. Every aggregator works on these integers, so honest
/// aggregators compute bit-identical models on any machine.
pub type Fixed = i64;

/// Fractional bits of [`Fixed`].
pub const FIXED_FRAC_BITS: u32 = 24;

/// The value 1.0 in [`Fixed`].
pub const FIXED_ONE: Fixed = 1 << FIXED_FRAC_BITS;

/// Largest parameter bound (`max_abs`) a runtime may allow: 2^40 in
/// [`Fixed`], 65 536.0. Under it a weighted parameter (times a `u32`
/// sample count and a `u32` credit) stays under 2^105, so the `i128` sums of
/// every rule hold up to 2^21 updates, and clipping's products stay under
/// 2^105 too.
pub const PARAM_ABS_CEILING: Fixed = 1 << 40;

/// Converts a real number to [`Fixed`], rounding to nearest (off-chain use).
#[cfg(feature = "std")]
pub fn to_fixed(x: f64) -> Fixed {
	(x * FIXED_ONE as f64).round() as Fixed
}

/// Converts [`Fixed`] to a real number (off-chain use).
#[cfg(feature = "std")]
pub fn from_fixed(x: Fixed) -> f64 {
	x as f64 / FIXED_ONE as f64
}

/// Parameters per chunk of a model in a model store (512 KiB of [`Fixed`]).
/// A stored model is chunk `i` = parameters `i × STORE_CHUNK ..`, the last
/// chunk shorter.
pub const STORE_CHUNK: u32 = 65_536;

/// Most bytes of a model store's address (its base URL).
pub type MaxStoreUrl = ConstU32<128>;

/// A model kept off chain in a content-addressed model store, by digest and
/// pointer. The store serves the manifest at `{store}/models/0x{digest}` and
/// each chunk at `{store}/chunks/0x{chunk digest}`; readers check every
/// digest, so a store can withhold a model but not alter it.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct ModelRef {
	/// [`stored_model_digest`] of the parameters.
	pub digest: H256,
	/// Number of parameters.
	pub params: u32,
	/// Base URL of the model store holding it: the store its submitter
	/// registered ([`ModelStores`](crate::ModelStores)).
	pub store: BoundedVec<u8, MaxStoreUrl>,
}

/// What a committee member asks of a model store to read one participant's
/// update of a round. Updates are *sealed*: a store keeps them apart from
/// public models (`PUT|GET {store}/sealed/models/0x{digest}` and
/// `…/sealed/chunks/0x{chunk digest}`) and answers a read only when it
/// carries a [`SealedReadAuth`] by a member of the round's committee, with
/// the bytes encrypted to the member's one-time [`reader`](Self::reader)
/// key ([`SealedAnswer`]). Neither chain state (a digest and a pointer) nor
/// the store shows anyone else a hospital's update.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct SealedRead<AccountId> {
	/// A block at which the reader sits on the round's committee and the
	/// update is in the round (the block the round closed at): the store
	/// checks both in that block's state.
	pub at: H256,
	/// The task.
	pub task: TaskId,
	/// The round.
	pub round: RoundIndex,
	/// Whose update.
	pub participant: AccountId,
	/// The update's model digest ([`ModelRef::digest`]).
	pub model: H256,
	/// Compressed secp256k1 public key (Umbral) the answer is encrypted to;
	/// its secret never leaves the reader.
	pub reader: [u8; 33],
}

/// Signing context of a [`SealedRead`]: what a reader signs is
/// `(SEALED_READ_CONTEXT, read).encode()`.
pub const SEALED_READ_CONTEXT: &[u8] = b"medchain/fl-task/sealed-read/1";

/// Name of the HTTP header carrying a [`SealedReadAuth`], as `0x` and the
/// hex digits of its SCALE encoding.
pub const SEALED_READ_HEADER: &str = "X-Medchain-Sealed-Read";

impl<AccountId: Encode> SealedRead<AccountId> {
	/// The bytes its reader signs.
	pub fn signing_payload(&self) -> Vec<u8> {
		(SEALED_READ_CONTEXT, self).encode()
	}
}

/// A [`SealedRead`] signed by a committee member's aggregator key.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct SealedReadAuth<AccountId> {
	/// The request.
	pub read: SealedRead<AccountId>,
	/// The signer's public key (sr25519 on Medchain: its account).
	pub signer: Vec<u8>,
	/// Its signature over [`SealedRead::signing_payload`].
	pub signature: Vec<u8>,
}

/// A store's answer to a sealed read: the manifest's or chunk's bytes,
/// encrypted to the read's [`reader`](SealedRead::reader) key with Umbral
/// (secp256k1 key encapsulation, ChaCha20-Poly1305).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct SealedAnswer {
	/// The capsule, in Umbral's wire format.
	pub capsule: Vec<u8>,
	/// The authenticated ciphertext.
	pub ciphertext: Vec<u8>,
}

/// Signing context of an upload to a model store: an uploader signs
/// `(STORE_UPLOAD_CONTEXT, digest, sealed).encode()`, `digest` being the
/// name the body is `PUT` under and `sealed` whether on the sealed paths.
pub const STORE_UPLOAD_CONTEXT: &[u8] = b"medchain/fl-task/store-upload/1";

/// Name of the HTTP header carrying an [`UploadAuth`], as `0x` and the hex
/// digits of its SCALE encoding.
pub const STORE_UPLOAD_HEADER: &str = "X-Medchain-Upload";

/// A signed upload: a store takes a `PUT` only from an active institution
/// of the consortium (`401` without a valid signature, `403` for anyone
/// else). Replaying one uploads the same bytes again, to the same paths
/// (the body must hash to the signed name, and the signature says sealed
/// or public), which changes nothing.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct UploadAuth {
	/// The name (manifest or chunk digest) the body is uploaded under.
	pub digest: H256,
	/// Whether it goes to the sealed paths.
	pub sealed: bool,
	/// The uploader's public key (sr25519 on Medchain: its account).
	pub signer: Vec<u8>,
	/// Its signature over [`UploadAuth::signing_payload`] of `digest` and
	/// `sealed`.
	pub signature: Vec<u8>,
}

impl UploadAuth {
	/// The bytes an uploader signs to upload under `digest`, to the sealed
	/// paths or not.
	pub fn signing_payload(digest: &H256, sealed: bool) -> Vec<u8> {
		(STORE_UPLOAD_CONTEXT, digest, sealed).encode()
	}
}

/// Label under which a reader's one-time key is derived from its seed
/// ([`medchain_umbral::secret_key`]).
pub const SEALED_READER_LABEL: &[u8] = b"medchain/fl-task/reader";

/// Whether `url` is an `http://` or `https://` URL with a host and no
/// spaces or control characters: a model store's address.
pub fn is_store_url(url: &[u8]) -> bool {
	let rest = url.strip_prefix(b"http://").or_else(|| url.strip_prefix(b"https://"));
	matches!(rest, Some(host) if !host.is_empty() && host.iter().all(|b| b.is_ascii_graphic()))
}

/// Whether `url` may be registered as an institution's model store
/// ([`Pallet::register_store`](crate::Pallet::register_store)):
///
/// - `https://host[:port][/path]`, where `host` is a DNS name of at least
///   two labels whose last label starts with a letter (so no numeric
///   spelling of an address such as `2130706433` or `0x7f.1`) and is not a
///   name reserved for local networks (`localhost`, `local`, `localdomain`,
///   `internal`, `lan`, `home`, `intranet`, `corp`, `private`, `arpa`);
///   IP literals are refused;
/// - no user info (`@`), query (`?`), fragment (`#`), percent escapes,
///   backslashes, `.`/`..` segments, spaces, control characters or trailing
///   `/`;
/// - with `allow_loopback` (a development chain), also a loopback host
///   (`localhost`, `127.0.0.0/8`, `[::1]`), over `http://` or `https://`.
///
/// The runtime does not resolve names: what a name resolves to inside an
/// aggregator's network is for that node's egress rules (see the pallet's
/// README).
pub fn is_registrable_store(url: &[u8], allow_loopback: bool) -> bool {
	let Ok(url) = core::str::from_utf8(url) else { return false };
	let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
		(Some(rest), _) => (true, rest),
		(None, Some(rest)) => (false, rest),
		(None, None) => return false,
	};
	let clean = |s: &str| {
		s.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'?' | b'#' | b'%' | b'\\'))
	};
	if !clean(rest) || rest.ends_with('/') {
		return false;
	}
	let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
	if path.split('/').any(|segment| segment == ".." || segment == ".") {
		return false;
	}
	match store_host(authority) {
		Some(StoreHost::Loopback) => allow_loopback,
		Some(StoreHost::Public) => https,
		Some(StoreHost::Internal) | None => false,
	}
}

/// What a model store's host is, as far as the chain lets it be registered.
enum StoreHost {
	/// `localhost` or a loopback address: only on development chains.
	Loopback,
	/// Any other IP literal, or a name reserved for local networks: never.
	Internal,
	/// A DNS name in a public domain.
	Public,
}

/// Top-level labels of names that resolve only inside a local network.
const LOCAL_TOP_LABELS: [&str; 10] =
	["localhost", "local", "localdomain", "internal", "lan", "home", "intranet", "corp", "private", "arpa"];

/// Classifies the `host[:port]` of a store URL; `None` when malformed.
fn store_host(authority: &str) -> Option<StoreHost> {
	use core::net::{Ipv4Addr, Ipv6Addr};
	let (host, port) = match authority.strip_prefix('[') {
		Some(v6) => {
			let (addr, after) = v6.split_once(']')?;
			let port = if after.is_empty() { None } else { Some(after.strip_prefix(':')?) };
			(addr, port)
		},
		None => match authority.split_once(':') {
			Some((host, port)) => (host, Some(port)),
			None => (authority, None),
		},
	};
	if let Some(port) = port {
		let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
		if !valid || !(1..=65_535).contains(&port.parse::<u32>().ok()?) {
			return None;
		}
	}
	let loopback_or_internal = |loopback: bool| if loopback { StoreHost::Loopback } else { StoreHost::Internal };
	if authority.starts_with('[') {
		let ip: Ipv6Addr = host.parse().ok()?;
		return Some(loopback_or_internal(ip.is_loopback()));
	}
	if let Ok(ip) = host.parse::<Ipv4Addr>() {
		return Some(loopback_or_internal(ip.is_loopback()));
	}
	let labels_ok = !host.is_empty() &&
		host.len() <= 253 &&
		host.split('.').all(|l| {
			!l.is_empty() &&
				l.len() <= 63 &&
				!l.starts_with('-') &&
				!l.ends_with('-') &&
				l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
		});
	let last = host.rsplit('.').next().unwrap_or_default();
	if !labels_ok || !last.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
		return None;
	}
	if host.eq_ignore_ascii_case("localhost") || last.eq_ignore_ascii_case("localhost") {
		return Some(StoreHost::Loopback);
	}
	// One label (`intranet-store`, `ip6-localhost`): resolved by the
	// node's own search domains and hosts file, so local.
	let local = !host.contains('.') || LOCAL_TOP_LABELS.iter().any(|l| last.eq_ignore_ascii_case(l));
	Some(if local { StoreHost::Internal } else { StoreHost::Public })
}

/// A model's parameters: inline on chain (up to `MaxParams`), or by
/// reference to a model store (larger models). Every model of a task (initial
/// model, updates, aggregates) takes the form of its initial model.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParams))]
#[codec(mel_bound())]
pub enum ModelParams<MaxParams: Get<u32>> {
	/// The parameters themselves, in [`Fixed`].
	Inline(BoundedVec<Fixed, MaxParams>),
	/// A model in a model store.
	Stored(ModelRef),
}

impl<MaxParams: Get<u32>> ModelParams<MaxParams> {
	/// Number of parameters.
	pub fn len(&self) -> u32 {
		match self {
			ModelParams::Inline(p) => p.len() as u32,
			ModelParams::Stored(r) => r.params,
		}
	}

	/// Whether the model has no parameters.
	pub fn is_empty(&self) -> bool {
		self.len() == 0
	}

	/// Whether the model is kept in a model store.
	pub fn is_stored(&self) -> bool {
		matches!(self, ModelParams::Stored(_))
	}

	/// The model's digest: [`model_digest`] inline, [`stored_model_digest`]
	/// stored.
	pub fn digest(&self) -> H256 {
		match self {
			ModelParams::Inline(p) => model_digest(p),
			ModelParams::Stored(r) => r.digest,
		}
	}

	/// The parameters, if inline.
	pub fn inline(&self) -> Option<&[Fixed]> {
		match self {
			ModelParams::Inline(p) => Some(p),
			ModelParams::Stored(_) => None,
		}
	}

	/// The reference, if stored.
	pub fn stored(&self) -> Option<&ModelRef> {
		match self {
			ModelParams::Inline(_) => None,
			ModelParams::Stored(r) => Some(r),
		}
	}

	/// Size of the call argument in parameter units (8 bytes), the unit the
	/// benchmarked weights are linear in: the parameter count inline, the
	/// encoded reference's size stored.
	pub fn weight_units(&self) -> u32 {
		match self {
			ModelParams::Inline(p) => p.len() as u32,
			ModelParams::Stored(r) => (r.encoded_size() as u32).div_ceil(8),
		}
	}
}

/// The manifest of a stored model: its length and the digest of each chunk.
/// Its BLAKE2-256 is the model's digest.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct StoredManifest {
	/// Number of parameters.
	pub params: u32,
	/// [`chunk_digest`] of each chunk, in order.
	pub chunks: Vec<H256>,
}

impl StoredManifest {
	/// The model digest this manifest stands for.
	pub fn digest(&self) -> H256 {
		H256(sp_io::hashing::blake2_256(&self.encode()))
	}

	/// Number of chunks a model of `params` parameters has.
	pub fn chunk_count(params: u32) -> u32 {
		params.div_ceil(STORE_CHUNK)
	}
}

/// A chunk as a store keeps it: each parameter as 8 little-endian bytes.
pub fn chunk_bytes(chunk: &[Fixed]) -> Vec<u8> {
	let mut out = Vec::with_capacity(chunk.len() * 8);
	for p in chunk {
		out.extend_from_slice(&p.to_le_bytes());
	}
	out
}

/// Parses a chunk from its stored bytes; `None` unless a multiple of 8 bytes.
pub fn chunk_from_bytes(bytes: &[u8]) -> Option<Vec<Fixed>> {
	if bytes.len() % 8 != 0 {
		return None;
	}
	Some(bytes.chunks_exact(8).map(|b| Fixed::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])).collect())
}

/// BLAKE2-256 of a chunk's stored bytes.
pub fn chunk_digest(chunk: &[Fixed]) -> H256 {
	H256(sp_io::hashing::blake2_256(&chunk_bytes(chunk)))
}

/// Digest of a model kept in a model store: BLAKE2-256 of its
/// [`StoredManifest`].
pub fn stored_model_digest(params: &[Fixed]) -> H256 {
	StoredManifest {
		params: params.len() as u32,
		chunks: params.chunks(STORE_CHUNK as usize).map(chunk_digest).collect(),
	}
	.digest()
}

/// The model a task trains. Parameters are laid out flat, row-major.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum ModelKind {
	/// Binary logistic regression: `features` weights, then the bias.
	LogisticRegression {
		/// Number of input features.
		features: u32,
	},
	/// A one-hidden-layer perceptron with ReLU and a sigmoid output:
	/// `features × hidden` input weights, `hidden` hidden biases, `hidden`
	/// output weights, then the output bias.
	Mlp {
		/// Number of input features.
		features: u32,
		/// Width of the hidden layer.
		hidden: u32,
	},
}

impl ModelKind {
	/// Number of parameters of this model, or `None` if it overflows or a
	/// dimension is zero.
	pub fn parameter_count(&self) -> Option<u32> {
		match *self {
			ModelKind::LogisticRegression { features } if features > 0 => features.checked_add(1),
			ModelKind::Mlp { features, hidden } if features > 0 && hidden > 0 => features
				.checked_mul(hidden)?
				.checked_add(hidden.checked_mul(2)?)?
				.checked_add(1),
			_ => None,
		}
	}
}

/// How the updates of a round become the next global model.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum AggregationRule {
	/// Federated averaging: the mean of the updates weighted by sample count.
	FedAvg,
	/// FedAvg after clipping each update's change to the global model to an
	/// L2 norm of at most `max_norm` (fixed point).
	ClippedFedAvg {
		/// Largest L2 norm of an update's change, in [`Fixed`].
		max_norm: Fixed,
	},
	/// Coordinate-wise median of the updates.
	Median,
	/// Coordinate-wise mean after dropping the `trim` fraction of lowest and
	/// of highest values.
	TrimmedMean {
		/// Fraction dropped at each end; below one half.
		trim: Permill,
	},
	/// FedAvg with each update weighted by its sample count times its
	/// submitter's credit score when the update was submitted.
	CreditWeightedFedAvg,
}

/// What the task publisher suggests to the participants' local training.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct TrainingHints {
	/// Local epochs per round.
	pub epochs: u16,
	/// Learning rate, in [`Fixed`].
	pub learning_rate: Fixed,
	/// Mini-batch size; 0 means full batch.
	pub batch_size: u32,
}

/// What a task accepts from one update. Bounds keep every honest
/// aggregator's arithmetic far from overflow, so one participant's extreme
/// values cannot make a round fail; sample counts bound how much one update
/// weighs and how little data it may stand for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct UpdateLimits {
	/// Largest absolute value of a parameter, in [`Fixed`]. An inline update
	/// (or aggregate) beyond it is refused; a stored update beyond it is
	/// excluded from aggregation and flagged. At most the runtime's
	/// `MaxParamAbs`.
	pub max_abs: Fixed,
	/// Fewest samples behind an update: a model trained on a handful of
	/// patients is close to their records. At least the runtime's
	/// `MinSamplesFloor`.
	pub min_samples: u32,
	/// Most samples an update is weighted by; a larger count is recorded as
	/// this, so an inflated count cannot dominate FedAvg or the round's
	/// accuracy.
	pub max_samples: u32,
	/// Fewest held-out rows behind an update's evaluation of the global
	/// model: an accuracy measured on a handful of rows says little about
	/// the model (and much about those rows). At least the runtime's
	/// `MinSamplesFloor`.
	pub min_held_out: u32,
}

impl UpdateLimits {
	/// Whether every parameter is within `max_abs`.
	pub fn bounds(&self, params: &[Fixed]) -> bool {
		let most = self.max_abs.unsigned_abs();
		params.iter().all(|v| v.unsigned_abs() <= most)
	}

	/// The sample count an update of `samples` is weighted by.
	pub fn weight_of(&self, samples: u32) -> u32 {
		samples.min(self.max_samples)
	}
}

/// What a publisher asks for when publishing a task.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParams))]
#[codec(mel_bound())]
pub struct TaskSpec<MaxParams: Get<u32>> {
	/// The model trained.
	pub model: ModelKind,
	/// The initial global model, inline or stored; the task's updates and
	/// aggregates take the same form.
	pub initial_model: ModelParams<MaxParams>,
	/// Suggested local training.
	pub hints: TrainingHints,
	/// The task finishes once the sample-weighted validation accuracy the
	/// participants report for a round reaches this.
	pub target_accuracy: Permill,
	/// The task finishes after this many rounds at most.
	pub max_rounds: u32,
	/// Fewest updates a round needs to be aggregated (the quorum).
	pub min_participants: u32,
	/// Blocks a round collects updates for.
	pub round_blocks: u32,
	/// How updates are aggregated.
	pub rule: AggregationRule,
	/// Distinct aggregators that must submit the same model digest before it
	/// is adopted.
	pub aggregators_required: u32,
	/// What one update may contain.
	pub limits: UpdateLimits,
	/// Differential privacy the participants' clients apply to their
	/// updates, if any.
	pub privacy: Option<DifferentialPrivacy>,
}

/// Differential privacy a task asks of its participants: before it leaves
/// the hospital, a participant's update (its change to the global model) is
/// clipped to an L2 norm of `clip_norm` and every parameter gets Gaussian
/// noise of standard deviation `noise_multiplier × clip_norm`.
///
/// Any two local datasets of a hospital (in particular two that differ in one
/// patient's row) give clipped changes at most `2 × clip_norm` apart, so each
/// round is the Gaussian mechanism with sensitivity `2C` and noise `zC`:
/// Rényi DP of order α at `2α / z²`. Over `T` rounds (one update per round)
/// the hospital's updates are `(ε, δ)`-DP with
/// `ε = ρ + 2√(ρ · ln(1/δ))`, `ρ = 2T / z²` ([`Self::epsilon_milli`]: the
/// conversion from Rényi DP at the best order).
///
/// The noise is added by the participant's client: the chain cannot see it
/// (an update is the participant's own disclosure). The chain records the
/// parameters and the ε they give, so every participant and regulator reads
/// the same guarantee.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub struct DifferentialPrivacy {
	/// L2 norm an update's change to the global model is clipped to, in
	/// [`Fixed`].
	pub clip_norm: Fixed,
	/// Standard deviation of the noise as a multiple of `clip_norm` (`z`), in
	/// thousandths: 1 000 is z = 1.
	pub noise_multiplier: u32,
	/// δ is `10^-delta_exponent`.
	pub delta_exponent: u8,
}

/// Noise multipliers a task may ask for, in thousandths: z from 0.1 to 100.
pub const NOISE_MULTIPLIER_RANGE: core::ops::RangeInclusive<u32> = 100..=100_000;

/// Exponents of δ a task may ask for: δ from 10⁻⁴ to 10⁻¹⁸.
pub const DELTA_EXPONENT_RANGE: core::ops::RangeInclusive<u8> = 4..=18;

impl DifferentialPrivacy {
	/// Whether the parameters are in range for a task whose parameters are
	/// bounded by `max_abs`.
	pub fn is_valid(&self, max_abs: Fixed) -> bool {
		(1..=max_abs).contains(&self.clip_norm) &&
			NOISE_MULTIPLIER_RANGE.contains(&self.noise_multiplier) &&
			DELTA_EXPONENT_RANGE.contains(&self.delta_exponent)
	}

	/// ε, in thousandths, of `rounds` rounds of one update each:
	/// `ρ + 2√(ρ · ln(1/δ))` with `ρ = 2T / z²`. Fixed point throughout (18
	/// decimals), so every node computes the same value; its steps round
	/// down by far less than a thousandth, so the result is rounded up and
	/// one thousandth added: never under the true ε. Saturates at
	/// `u32::MAX`.
	pub fn epsilon_milli(&self, rounds: u32) -> u32 {
		use sp_runtime::{
			traits::{Bounded, Saturating},
			FixedPointNumber, FixedU128,
		};
		/// ln 10 in [`FixedU128`] (18 decimals).
		const LN_10: FixedU128 = FixedU128::from_inner(2_302_585_092_994_045_684);
		if rounds == 0 {
			return 0;
		}
		let z = u128::from(self.noise_multiplier.max(1));
		// ρ = 2T / z², z = noise_multiplier / 1000.
		let rho = FixedU128::checked_from_rational(2_000_000u128.saturating_mul(rounds.into()), z.saturating_mul(z))
			.unwrap_or_else(FixedU128::max_value);
		let log_inv_delta = LN_10.saturating_mul(FixedU128::saturating_from_integer(self.delta_exponent));
		let epsilon =
			rho.saturating_add(FixedU128::saturating_from_integer(2u32).saturating_mul(rho.saturating_mul(log_inv_delta).checked_sqrt().unwrap_or_else(FixedU128::max_value)));
		let milli = epsilon.into_inner().div_ceil(1_000_000_000_000_000).saturating_add(1);
		u32::try_from(milli).unwrap_or(u32::MAX)
	}
}

/// A task's differential privacy as recorded on chain, with the ε it gives.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct PrivacyBudget {
	/// The parameters the participants' clients apply.
	pub dp: DifferentialPrivacy,
	/// ε of one round (one update), in thousandths.
	pub epsilon_round_milli: u32,
	/// ε of the task's `max_rounds` rounds (all the updates a participant
	/// may send), in thousandths: the most the task spends.
	pub epsilon_total_milli: u32,
}

impl PrivacyBudget {
	/// The budget of `dp` over `max_rounds` rounds.
	pub fn new(dp: DifferentialPrivacy, max_rounds: u32) -> Self {
		PrivacyBudget {
			dp,
			epsilon_round_milli: dp.epsilon_milli(1),
			epsilon_total_milli: dp.epsilon_milli(max_rounds),
		}
	}
}

/// Where a task stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum TaskStatus {
	/// Rounds are running.
	Running,
	/// The task is over; `reached_target` tells whether the target accuracy
	/// was reached (otherwise the rounds ran out).
	Finished {
		/// The participants' measured accuracy of the final model (the
		/// median of their evaluations) reached the target.
		reached_target: bool,
	},
	/// The task stopped without a result.
	Failed(FailureReason),
}

/// Why a task failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo)]
pub enum FailureReason {
	/// A round stayed under the quorum after all its extensions.
	QuorumNotReached,
	/// Aggregators did not agree on a model in time.
	AggregationTimedOut,
	/// The publisher (or governance) cancelled it.
	Cancelled,
}

/// A learning task as stored.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct LearningTask<AccountId> {
	/// Who published it.
	pub publisher: AccountId,
	/// The model trained.
	pub model: ModelKind,
	/// Suggested local training.
	pub hints: TrainingHints,
	/// Accuracy that finishes the task.
	pub target_accuracy: Permill,
	/// Most rounds.
	pub max_rounds: u32,
	/// Quorum of a round.
	pub min_participants: u32,
	/// Blocks a round collects updates for.
	pub round_blocks: u32,
	/// Aggregation rule.
	pub rule: AggregationRule,
	/// Agreeing aggregators needed to adopt a model.
	pub aggregators_required: u32,
	/// What one update may contain.
	pub limits: UpdateLimits,
	/// Where the task stands.
	pub status: TaskStatus,
	/// The current (or, once over, the last) round.
	pub round: RoundIndex,
	/// Institutions that joined.
	pub participants: u32,
	/// Digest of the current global model ([`ModelParams::digest`]).
	pub model_digest: H256,
	/// The task's models are kept in model stores, by reference.
	pub stored_models: bool,
	/// Differential privacy of the participants' updates and the ε it gives,
	/// if the task asks for it.
	pub privacy: Option<PrivacyBudget>,
}

/// Where a round stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum RoundPhase<BlockNumber> {
	/// Participants submit updates until the deadline.
	Collecting,
	/// Closed; aggregators compute and submit the next model.
	Aggregating {
		/// Block the round closed in.
		since: BlockNumber,
	},
	/// A model was adopted.
	Adopted {
		/// Digest of the adopted aggregate (model and flagged outliers).
		digest: H256,
	},
	/// The round ended without a model (the task failed).
	Abandoned,
	/// The participants' evaluations of the global model this round trained
	/// from reached the target: the task finished with that model, and this
	/// round's aggregate was not adopted.
	Stopped,
}

/// A round of a task.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Round<BlockNumber> {
	/// Where it stands.
	pub phase: RoundPhase<BlockNumber>,
	/// Block by which updates must be in.
	pub deadline: BlockNumber,
	/// Times the deadline was extended for lack of quorum.
	pub extensions: u8,
	/// Updates submitted.
	pub submitted: u32,
	/// Total samples behind the submitted updates.
	pub samples: u64,
	/// The participants' measured accuracy of the global model the round
	/// trained from: the median of their evaluations (the lower middle one
	/// for an even count), set when the round closes. While liars are
	/// fewer than half, it is an honest participant's value (with two
	/// participants it is the lower one: either can delay a stop, neither
	/// can force one).
	pub accuracy: Permill,
	/// Sample-weighted mean of the loss the participants measured for that
	/// model, in [`Fixed`] (shown, not decided on).
	pub loss: Fixed,
	/// Updates flagged as outliers by the adopted aggregate.
	pub outliers: u32,
}

/// A participant's local update for one round.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParams))]
#[codec(mel_bound())]
pub struct ModelUpdate<MaxParams: Get<u32>> {
	/// The locally trained parameters, in [`Fixed`].
	pub params: ModelParams<MaxParams>,
	/// Local training samples behind them; on chain, at most the task's
	/// `max_samples` (a larger count is recorded as that).
	pub samples: u32,
	/// The participant's evaluation: accuracy of the task's current global
	/// model (the one these parameters were trained from) on its held-out
	/// data. The task stops on the median of the round's evaluations.
	pub accuracy: Permill,
	/// Loss of the current global model on the held-out data, in [`Fixed`].
	pub loss: Fixed,
	/// Held-out rows the evaluation was measured on; at least the task's
	/// `min_held_out`.
	pub held_out: u32,
}

/// A model proposed by aggregators for a round, with its supporters.
#[derive(Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound)]
#[scale_info(skip_type_params(MaxParams, MaxParticipants))]
#[codec(mel_bound(AccountId: MaxEncodedLen))]
pub struct Proposal<AccountId, MaxParams: Get<u32>, MaxParticipants: Get<u32>>
where
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
{
	/// The proposed global model.
	pub params: ModelParams<MaxParams>,
	/// Participants whose updates the proposal flags as outliers.
	pub outliers: BoundedVec<AccountId, MaxParticipants>,
	/// Aggregators that submitted this digest.
	pub votes: u32,
}

/// BLAKE2-256 digest that aggregators agree on: the task, the round, the new
/// model's digest ([`ModelParams::digest`]; not where it is stored) and the
/// flagged outliers.
pub fn aggregate_digest<AccountId: Encode>(
	task: TaskId,
	round: RoundIndex,
	model_digest: H256,
	outliers: &[AccountId],
) -> H256 {
	H256(sp_io::hashing::blake2_256(&(task, round, model_digest, outliers).encode()))
}

/// BLAKE2-256 digest of an inline model's parameters (their SCALE encoding).
pub fn model_digest(params: &[Fixed]) -> H256 {
	H256(sp_io::hashing::blake2_256(&params.encode()))
}
