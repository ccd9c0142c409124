//! Command-line options every Medchain tool that talks to a node shares
//! (`clap` derive groups, flattened into each tool's subcommands).

use crate::Node;
use clap::Args;
use sp_core::{sr25519, Pair};
use std::{path::PathBuf, time::Duration};

/// The node to talk to.
#[derive(Args, Debug)]
pub struct NodeArgs {
	/// The node's RPC address (`host:port`, or an http(s)/ws(s) URL); default
	/// `MEDCHAIN_NODE`, else `127.0.0.1:$RPC_PORT` (9944).
	#[arg(long, default_value_t = default_node())]
	pub node: String,
}

/// The node a tool talks to when `--node` is not given: `MEDCHAIN_NODE`,
/// else the dev chain's RPC port on this machine (`RPC_PORT`, as
/// `scripts/dev.sh` reads it, 9944 by default).
pub fn default_node() -> String {
	local_default("MEDCHAIN_NODE", "RPC_PORT", 9944, |port| format!("127.0.0.1:{port}"))
}

/// The records store a tool uses when `--mongo` is not given:
/// `MEDCHAIN_MONGO`, else the dev chain's store on this machine
/// (`MONGO_PORT`, as `scripts/dev.sh` reads it, 27017 by default).
pub fn default_mongo() -> String {
	local_default("MEDCHAIN_MONGO", "MONGO_PORT", 27017, |port| {
		format!("mongodb://127.0.0.1:{port}/?directConnection=true")
	})
}

/// A tool's default address, read at run time: the variable `whole` when
/// set, else `local` of the port in `port_var`, else of `port`.
fn local_default(whole: &str, port_var: &str, port: u16, local: fn(&str) -> String) -> String {
	address_from(std::env::var(whole).ok(), std::env::var(port_var).ok(), port, local)
}

/// [`local_default`] from the two variables' values (blank counts as unset).
fn address_from(whole: Option<String>, port_var: Option<String>, port: u16, local: fn(&str) -> String) -> String {
	match (whole.filter(|v| !v.trim().is_empty()), port_var.filter(|v| !v.trim().is_empty())) {
		(Some(whole), _) => whole,
		(None, Some(p)) => local(p.trim()),
		(None, None) => local(&port.to_string()),
	}
}

impl NodeArgs {
	/// A client of that node.
	pub fn node(&self) -> Node {
		Node::new(&self.node)
	}
}

/// What every command that submits transactions takes: the node, the
/// signing account, and how long to wait for each transaction.
#[derive(Args, Debug)]
pub struct SubmitArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	#[command(flatten)]
	pub signer: SignerArgs,
	/// Seconds to wait for each transaction to land (each command's help
	/// and the README say what it does when the wait ends).
	#[arg(long, default_value_t = 60)]
	pub wait_s: u64,
}

impl SubmitArgs {
	/// How long to wait for each transaction.
	pub fn wait(&self) -> Duration {
		Duration::from_secs(self.wait_s)
	}
}

/// The account that signs. The secret comes from `--suri`, `--suri-file`
/// or the `MEDCHAIN_SURI` environment variable, in that order.
#[derive(Args, Debug)]
pub struct SignerArgs {
	/// Secret URI of the signing account (e.g. //Alice). Visible to every
	/// user of the machine in `ps`: prefer --suri-file or MEDCHAIN_SURI.
	#[arg(long, conflicts_with = "suri_file")]
	pub suri: Option<String>,
	/// A file whose first line is the secret URI.
	#[arg(long)]
	pub suri_file: Option<PathBuf>,
}

impl SignerArgs {
	/// The signing key.
	pub fn signer(&self) -> Result<sr25519::Pair, String> {
		let suri = match (&self.suri, &self.suri_file) {
			(Some(suri), _) => suri.clone(),
			(None, Some(path)) => std::fs::read_to_string(path)
				.map_err(|e| format!("--suri-file {}: {e}", path.display()))?
				.lines()
				.next()
				.unwrap_or_default()
				.trim()
				.to_string(),
			(None, None) => std::env::var("MEDCHAIN_SURI")
				.map_err(|_| "a signer is required: --suri, --suri-file or MEDCHAIN_SURI".to_string())?,
		};
		// The error never repeats the secret.
		sr25519::Pair::from_string(&suri, None).map_err(|_| "the secret URI is not a valid sr25519 key".to_string())
	}
}

/// Each tool's test of its command line: clap's own consistency checks,
/// then help text on every subcommand and every option.
///
/// # Panics
/// On the first inconsistency, or naming every item without help.
pub fn assert_documented(command: clap::Command) {
	command.clone().debug_assert();
	let missing = undocumented(&command);
	assert!(missing.is_empty(), "no help: {missing:?}");
}

