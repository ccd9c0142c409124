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
	node_from(std::env::var("MEDCHAIN_NODE").ok(), std::env::var("RPC_PORT").ok())
}

/// [`default_node`] from the two variables' values.
fn node_from(node: Option<String>, rpc_port: Option<String>) -> String {
	match (node.filter(|v| !v.trim().is_empty()), rpc_port.filter(|v| !v.trim().is_empty())) {
		(Some(node), _) => node,
		(None, Some(port)) => format!("127.0.0.1:{}", port.trim()),
		(None, None) => "127.0.0.1:9944".to_string(),
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

/// Every subcommand of `command` without help text, and every option
/// (`subcommand --option`) without one; `--help` and `--version` excepted.
/// Each tool's tests require it to be empty.
pub fn undocumented(command: &clap::Command) -> Vec<String> {
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
	fn the_default_node_follows_medchain_node_then_the_dev_chain_port() {
		let some = |v: &str| Some(v.to_string());
		assert_eq!(node_from(some("ws://10.0.0.5:9944"), some("9955")), "ws://10.0.0.5:9944");
		assert_eq!(node_from(None, some("9955")), "127.0.0.1:9955");
		assert_eq!(node_from(some(" "), some("")), "127.0.0.1:9944");
		assert_eq!(node_from(None, None), "127.0.0.1:9944");
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
