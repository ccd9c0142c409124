//! `medchain-fl-client`: what an institution runs beside its Medchain node to
//! take part in federated learning. Patient rows never leave the machine;
//! only model parameters go to the chain.
//!
//! ```text
//! medchain-fl-client split       --input wdbc.csv --out DIR [--seed 7] [--test-fraction 0.2]
//! medchain-fl-client centralized --train A.csv,B.csv --test T.csv [--model lr|mlp] [--epochs 200] [--lr 0.5]
//! medchain-fl-client publish     --suri //Alice --features 30 [--model lr|mlp --hidden 8] [--rounds 20]
//!                                [--quorum 3] [--aggregators 2] [--max-abs 1024] [--min-samples 10]
//!                                [--max-samples 100000] ...
//! medchain-fl-client train       --suri //Bob --task 0 --data hospital-1.csv [--plot out.png]
//! medchain-fl-client evaluate    --task 0 --test T.csv
//! medchain-fl-client aggregate   --task 0 [--at BLOCK_HASH]
//! medchain-fl-client simulate    --data-dir DIR [--rule median] [--rounds 10] [--poisoner 4 --poison-scale 1000]
//! medchain-fl-client store       --listen 127.0.0.1:8730 --dir DIR
//! medchain-fl-client aggregator-store --url http://127.0.0.1:8730
//! medchain-fl-client register-store --suri //Alice --url http://127.0.0.1:8730
//! medchain-fl-client synthetic-update --suri //X --task 1 --store URL [--seed 1]
//! ```
//! Models over the chain's inline bound (64 Ki parameters) live in model
//! stores, by digest and URL: `store` serves one; each institution registers
//! its store on chain once (`register-store`; `publish --store URL` and
//! `train --store URL` register it when it is not yet, then upload there);
//! `aggregator-store` tells the node's offchain worker where to write
//! aggregates (its persistent offchain storage, through the node's unsafe
//! `offchain_localStorageSet` RPC), and the node's aggregator accounts
//! register that same store.
//! `simulate` runs the rounds on one machine, with no chain, through the
//! runtime's own aggregation code: a dry run for choosing a rule.
//! `aggregate` recomputes, natively, what the offchain workers compute in the
//! runtime's Wasm for the task's closed round, and prints its digest: honest
//! aggregators on any machine must print the same.
//! Every command that talks to the chain takes `--node http://127.0.0.1:9944`;
//! `publish` and `train` wait `--wait-s` seconds (60) for their first
//! transaction (the task, the join) to land.

mod data;
mod model;
mod plot;
mod privacy;
mod sim;
mod store;

use medchain_chain_client as rpc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use medchain_chain_client::{
	cli::{NodeArgs, SignerArgs, SubmitArgs},
	Node,
};
use medchain_runtime::{AccountId, Runtime, RuntimeCall};
use model::Model;
use pallet_fl_task::{
	from_fixed, to_fixed, AggregationRule, DifferentialPrivacy, Fixed, GlobalModel, LearningTask, ModelKind, ModelParams, ModelUpdate,
	Participants, RoundPhase, Rounds, TaskSpec, TaskStatus, Tasks, TrainingHints, UpdateCredit, UpdateLimits,
	Updates,
};
use sp_core::{sr25519, Pair, H256};
use sp_runtime::Permill;
use std::{
	collections::HashMap,
	path::PathBuf,
	thread::sleep,
	time::{Duration, Instant},
};

type Round = pallet_fl_task::Round<u32>;
type MaxParams = <Runtime as pallet_fl_task::Config>::MaxParams;

/// Federated learning beside a Medchain node: patient rows stay on this
/// machine, only model parameters go to the chain.
#[derive(Parser)]
#[command(name = "medchain-fl-client", version)]
struct Cli {
	#[command(subcommand)]
	command: Command,
}

#[derive(Subcommand)]
enum Command {
	/// Splits the public data set into a held-out test set and four non-IID
	/// hospitals (hospital-N.csv, test.csv).
	Split(SplitArgs),
	/// Trains on the union of the hospitals' data: the baseline federated
	/// learning is compared to.
	Centralized(CentralizedArgs),
	/// Publishes a learning task and prints its id.
	Publish(PublishArgs),
	/// Joins a task and trains each round on local data until it is over.
	Train(TrainArgs),
	/// Accuracy of a task's current global model on a held-out CSV.
	Evaluate(EvaluateArgs),
	/// Recomputes natively what the offchain workers compute for the task's
	/// closed round, and prints its digest.
	Aggregate(AggregateArgs),
	/// Runs federated rounds on this machine, with no chain, through the
	/// runtime's own aggregation code: a dry run for choosing a rule.
	Simulate(SimulateArgs),
	/// Serves a model store (content-addressed model files over HTTP).
	Store(StoreArgs),
	/// Tells the node's offchain worker which model store to write aggregates
	/// to (through the node's unsafe `offchain_localStorageSet` RPC).
	AggregatorStore(AggregatorStoreArgs),
	/// Registers the signer's model store on chain: its stored models must
	/// name it, and offchain workers fetch only registered stores.
	RegisterStore(RegisterStoreArgs),
	/// For load tests of large models: submits the global model plus seeded
	/// noise for the open round of a task with stored models.
	SyntheticUpdate(SyntheticUpdateArgs),
}