/// Every subcommand of `command` without help text, and every option
/// (`subcommand --option`) without one; `--help` and `--version` excepted.
fn undocumented(command: &clap::Command) -> Vec<String> {
	let mut missing = Vec::new();
	for sub in command.get_subcommands() {
		if sub.get_about().is_none() {
			missing.push(sub.get_name().to_string());
		}
		for arg in sub.get_arguments().filter(|a| !["help", "version"].contains(&a.get_id().as_str())) {
			if arg.get_help().is_none() {
				missing.push(format!("{} --{}", sub.get_name(), arg.get_id()));
			}
		}
	}
	missing
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn an_option_or_subcommand_without_help_is_found() {
		use clap::{Arg, Command};
		let put = || Command::new("put").about("Puts.").arg(Arg::new("file").long("file").help("The file."));
		let tool = || Command::new("tool").subcommand(put());
		assert_documented(tool());
		let bare = tool().subcommand(Command::new("get").arg(Arg::new("id").long("id")));
		assert_eq!(undocumented(&bare), ["get", "get --id"]);
		assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assert_documented(bare))).is_err());
	}

	#[test]
	fn the_signer_comes_from_the_option_the_file_or_the_environment() {
		let alice = sr25519::Pair::from_string("//Alice", None).unwrap().public();
		let from = |suri: Option<&str>, file: Option<PathBuf>| {
			SignerArgs { suri: suri.map(String::from), suri_file: file }.signer().map(|p| p.public())
		};
		assert_eq!(from(Some("//Alice"), None), Ok(alice));
		let path = std::env::temp_dir().join(format!("medchain-suri-{}", std::process::id()));
		std::fs::write(&path, "//Alice\n").unwrap();
		assert_eq!(from(None, Some(path.clone())), Ok(alice));
		std::fs::remove_file(&path).unwrap();
		let bad = from(Some("not a secret at all, just words"), None).unwrap_err();
		assert!(!bad.contains("words"), "the error must not repeat the secret: {bad}");
	}

	#[test]
	fn the_defaults_follow_the_whole_address_then_the_dev_chain_port() {
		let some = |v: &str| Some(v.to_string());
		let node = |whole, port| address_from(whole, port, 9944, |p| format!("127.0.0.1:{p}"));
		assert_eq!(node(some("ws://10.0.0.5:9944"), some("9955")), "ws://10.0.0.5:9944");
		assert_eq!(node(None, some("9955")), "127.0.0.1:9955");
		assert_eq!(node(some(" "), some("")), "127.0.0.1:9944");
		assert_eq!(node(None, None), "127.0.0.1:9944");
		let mongo = |whole, port| {
			address_from(whole, port, 27017, |p| format!("mongodb://127.0.0.1:{p}/?directConnection=true"))
		};
		assert_eq!(mongo(some("mongodb://db.hospital:27017"), some("1")), "mongodb://db.hospital:27017");
		assert_eq!(mongo(None, some(" 27018 ")), "mongodb://127.0.0.1:27018/?directConnection=true");
		assert_eq!(mongo(None, None), "mongodb://127.0.0.1:27017/?directConnection=true");
	}
}

/// Logs of the command-line tools: to standard error, one line per event
/// with its time and level (`tracing`); `MEDCHAIN_LOG` sets the filter
/// (`info` by default; for example `MEDCHAIN_LOG=debug`). Standard output
/// stays for results (one JSON per line).
pub fn init_logging() {
	use std::io::IsTerminal;
	let filter = tracing_subscriber::EnvFilter::try_from_env("MEDCHAIN_LOG")
		.unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
	let _ = tracing_subscriber::fmt()
		.with_env_filter(filter)
		.with_writer(std::io::stderr)
		.with_ansi(std::io::stderr().is_terminal())
		.with_target(false)
		.try_init();
}

/// How the tools' servers share their connections among clients.
#[derive(Args, Debug)]
pub struct ConnectionArgs {
	/// Connections served at once to one IP address; one more is answered
	/// 429. Behind a reverse proxy every client has the proxy's address:
	/// limit per client there, and raise this.
	#[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
	pub max_per_client: u32,
}

impl ConnectionArgs {
	/// The default limits with this share per client.
	pub fn limits(&self) -> crate::serve::ConnectionLimits {
		crate::serve::ConnectionLimits { max_per_client: self.max_per_client as usize, ..Default::default() }
	}
}
