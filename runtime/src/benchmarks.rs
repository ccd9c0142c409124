//! The pallets benchmarked by `scripts/benchmark-pallets.sh`.

frame_benchmarking::define_benchmarks!(
	[frame_system, SystemBench::<Runtime>]
	[pallet_balances, Balances]
	[pallet_reputation, Reputation]
	[pallet_ehr_index, EhrIndex]
	[pallet_fl_task, FlTask]
	[pallet_proxy_reencrypt, ProxyReencrypt]
);