/// The local model.
#[derive(Args)]
struct ModelArgs {
	/// Logistic regression or a one-hidden-layer perceptron.
	#[arg(long, value_enum, default_value_t = ModelChoice::Lr)]
	model: ModelChoice,
	/// Hidden units of the perceptron.
	#[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
	hidden: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelChoice {
	/// Logistic regression.
	Lr,
	/// A perceptron with one hidden layer.
	Mlp,
}

impl ModelArgs {
	/// The model for `features` inputs.
	fn model(&self, features: usize) -> Model {
		match self.model {
			ModelChoice::Lr => Model::Logistic { features },
			ModelChoice::Mlp => Model::Mlp { features, hidden: self.hidden as usize },
		}
	}
}

/// Local training.
#[derive(Args)]
struct TrainingArgs {
	/// Seed of the initial model.
	#[arg(long, default_value_t = 1)]
	seed: u64,
	/// Learning rate.
	#[arg(long, default_value_t = 0.5)]
	lr: f64,
	/// Mini-batch size (0: full batch).
	#[arg(long, default_value_t = 0)]
	batch: u32,
}

/// The aggregation rule.
#[derive(Args)]
struct RuleArgs {
	/// Aggregation rule.
	#[arg(long, value_enum, default_value_t = RuleChoice::Fedavg)]
	rule: RuleChoice,
	/// Share cut at each end by the trimmed mean, in percent.
	#[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..50))]
	trim_percent: u32,
	/// Largest norm of one update's change under clipped FedAvg.
	#[arg(long, default_value_t = 5.0)]
	max_norm: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum RuleChoice {
	/// Sample-weighted mean.
	Fedavg,
	/// Coordinate-wise median.
	Median,
	/// Coordinate-wise trimmed mean.
	TrimmedMean,
	/// FedAvg of changes clipped to --max-norm.
	Clipped,
	/// FedAvg weighted by samples × credit.
	CreditFedavg,
}

impl RuleArgs {
	fn rule(&self) -> AggregationRule {
		match self.rule {
			RuleChoice::Fedavg => AggregationRule::FedAvg,
			RuleChoice::Median => AggregationRule::Median,
			RuleChoice::TrimmedMean => AggregationRule::TrimmedMean { trim: Permill::from_percent(self.trim_percent) },
			RuleChoice::Clipped => AggregationRule::ClippedFedAvg { max_norm: to_fixed(self.max_norm) },
			RuleChoice::CreditFedavg => AggregationRule::CreditWeightedFedAvg,
		}
	}
}

#[derive(Args)]
struct SplitArgs {
	/// The data set (CSV, label last).
	#[arg(long)]
	input: PathBuf,
	/// Directory to write hospital-N.csv and test.csv to.
	#[arg(long)]
	out: PathBuf,
	/// Share of rows held out for testing.
	#[arg(long, default_value_t = 0.2)]
	test_fraction: f64,
	/// Seed of the split.
	#[arg(long, default_value_t = 7)]
	seed: u64,
}

#[derive(Args)]
struct CentralizedArgs {
	/// Comma-separated training CSVs.
	#[arg(long, value_delimiter = ',', required = true)]
	train: Vec<PathBuf>,
	/// Held-out CSV.
	#[arg(long)]
	test: PathBuf,
	#[command(flatten)]
	model: ModelArgs,
	#[command(flatten)]
	training: TrainingArgs,
	/// Epochs.
	#[arg(long, default_value_t = 200)]
	epochs: u32,
}

#[derive(Args)]
struct PublishArgs {
	#[command(flatten)]
	submit: SubmitArgs,
	/// Input features of the model.
	#[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
	features: u32,
	#[command(flatten)]
	model: ModelArgs,
	#[command(flatten)]
	training: TrainingArgs,
	#[command(flatten)]
	rule: RuleArgs,
	/// Local epochs per round.
	#[arg(long, default_value_t = 10)]
	epochs: u16,
	/// Target accuracy (0..1): the task stops when it is reached.
	#[arg(long, default_value_t = 0.97)]
	target: f64,
	/// Most rounds.
	#[arg(long, default_value_t = 20)]
	rounds: u32,
	/// Fewest updates a round needs.
	#[arg(long, default_value_t = 3)]
	quorum: u32,
	/// Blocks a round collects updates for.
	#[arg(long, default_value_t = 10)]
	round_blocks: u32,
	/// Agreeing aggregators that adopt a model (the runtime refuses fewer
	/// than two, raises it to two thirds of the session's collators and
	/// caps it at their number).
	#[arg(long, default_value_t = 2)]
	aggregators: u32,
	/// Largest absolute parameter value of an update.
	#[arg(long, default_value_t = 1024.0)]
	max_abs: f64,
	/// Fewest samples an update may claim (at least the runtime's floor, 10).
	#[arg(long, default_value_t = 10)]
	min_samples: u32,
	/// Most samples an update weighs as.
	#[arg(long, default_value_t = 100_000)]
	max_samples: u32,
	/// Fewest held-out rows an update's evaluation of the global model may
	/// rest on (at least the runtime's floor, 10).
	#[arg(long, default_value_t = 10)]
	min_held_out: u32,
	#[command(flatten)]
	privacy: PrivacyArgs,
	/// Model store to upload models to (tasks with stored models).
	#[arg(long)]
	store: Option<String>,
}

/// Differential privacy a task asks of its participants' clients.
#[derive(Args)]
struct PrivacyArgs {
	/// Turns differential privacy on: each update's change to the global
	/// model is clipped to this L2 norm before noise is added.
	#[arg(long)]
	dp_clip: Option<f64>,
	/// Noise standard deviation as a multiple of the clip norm (z, 0.1..=100).
	#[arg(long, default_value_t = 1.0)]
	dp_noise: f64,
	/// δ of the (ε, δ) guarantee is 10^-this (4..=18).
	#[arg(long, default_value_t = 5)]
	dp_delta_exp: u8,
}

impl PrivacyArgs {
	/// The task's differential privacy, if turned on.
	fn privacy(&self) -> Option<DifferentialPrivacy> {
		self.dp_clip.map(|clip| DifferentialPrivacy {
			clip_norm: to_fixed(clip),
			noise_multiplier: (self.dp_noise * 1000.0).round() as u32,
			delta_exponent: self.dp_delta_exp,
		})
	}
}

#[derive(Args)]
struct TrainArgs {
	#[command(flatten)]
	submit: SubmitArgs,
	/// The task.
	#[arg(long)]
	task: u32,
	/// Local training data (CSV, label last).
	#[arg(long)]
	data: PathBuf,
	/// Writes a PNG of accuracy and loss per round.
	#[arg(long)]
	plot: Option<PathBuf>,
	/// Model store to upload updates to (tasks with stored models).
	#[arg(long)]
	store: Option<String>,
	/// Milliseconds between polls of the chain.
	#[arg(long, default_value_t = 500)]
	poll_ms: u64,
	/// Seconds to keep trying while the node is unreachable.
	#[arg(long, default_value_t = 120)]
	retry_s: u64,
	/// Where each submitted update is kept until its task is over, so a
	/// restarted client sends the same update again rather than a freshly
	/// noised one (default: $HOME/.cache/medchain/fl-client).
	#[arg(long)]
	state_dir: Option<PathBuf>,
	/// Test only: multiplies the submitted parameters, as a poisoning
	/// participant would.
	#[arg(long, default_value_t = 1.0, hide = true)]
	poison_scale: f64,
}

#[derive(Args)]
struct EvaluateArgs {
	#[command(flatten)]
	node: NodeArgs,
	/// The task.
	#[arg(long)]
	task: u32,
	/// Held-out CSV.
	#[arg(long)]
	test: PathBuf,
}

#[derive(Args)]
struct AggregateArgs {
	#[command(flatten)]
	node: NodeArgs,
	/// A member of the round's committee (a collator's account): stored
	/// updates are sealed and read only by their committee.
	#[command(flatten)]
	signer: SignerArgs,
	/// The task.
	#[arg(long)]
	task: u32,
	/// Block hash to read the state at (default: best).
	#[arg(long)]
	at: Option<String>,
}

#[derive(Args)]
struct SimulateArgs {
	/// Directory with hospital-N.csv and test.csv (as `split` writes them).
	#[arg(long)]
	data_dir: PathBuf,
	/// Hospital (1-based) that poisons its updates; 0 for none.
	#[arg(long, default_value_t = 0)]
	poisoner: usize,
	/// Factor the poisoner multiplies its parameters by.
	#[arg(long, default_value_t = 1000.0)]
	poison_scale: f64,
	/// Comma-separated credit scores of the hospitals (default 600 each).
	#[arg(long, value_delimiter = ',')]
	credits: Vec<u32>,
	#[command(flatten)]
	model: ModelArgs,
	#[command(flatten)]
	training: TrainingArgs,
	#[command(flatten)]
	rule: RuleArgs,
	/// Local epochs per round.
	#[arg(long, default_value_t = 10)]
	epochs: u32,
	/// Rounds.
	#[arg(long, default_value_t = 10)]
	rounds: u32,
	#[command(flatten)]
	privacy: PrivacyArgs,
	/// Seed of the simulated participants' noise (differential privacy).
	#[arg(long, default_value_t = 1)]
	noise_seed: u64,
}

#[derive(Args)]
struct StoreArgs {
	/// The node sealed reads are checked against (committee, updates).
	#[command(flatten)]
	node: NodeArgs,
	/// Address to listen on.
	#[arg(long, default_value = "127.0.0.1:8730")]
	listen: String,
	/// Directory the models are kept in.
	#[arg(long)]
	dir: PathBuf,
	#[command(flatten)]
	connections: medchain_chain_client::cli::ConnectionArgs,
}

#[derive(Args)]
struct AggregatorStoreArgs {
	#[command(flatten)]
	node: NodeArgs,
	/// The model store's URL (http:// or https://).
	#[arg(long)]
	url: String,
}

#[derive(Args)]
struct RegisterStoreArgs {
	#[command(flatten)]
	submit: SubmitArgs,
	/// The model store's URL: https:// (http:// to this machine only on
	/// development chains), no query, fragment or trailing slash.
	#[arg(long)]
	url: String,
}

#[derive(Args)]
struct SyntheticUpdateArgs {
	#[command(flatten)]
	submit: SubmitArgs,
	/// The task.
	#[arg(long)]
	task: u32,
	/// Model store to upload the update to.
	#[arg(long)]
	store: String,
	/// Seed of the noise.
	#[arg(long, default_value_t = 1)]
	seed: u64,
}

fn main() {
	let cli = Cli::parse();
	medchain_chain_client::cli::init_logging();
	let result = match cli.command {
		Command::Split(a) => split(&a),
		Command::Centralized(a) => centralized(&a),
		Command::Publish(a) => publish(&a),
		Command::Train(a) => train(&a),
		Command::Evaluate(a) => evaluate(&a),
		Command::Aggregate(a) => aggregate(&a),
		Command::Simulate(a) => simulate(&a),
		Command::Store(a) => store::serve(&a.listen, &a.dir, a.node.node(), a.connections.max_per_client as usize),
		Command::AggregatorStore(a) => aggregator_store(&a),
		Command::RegisterStore(a) => {
			let signer = a.submit.signer.signer();
			signer.and_then(|s| register_store(&a.submit.node.node(), &s, &a.url, a.submit.wait()))
		},
		Command::SyntheticUpdate(a) => synthetic_update(&a),
	};
	if let Err(e) = result {
		tracing::error!("{e}");
		std::process::exit(1);
	}
}

/// The client's model for a task's model kind.
fn client_model(kind: &ModelKind) -> Model {
	match *kind {
		ModelKind::LogisticRegression { features } => Model::Logistic { features: features as usize },
		ModelKind::Mlp { features, hidden } => Model::Mlp { features: features as usize, hidden: hidden as usize },
	}
}

/// A public model's parameters: as they are, or downloaded from its store.
fn resolve(model: &ModelParams<MaxParams>) -> Result<Vec<Fixed>, String> {
	match model {
		ModelParams::Inline(p) => Ok(p.to_vec()),
		ModelParams::Stored(r) => store::download(r),
	}
}

/// A task's current global model, as floating point.
fn global_model(node: &Node, task_id: u32) -> Result<Vec<f64>, rpc::RpcError> {
	let model = node
		.storage::<ModelParams<MaxParams>>(&GlobalModel::<Runtime>::hashed_key_for(task_id))?
		.ok_or_else(|| rpc::RpcError::Node(format!("task {task_id} has no model")))?;
	Ok(resolve(&model).map_err(rpc::RpcError::Node)?.into_iter().map(from_fixed).collect())
}

/// Packs parameters as a task keeps them: inline, or uploaded to `store`
/// (sealed for an update, public for a global model) as `uploader`.
fn pack(
	params: Vec<Fixed>,
	stored: bool,
	store: Option<&str>,
	visibility: store::Visibility,
	uploader: &sr25519::Pair,
) -> Result<ModelParams<MaxParams>, String> {
	if stored {
		let store = store.ok_or("the task's models live in model stores: pass --store URL")?;
		Ok(ModelParams::Stored(store::upload(store, &params, visibility, uploader)?))
	} else {
		let count = params.len();
		Ok(ModelParams::Inline(params.try_into().map_err(|_| {
			format!("{count} parameters are more than the chain keeps inline: publish with --store URL")
		})?))
	}
}

/// Tells the node's offchain worker which model store to write aggregates
/// to.
fn aggregator_store(o: &AggregatorStoreArgs) -> Result<(), String> {
	let url = o.url.as_str();
	let most = <pallet_fl_task::MaxStoreUrl as frame_support::traits::Get<u32>>::get() as usize;
	if url.len() > most || !pallet_fl_task::is_store_url(url.as_bytes()) {
		return Err(format!("--url: `{url}` is not an http:// or https:// URL of at most {most} bytes"));
	}
	// The node's aggregator accounts must register this same URL, so it
	// must be one the chain accepts.
	check_store_url(&o.node.node(), url)?;
	let key = format!("0x{}", sp_core::hexdisplay::HexDisplay::from(&pallet_fl_task::store::STORE_URL_KEY));
	let value = format!("0x{}", sp_core::hexdisplay::HexDisplay::from(&url.as_bytes()));
	o.node
		.node()
		.call("offchain_localStorageSet", serde_json::json!(["PERSISTENT", key, value]))
		.map_err(|e| e.to_string())?;
	println!("{}", serde_json::json!({ "aggregator_store": url }));
	Ok(())
}

/// Whether the chain accepts `url` as a model store (as `register_store`
/// checks it, with the chain's own `LoopbackStores`); the reason if not.
fn check_store_url(node: &Node, url: &str) -> Result<(), String> {
	let loopback: bool = node
		.storage(&pallet_fl_task::LoopbackStores::<Runtime>::hashed_key())
		.map_err(|e| e.to_string())?
		.unwrap_or(false);
	let most = <pallet_fl_task::MaxStoreUrl as frame_support::traits::Get<u32>>::get() as usize;
	if url.len() > most || !pallet_fl_task::is_registrable_store(url.as_bytes(), loopback) {
		return Err(format!(
			"the chain does not accept `{url}` as a model store: it must be an https:// URL of at most {most} bytes \
			 to a public DNS name (http://127.0.0.1 only on development chains), with no query, fragment, user \
			 info or trailing slash"
		));
	}
	Ok(())
}

/// The model store `who` registered on chain, if any.
fn registered_store(node: &Node, who: &AccountId) -> Result<Option<String>, String> {
	let key = pallet_fl_task::ModelStores::<Runtime>::hashed_key_for(who);
	let store: Option<Vec<u8>> = node.storage(&key).map_err(|e| e.to_string())?;
	Ok(store.map(|s| String::from_utf8_lossy(&s).into_owned()))
}

/// Registers `url` as the signer's model store on chain (a change when it
/// registered another), waits up to `wait` until the chain holds it, and
/// prints the registration.
fn register_store(node: &Node, signer: &sr25519::Pair, url: &str, wait: Duration) -> Result<(), String> {
	let me = AccountId::from(signer.public());
	let before = registered_store(node, &me)?;
	let changed = before.as_deref() != Some(url);
	if changed {
		check_store_url(node, url)?;
		let store = url.as_bytes().to_vec().try_into().map_err(|_| format!("`{url}` is too long"))?;
		submit(node, signer, RuntimeCall::FlTask(pallet_fl_task::Call::register_store { store }))
			.map_err(|e| e.to_string())?;
		wait_for(wait, || Ok(registered_store(node, &me)?.as_deref() == Some(url))).map_err(|e| {
			format!("the registration of `{url}` did not land ({e}): is the account an active institution?")
		})?;
	}
	println!("{}", serde_json::json!({ "registered_store": url, "account": me.to_string(), "changed": changed }));
	Ok(())
}

/// Makes sure the signer's registered store is `url` before it uploads
/// there: registers it when the account has none, and refuses (rather than
/// silently moving the account's store) when it registered another.
fn ensure_store(node: &Node, signer: &sr25519::Pair, url: &str, wait: Duration) -> Result<(), String> {
	let me = AccountId::from(signer.public());
	match registered_store(node, &me)? {
		Some(registered) if registered == url => Ok(()),
		Some(registered) => Err(format!(
			"this account's registered model store is `{registered}`, not `{url}`: pass --store {registered}, or \
			 move it with `medchain-fl-client register-store --url {url}` once no round still needs the old one"
		)),
		None => register_store(node, signer, url, wait),
	}
}

/// Splits the public data set into a test set and four non-IID hospitals.
fn split(o: &SplitArgs) -> Result<(), String> {
	let data = data::load_csv(&o.input)?;
	let out = &o.out;
	std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
	let (hospitals, test) = data::split_non_iid(&data, o.test_fraction, o.seed);
	for (i, h) in hospitals.iter().enumerate() {
		let path = out.join(format!("hospital-{}.csv", i + 1));
		data::save_csv(&path, h)?;
		println!(
			"{}: {} rows, {:.0} % benign",
			path.display(),
			h.len(),
			100.0 * h.y.sum() / h.len() as f64
		);
	}
	data::save_csv(&out.join("test.csv"), &test)?;
	println!("{}: {} rows (held out)", out.join("test.csv").display(), test.len());
	Ok(())
}

/// Trains on the union of the hospitals' data: the baseline federated
/// learning is compared to.
fn centralized(o: &CentralizedArgs) -> Result<(), String> {
	let parts = o.train.iter().map(|p| data::load_csv(p)).collect::<Result<Vec<_>, _>>()?;
	let union = data::Dataset::concat(&parts)?;
	let test = data::load_csv(&o.test)?;
	let model = o.model.model(union.features());
	let init = model.initial(o.training.seed);
	let params = model.train(&init, &union, o.epochs, o.training.lr, o.training.batch as usize);
	let (accuracy, loss) = model.evaluate(&params, &test);
	println!("{{\"centralized_accuracy\":{accuracy:.6},\"loss\":{loss:.6},\"rows\":{}}}", union.len());
	Ok(())
}

/// Publishes a task (logistic regression or a perceptron) and prints its id.
fn publish(o: &PublishArgs) -> Result<(), String> {
	let node = o.submit.node.node();
	let signer = o.submit.signer.signer()?;
	let features = o.features;
	let local = o.model.model(features as usize);
	let model = match local {
		Model::Logistic { .. } => ModelKind::LogisticRegression { features },
		Model::Mlp { .. } => ModelKind::Mlp { features, hidden: o.model.hidden },
	};
	model.parameter_count().ok_or("the model is too large")?;
	let initial = local.initial(o.training.seed);
	let rule = o.rule.rule();
	let store = o.store.as_deref();
	if let Some(url) = store {
		ensure_store(&node, &signer, url, o.submit.wait())?;
	}
	let spec = TaskSpec {
		model,
		initial_model: pack(initial.iter().map(|p| to_fixed(*p)).collect(), store.is_some(), store, store::Visibility::Public, &signer)?,
		hints: TrainingHints { epochs: o.epochs, learning_rate: to_fixed(o.training.lr), batch_size: o.training.batch },
		target_accuracy: Permill::from_float(o.target),
		max_rounds: o.rounds,
		min_participants: o.quorum,
		round_blocks: o.round_blocks,
		rule,
		// The runtime refuses fewer than two agreeing aggregators
		// (`MinAggregatorsFloor`) and a quorum under two, and adopts only
		// when two thirds of the collators agree.
		aggregators_required: o.aggregators,
		// Parameters beyond ±max-abs are refused (inline) or left out and
		// flagged (stored); fewer than min-samples samples are refused (at
		// least the runtime's `MinSamplesFloor`, 10); more than max-samples
		// weigh as max-samples.
		limits: UpdateLimits {
			max_abs: to_fixed(o.max_abs),
			min_samples: o.min_samples,
			max_samples: o.max_samples,
			min_held_out: o.min_held_out,
		},
		// Checked by the runtime (`InvalidPrivacy`), which records the ε
		// it gives per round and over `rounds`.
		privacy: o.privacy.privacy(),
	};
	let id: u32 = node
		.storage(&pallet_fl_task::NextTaskId::<Runtime>::hashed_key())
		.map_err(|e| e.to_string())?
		.unwrap_or(0);
	submit(&node, &signer, RuntimeCall::FlTask(pallet_fl_task::Call::publish_task { spec }))
		.map_err(|e| e.to_string())?;
	wait_for(o.submit.wait(), || Ok(task(&node, id)?.is_some()))?;
	if let Some(budget) = task(&node, id)?.and_then(|t| t.privacy) {
		let eps = |milli: u32| f64::from(milli) / 1000.0;
		println!(
			"task {id}: differential privacy on chain: ε {:.3} per round, at most {:.3} over its {} rounds (δ = 1e-{})",
			eps(budget.epsilon_round_milli),
			eps(budget.epsilon_total_milli),
			o.rounds,
			budget.dp.delta_exponent
		);
	}
	println!("{{\"task\":{id}}}");
	Ok(())
}

/// Submits `call`; a transaction the pool refused because another one of
/// the same account (another task's client, say) took its nonce is signed
/// again with a fresh one ([`Node::submit_with_hash`]). Returns its hash.
fn submit(node: &Node, signer: &sr25519::Pair, call: RuntimeCall) -> Result<sp_core::H256, rpc::RpcError> {
	node.submit_with_hash(signer, call).map(|(_, hash)| hash)
}

/// Whether the transaction with `hash` is no longer waiting in the node's
/// pool (it was dropped, e.g. with the pool of a restarted node, or it is in
/// a block). Compared by hash, not nonce: other clients may share the account.
fn left_pool(node: &Node, hash: sp_core::H256) -> Result<bool, rpc::RpcError> {
	let pending = node.call("author_pendingExtrinsics", serde_json::json!([]))?;
	let pending = pending.as_array().ok_or_else(|| rpc::RpcError::Decode("pending extrinsics".into()))?;
	for xt in pending {
		let bytes = rpc::unhex(xt.as_str().unwrap_or_default())?;
		if <sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(&bytes) == hash {
			return Ok(false);
		}
	}
	Ok(true)
}

fn task(node: &Node, id: u32) -> Result<Option<LearningTask<AccountId>>, String> {
	node.storage(&Tasks::<Runtime>::hashed_key_for(id)).map_err(|e| e.to_string())
}

fn wait_for(timeout: Duration, mut done: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
	let start = Instant::now();
	while !done()? {
		if start.elapsed() > timeout {
			return Err(format!("timed out after {} s", timeout.as_secs()));
		}
		sleep(Duration::from_millis(300));
	}
	Ok(())
}

/// Joins a task and trains each round until the task is over. If the node
/// cannot be reached (a restart, say), the client keeps trying for
/// `--retry-s` seconds (default 120) before giving up.
fn train(o: &TrainArgs) -> Result<(), String> {
	let node = o.submit.node.node();
	let signer = o.submit.signer.signer()?;
	let me = AccountId::from(signer.public());
	let task_id = o.task;
	let local = data::load_csv(&o.data)?;
	let (train_rows, validation) = model::local_split(&local);
	let t = task(&node, task_id)?.ok_or(format!("task {task_id} does not exist"))?;
	let model = client_model(&t.model);
	if model.features() != local.features() {
		return Err(format!(
			"task {task_id} expects {} features, the data has {}",
			model.features(),
			local.features()
		));
	}
	match (&o.store, t.stored_models) {
		(None, true) => return Err(format!("task {task_id} keeps its models in model stores: pass --store URL")),
		(Some(url), true) => ensure_store(&node, &signer, url, o.submit.wait())?,
		_ => {},
	}
	// Test only: multiplies the submitted parameters, as a poisoning
	// participant would (robust rules must shrug it off and flag it).
	let poison = o.poison_scale;
	let poll = Duration::from_millis(o.poll_ms);
	let patience = Duration::from_secs(o.retry_s);
	// Joining, too, outlasts a node that is briefly unreachable (a restart,
	// a connection reset under load): joining again is harmless, since a
	// participant's second `join_task` is refused and `join` reads first.
	let joined_at = Instant::now();
	let joined = loop {
		match join(o.submit.wait(), &node, &signer, task_id) {
			Ok(joined) => break joined,
			Err(e) if e.starts_with("cannot reach the node") && joined_at.elapsed() < patience => {
				println!("node unreachable ({e}); joining again for up to {} s", patience.as_secs());
				sleep(poll.max(Duration::from_millis(500)));
			},
			Err(e) => return Err(e),
		}
	};
	if joined {
		println!("joined task {task_id} with {} local rows ({} for validation)", local.len(), validation.len());
	}

	// Refuse locally what the chain would refuse after every retry.
	if validation.len() < t.limits.min_held_out as usize || train_rows.len() < t.limits.min_samples as usize {
		return Err(format!(
			"task {task_id} needs at least {} training rows and {} held-out rows; {} has {} and {}",
			t.limits.min_samples,
			t.limits.min_held_out,
			o.data.display(),
			train_rows.len(),
			validation.len()
		));
	}
	let store = o.store.clone();
	let kept = SavedUpdates::open(&node, o.state_dir.clone(), task_id, &me)?;
	let mut state = Progress { task_id, me, store, submitted: None, history: Vec::new(), kept };
	let mut unreachable_since: Option<Instant> = None;
	loop {
		match state.step(&node, &signer, model, &train_rows, &validation, poison) {
			Ok(true) => break,
			Ok(false) => unreachable_since = None,
			Err(rpc::RpcError::Transport(e)) => {
				let since = *unreachable_since.get_or_insert_with(Instant::now);
				if since.elapsed() > patience {
					return Err(format!("the node has been unreachable for {} s: {e}", patience.as_secs()));
				}
				if since.elapsed() < poll {
					println!("node unreachable ({e}); retrying for up to {} s", patience.as_secs());
				}
			},
			Err(e) => return Err(e.to_string()),
		}
		sleep(poll);
	}
	let history = state.history;
	if let Some(path) = &o.plot {
		plot::write_plot(path, &format!("TASK {task_id}"), &history)?;
		println!("plot written to {}", path.display());
	}
	let summary = serde_json::json!({
		"task": task_id,
		"rounds": history.len(),
		"accuracy": history.last().map(|h| h.1),
	});
	println!("{summary}");
	Ok(())
}

/// Joins the task unless already a participant; whether it joined now.
fn join(wait: Duration, node: &Node, signer: &sr25519::Pair, task_id: u32) -> Result<bool, String> {
	let q = |e: rpc::RpcError| e.to_string();
	let me = AccountId::from(signer.public());
	let key = Participants::<Runtime>::hashed_key_for(task_id, &me);
	if node.storage::<()>(&key).map_err(q)?.is_some() {
		return Ok(false);
	}
	submit(node, signer, RuntimeCall::FlTask(pallet_fl_task::Call::join_task { task: task_id })).map_err(q)?;
	wait_for(wait, || Ok(node.storage::<()>(&key).map_err(q)?.is_some()))?;
	Ok(true)
}

/// For load tests of large models: joins a task with stored models and
/// submits, for its open round, the global model plus seeded noise, uploaded
/// to `--store`; waits until the update is on chain.
fn synthetic_update(o: &SyntheticUpdateArgs) -> Result<(), String> {
	let node = o.submit.node.node();
	let signer = o.submit.signer.signer()?;
	let me = AccountId::from(signer.public());
	let task_id = o.task;
	let store = o.store.as_str();
	let seed = o.seed;
	let t = task(&node, task_id)?.ok_or(format!("task {task_id} does not exist"))?;
	if t.stored_models {
		ensure_store(&node, &signer, store, o.submit.wait())?;
	}
	join(o.submit.wait(), &node, &signer, task_id)?;
	let q = |e: rpc::RpcError| e.to_string();
	let global: ModelParams<MaxParams> = node
		.storage(&GlobalModel::<Runtime>::hashed_key_for(task_id))
		.map_err(q)?
		.ok_or("task without a model")?;
	let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
	let params: Vec<Fixed> = resolve(&global)?
		.into_iter()
		.map(|g| {
			state ^= state >> 12;
			state ^= state << 25;
			state ^= state >> 27;
			let unit = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
			g + to_fixed((unit - 0.5) * 0.1)
		})
		.collect();
	let count = params.len();
	let t0 = Instant::now();
	let update = ModelUpdate {
		params: pack(params, t.stored_models, Some(store), store::Visibility::Sealed, &signer)?,
		samples: 100 + (seed % 100) as u32,
		accuracy: Permill::from_percent(50),
		loss: to_fixed(0.5),
		held_out: t.limits.min_held_out,
	};
	let upload_s = t0.elapsed().as_secs_f64();
	let round = t.round;
	submit(&node, &signer, RuntimeCall::FlTask(pallet_fl_task::Call::submit_update { task: task_id, round, update }))
		.map_err(q)?;
	let key = Updates::<Runtime>::hashed_key_for((task_id, round), &me);
	wait_for(o.submit.wait(), || {
		Ok(node.storage::<ModelUpdate<MaxParams>>(&key).map_err(q)?.is_some())
	})?;
	println!("{}", serde_json::json!({ "task": task_id, "round": round, "params": count, "upload_s": upload_s }));
	Ok(())
}

/// How long a submitted update may stay off chain before the client checks
/// whether it was lost (not on chain and no longer in the node's pool, e.g.
/// after a restart of the node) and sends it again.
const RESUBMIT_AFTER: Duration = Duration::from_secs(15);

/// The updates a participant made for one task, one file per round (named
/// by the round and the digest of the global model it trained from), in a
/// directory per chain and task.
struct SavedUpdates {
	dir: PathBuf,
}

impl SavedUpdates {
	/// The directory of `task` on the node's chain, for `me`.
	fn open(node: &Node, state_dir: Option<PathBuf>, task: u32, me: &AccountId) -> Result<Self, String> {
		let q = |e: rpc::RpcError| e.to_string();
		let base = match state_dir {
			Some(dir) => dir,
			None => PathBuf::from(std::env::var("HOME").map_err(|_| "HOME is not set: pass --state-dir")?)
				.join(".cache/medchain/fl-client"),
		};
		let genesis = node.call("chain_getBlockHash", serde_json::json!([0])).map_err(q)?;
		let genesis = genesis.as_str().ok_or("the node sent no genesis hash")?.trim_start_matches("0x").to_string();
		// (A dev chain's genesis is the same every run: a file left by a
		// client stopped mid-task on an earlier chain is used only for the
		// same round and global model, where it is the same training.)
		let dir = base.join(&genesis[..16.min(genesis.len())]).join(format!("task-{task}")).join(rpc::hex(me.as_ref()));
		std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
		Ok(SavedUpdates { dir })
	}

	fn path(&self, round: u32, global: &sp_core::H256) -> PathBuf {
		self.dir.join(format!("{round}-{}.update", rpc::hex(global.as_bytes())))
	}

	/// The update made for `round` from the global model `global`, if any.
	fn load(&self, round: u32, global: &sp_core::H256) -> Option<ModelUpdate<MaxParams>> {
		let bytes = std::fs::read(self.path(round, global)).ok()?;
		codec::Decode::decode(&mut &bytes[..]).ok()
	}

	/// Keeps `update` before it is sent (written whole, then renamed).
	fn save(&self, round: u32, global: &sp_core::H256, update: &ModelUpdate<MaxParams>) -> Result<(), String> {
		let path = self.path(round, global);
		let partial = path.with_extension("partial");
		std::fs::write(&partial, codec::Encode::encode(update))
			.and_then(|_| std::fs::rename(&partial, &path))
			.map_err(|e| format!("cannot keep the update in {}: {e}", path.display()))
	}

	/// Forgets the task's updates (once it is over).
	fn clear(&self) {
		let _ = std::fs::remove_dir_all(&self.dir);
	}

	/// Rounds this participant made an update for.
	fn rounds(&self) -> u32 {
		let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
		let rounds: std::collections::BTreeSet<String> = entries
			.filter_map(|e| e.ok()?.file_name().into_string().ok())
			.filter(|name| name.ends_with(".update"))
			.filter_map(|name| name.split('-').next().map(str::to_string))
			.collect();
		rounds.len() as u32
	}
}

/// A participant's view of a task while it trains.
struct Progress {
	task_id: u32,
	me: AccountId,
	/// Where updates of a task with stored models are uploaded.
	store: Option<String>,
	/// The round last submitted for, when, the transaction's hash and the
	/// update (sent again as it was if the transaction is lost: fresh noise
	/// on the same data would spend the privacy budget twice).
	submitted: Option<(u32, Instant, sp_core::H256, ModelUpdate<MaxParams>)>,
	/// The updates this participant sent for the task, kept on disk.
	kept: SavedUpdates,
	/// Per adopted round: the measured accuracy and loss of the model it
	/// replaced (the median of the participants' evaluations).
	history: Vec<(u32, f64, f64)>,
}

impl Progress {
	/// One poll: records newly adopted rounds, trains and submits for an open
	/// round without our update. `Ok(true)` once the task is over.
	fn step(
		&mut self,
		node: &Node,
		signer: &sr25519::Pair,
		model: Model,
		train_rows: &data::Dataset,
		validation: &data::Dataset,
		poison: f64,
	) -> Result<bool, rpc::RpcError> {
		let task_id = self.task_id;
		let t: LearningTask<AccountId> = node
			.storage(&Tasks::<Runtime>::hashed_key_for(task_id))?
			.ok_or_else(|| rpc::RpcError::Node("the task vanished".into()))?;
		while (self.history.len() as u32) <= t.round {
			let r = self.history.len() as u32;
			match node.storage::<Round>(&Rounds::<Runtime>::hashed_key_for(task_id, r))? {
				Some(Round { phase: RoundPhase::Adopted { .. }, accuracy, loss, outliers, submitted, .. }) => {
					let acc = accuracy.deconstruct() as f64 / 1e6;
					println!(
						"round {r:>2}: model adopted from {submitted} updates ({outliers} outliers); the model \
						 before it measured {:.2} % (median of the evaluations), loss {:.4}",
						acc * 100.0,
						from_fixed(loss)
					);
					self.history.push((r, acc, from_fixed(loss)));
				},
				Some(Round { phase: RoundPhase::Stopped, accuracy, loss, .. }) => {
					let acc = accuracy.deconstruct() as f64 / 1e6;
					println!(
						"round {r:>2}: the global model measured {:.2} % (median of the evaluations), at the \
						 target: the task finishes with it",
						acc * 100.0
					);
					self.history.push((r, acc, from_fixed(loss)));
					break;
				},
				_ => break,
			}
		}
		if t.status != TaskStatus::Running {
			self.kept.clear();
			println!("task {task_id} is over: {:?} after {} rounds", t.status, self.history.len());
			return Ok(true);
		}
		let round = t.round;
		let open = matches!(
			node.storage::<Round>(&Rounds::<Runtime>::hashed_key_for(task_id, round))?,
			Some(Round { phase: RoundPhase::Collecting, .. })
		);
		let on_chain = node
			.storage::<ModelUpdate<MaxParams>>(
				&Updates::<Runtime>::hashed_key_for((task_id, round), &self.me),
			)?
			.is_some();
		if !open || on_chain {
			return Ok(false);
		}
		// Our update is not on chain: send it again only once its transaction
		// has left the pool without landing.
		if let Some((r, at, hash, update)) = &self.submitted {
			if *r == round {
				if at.elapsed() < RESUBMIT_AFTER || !left_pool(node, *hash)? {
					return Ok(false);
				}
				let update = update.clone();
				let call =
					RuntimeCall::FlTask(pallet_fl_task::Call::submit_update { task: task_id, round, update: update.clone() });
				let hash = submit(node, signer, call)?;
				self.submitted = Some((round, Instant::now(), hash, update));
				println!("round {round:>2}: update submitted again (its transaction was lost)");
				return Ok(false);
			}
		}
		// An update already made for this round and this global model (by
		// an earlier run of the client) is sent as it was: noise drawn
		// again on the same data would spend the privacy budget twice.
		if let Some(update) = self.kept.load(round, &t.model_digest) {
			let call =
				RuntimeCall::FlTask(pallet_fl_task::Call::submit_update { task: task_id, round, update: update.clone() });
			let hash = submit(node, signer, call)?;
			self.submitted = Some((round, Instant::now(), hash, update));
			println!("round {round:>2}: update kept from an earlier run submitted");
			return Ok(false);
		}
		let global = global_model(node, task_id)?;
		let hints = t.hints;
		// The evaluation sent with the update: how the global model this
		// round trains from does on held-out rows (the task stops on the
		// median of these), not how the local model does on its own data.
		let (accuracy, loss) = model.evaluate(&global, validation);
		let mut params =
			model.train(&global, train_rows, hints.epochs as u32, from_fixed(hints.learning_rate), hints.batch_size as usize);
		if let Some(budget) = &t.privacy {
			params = privacy::privatize(privacy::Noise::from(&budget.dp), &global, &params, &mut rand::rngs::OsRng);
		}
		// Within the task's bound (noise may cross it; clamping is
		// post-processing, so the privacy guarantee holds).
		let bound = t.limits.max_abs;
		let update = ModelUpdate {
			params: pack(
				params.iter().map(|p| to_fixed(*p * poison).clamp(-bound, bound)).collect(),
				t.stored_models,
				self.store.as_deref(),
				store::Visibility::Sealed,
				signer,
			)
			.map_err(rpc::RpcError::Node)?,
			samples: train_rows.len() as u32,
			accuracy: Permill::from_float(accuracy),
			loss: to_fixed(loss),
			held_out: validation.len() as u32,
		};
		self.kept.save(round, &t.model_digest, &update).map_err(rpc::RpcError::Node)?;
		let call = RuntimeCall::FlTask(pallet_fl_task::Call::submit_update { task: task_id, round, update: update.clone() });
		let hash = submit(node, signer, call)?;
		self.submitted = Some((round, Instant::now(), hash, update));
		println!(
			"round {round:>2}: trained {} epochs on {} rows, global model's accuracy on {} held-out rows {:.2} %, \
			 update submitted",
			hints.epochs,
			train_rows.len(),
			validation.len(),
			accuracy * 100.0,
		);
		if let Some(budget) = &t.privacy {
			println!("round {round:>2}: differential privacy: {}", privacy::describe(&budget.dp, self.kept.rounds()));
		}
		Ok(false)
	}
}

/// Accuracy of a task's current global model on a held-out CSV.
fn evaluate(o: &EvaluateArgs) -> Result<(), String> {
	let node = o.node.node();
	let task_id = o.task;
	let test = data::load_csv(&o.test)?;
	let t = task(&node, task_id)?.ok_or(format!("task {task_id} does not exist"))?;
	let model = client_model(&t.model);
	let params = global_model(&node, task_id).map_err(|e| e.to_string())?;
	if model.features() != test.features() || params.len() != model.parameter_count() {
		return Err(format!(
			"the task's model takes {} features ({} parameters), the test data has {} features",
			model.features(),
			params.len(),
			test.features()
		));
	}
	let (accuracy, loss) = model.evaluate(&params, &test);
	let status = match t.status {
		TaskStatus::Running => "running".to_string(),
		TaskStatus::Finished { reached_target } => format!("finished (target reached: {reached_target})"),
		TaskStatus::Failed(reason) => format!("failed: {reason:?}"),
	};
	println!(
		"{}",
		serde_json::json!({"task": task_id, "round": t.round, "status": status, "federated_accuracy": accuracy, "loss": loss})
	);
	Ok(())
}

/// Recomputes the aggregate of the task's current round from the updates on
/// chain, with the runtime's aggregator compiled natively.
fn aggregate(o: &AggregateArgs) -> Result<(), String> {
	use frame_support::{storage::StoragePrefixedMap, StorageHasher, Twox64Concat};
	use pallet_fl_task::{aggregate_digest, model_digest, stored_model_digest};
	// Stored models may exceed the inline bound; in memory, anything goes.
	type Unbounded = frame_support::traits::ConstU32<{ u32::MAX }>;
	let node = o.node.node();
	let q = |e: rpc::RpcError| e.to_string();
	// Every read at one block: the one named, or the best one now.
	let at = match &o.at {
		Some(hash) => hash.clone(),
		None => node.call("chain_getBlockHash", serde_json::json!([])).map_err(q)?.as_str().unwrap_or_default().to_string(),
	};
	let at = Some(at.as_str());
	let task_id = o.task;
	let t: LearningTask<AccountId> =
		node.storage_at(&Tasks::<Runtime>::hashed_key_for(task_id), at).map_err(q)?.ok_or("no such task")?;
	let global: ModelParams<MaxParams> = node
		.storage_at(&GlobalModel::<Runtime>::hashed_key_for(task_id), at)
		.map_err(q)?
		.ok_or("task without a model")?;
	let global = resolve(&global)?;
	let mut prefix = Updates::<Runtime>::final_prefix().to_vec();
	prefix.extend(Twox64Concat::hash(&codec::Encode::encode(&(task_id, t.round))));
	let loopback: bool =
		node.storage_at(&pallet_fl_task::LoopbackStores::<Runtime>::hashed_key(), at).map_err(q)?.unwrap_or(false);
	let mut updates: Vec<(AccountId, ModelUpdate<Unbounded>)> = Vec::new();
	// Stored updates are sealed: read as a committee member, at this block,
	// with a one-time key.
	let reader = || -> Result<_, String> {
		let signer = o.signer.signer()?;
		let block = H256::from_slice(rpc::unhex(at.unwrap_or_default()).map_err(q)?.get(..32).ok_or("--at: not a block hash")?);
		let seed: [u8; 32] = rand::random();
		let reader = pallet_fl_task::store::SealedReader::from_seed(&seed).ok_or("no reader key")?;
		Ok((signer, block, reader))
	};
	let mut sealed = None;
	for key in node.keys(&prefix, at).map_err(q)? {
		let raw: [u8; 32] = key[key.len() - 32..].try_into().map_err(|_| "bad key")?;
		let update: ModelUpdate<MaxParams> = node.storage_at(&key, at).map_err(q)?.ok_or("update vanished")?;
		// As the offchain workers: never fetch a store the chain does not
		// accept (they leave such an update out).
		if let ModelParams::Stored(r) = &update.params {
			if !pallet_fl_task::is_registrable_store(&r.store, loopback) {
				return Err(format!(
					"the update of {} names a store the chain does not accept ({}); offchain workers leave it out",
					AccountId::from(raw),
					String::from_utf8_lossy(&r.store)
				));
			}
		}
		let params = match &update.params {
			ModelParams::Stored(r) => {
				if sealed.is_none() {
					sealed = Some(reader()?);
				}
				let (signer, block, reader) = sealed.as_ref().ok_or("no reader")?;
				let read = pallet_fl_task::SealedRead {
					at: *block,
					task: task_id,
					round: t.round,
					participant: AccountId::from(raw),
					model: r.digest,
					reader: reader.public(),
				};
				let signature = signer.sign(&read.signing_payload()).0.to_vec();
				let auth =
					pallet_fl_task::SealedReadAuth { signer: signer.public().0.to_vec(), signature, read };
				store::download_sealed(r, &auth, reader)?
			},
			ModelParams::Inline(p) => p.to_vec(),
		};
		let params = ModelParams::Inline(params.try_into().map_err(|_| "too large")?);
		let ModelUpdate { samples, accuracy, loss, held_out, .. } = update;
		updates.push((AccountId::from(raw), ModelUpdate { params, samples, accuracy, loss, held_out }));
	}
	let count = updates.len();
	let mut credits = HashMap::new();
	for (who, _) in &updates {
		let key = UpdateCredit::<Runtime>::hashed_key_for((task_id, t.round), who);
		credits.insert(who.clone(), node.storage_at::<u32>(&key, at).map_err(q)?.unwrap_or(0));
	}
	let admission = pallet_fl_task::Admission { max_abs: t.limits.max_abs, quorum: t.min_participants as usize };
	let (params, outliers) = pallet_fl_task::aggregate_round::<<Runtime as pallet_fl_task::Config>::Aggregator, _, _>(
		&t.rule,
		admission,
		&global,
		updates,
		|who| credits.get(who).copied().unwrap_or(0),
	)
	.map_err(|e| format!("cannot aggregate: {e:?}"))?;
	let model = if t.stored_models { stored_model_digest(&params) } else { model_digest(&params) };
	let digest = aggregate_digest(task_id, t.round, model, &outliers);
	println!(
		"{}",
		serde_json::json!({
			"task": task_id,
			"round": t.round,
			"updates": count,
			"digest": format!("{digest:?}"),
			"model_digest": format!("{model:?}"),
			"outliers": outliers.len(),
		})
	);
	Ok(())
}

/// Runs federated rounds locally over `hospital-N.csv` in `--data-dir`
/// (as written by `split`) with the runtime's aggregation, and prints the
/// global model's accuracy on `test.csv` per round.
fn simulate(o: &SimulateArgs) -> Result<(), String> {
	let dir = &o.data_dir;
	let test = data::load_csv(&dir.join("test.csv"))?;
	let poisoner = o.poisoner;
	let credits = &o.credits;
	let factor = o.poison_scale;
	let mut participants = Vec::new();
	while dir.join(format!("hospital-{}.csv", participants.len() + 1)).exists() {
		let n = participants.len() + 1;
		let (train, validation) = model::local_split(&data::load_csv(&dir.join(format!("hospital-{n}.csv")))?);
		let poison = if n == poisoner { factor } else { 1.0 };
		let credit = credits.get(n - 1).copied().unwrap_or(600);
		participants.push(sim::Participant { train, validation, poison, credit });
	}
	if participants.is_empty() {
		return Err(format!("no hospital-1.csv in {}", dir.display()));
	}
	let model = o.model.model(test.features());
	let hints = sim::Hints { epochs: o.epochs, lr: o.training.lr, batch: o.training.batch as usize };
	let rule = o.rule.rule();
	let privacy = o.privacy.privacy();
	if let Some(dp) = &privacy {
		if !dp.is_valid(pallet_fl_task::PARAM_ABS_CEILING) {
			return Err("differential privacy out of range: clip > 0, noise 0.1..=100, δ exponent 4..=18".into());
		}
		eprintln!("differential privacy: {}", privacy::describe(dp, o.rounds));
	}
	let noise = privacy.as_ref().map(|dp| (privacy::Noise::from(dp), o.noise_seed));
	let outcomes =
		sim::simulate(model, &rule, &model.initial(o.training.seed), &participants, o.rounds, hints, noise, &test)?;
	for (round, r) in outcomes.iter().enumerate() {
		let flagged: Vec<usize> = r.outliers.iter().map(|i| i + 1).collect();
		println!(
			"{}",
			serde_json::json!({
				"round": round,
				"accuracy": r.accuracy,
				"loss": r.loss,
				"model_norm": r.model.iter().map(|p| p * p).sum::<f64>().sqrt(),
				"flagged_hospitals": flagged,
			})
		);
	}
	Ok(())
}

#[cfg(test)]
mod cli_tests {
	use super::*;
	use clap::CommandFactory;

	#[test]
	fn every_subcommand_and_option_is_documented() {
		medchain_chain_client::cli::assert_documented(Cli::command());
	}

	#[test]
	fn a_misspelt_option_is_an_error_not_a_default() {
		let publish = ["medchain-fl-client", "publish", "--suri", "//Ferdie", "--features", "30"];
		assert!(Cli::try_parse_from(publish).is_ok());
		let typo = Cli::try_parse_from(publish.iter().chain(&["--rul", "median"])).err().expect("refused");
		assert_eq!(typo.kind(), clap::error::ErrorKind::UnknownArgument);
		let rule = Cli::try_parse_from(publish.iter().chain(&["--rule", "mean"])).err().expect("refused");
		assert_eq!(rule.kind(), clap::error::ErrorKind::InvalidValue);
		let zero = Cli::try_parse_from(["medchain-fl-client", "publish", "--suri", "//F", "--features", "0"]).err().expect("refused");
		assert_eq!(zero.kind(), clap::error::ErrorKind::ValueValidation);
	}
}
