//! The runtime APIs: what the node and clients may ask the runtime.

use alloc::vec::Vec;
use frame_support::{
	genesis_builder_helper::{build_state, get_preset},
	weights::Weight,
};
use pallet_aura::Authorities;
use sp_api::impl_runtime_apis;
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_core::{crypto::KeyTypeId, OpaqueMetadata};
use sp_runtime::{
	traits::Block as BlockT,
	transaction_validity::{TransactionSource, TransactionValidity},
	ApplyExtrinsicResult,
};
use sp_version::RuntimeVersion;

use super::{
	AccountId, Balance, Block, BlockNumber, ConsensusHook, EhrIndex, FlTask, ProxyReencrypt, Executive, InherentDataExt, Nonce, ParachainInfo,
	ParachainSystem, Reputation, Runtime, RuntimeCall, RuntimeGenesisConfig, SessionKeys, System,
	TransactionPayment, SLOT_DURATION, VERSION,
};

impl_runtime_apis! {
	impl sp_consensus_aura::AuraApi<Block, AuraId> for Runtime {
		fn slot_duration() -> sp_consensus_aura::SlotDuration {
			sp_consensus_aura::SlotDuration::from_millis(SLOT_DURATION)
		}

		fn authorities() -> Vec<AuraId> {
			Authorities::<Runtime>::get().into_inner()
		}
	}

	impl cumulus_primitives_core::RelayParentOffsetApi<Block> for Runtime {
		fn relay_parent_offset() -> u32 {
			0
		}

		fn max_claim_queue_offset() -> u8 {
			1
		}
	}

	impl cumulus_primitives_aura::AuraUnincludedSegmentApi<Block> for Runtime {
		fn can_build_upon(
			included_hash: <Block as BlockT>::Hash,
			slot: cumulus_primitives_aura::Slot,
		) -> bool {
			ConsensusHook::can_build_upon(included_hash, slot)
		}
	}

	impl sp_api::Core<Block> for Runtime {
		fn version() -> RuntimeVersion {
			VERSION
		}

		fn execute_block(block: <Block as BlockT>::LazyBlock) {
			Executive::execute_block(block)
		}

		fn initialize_block(header: &<Block as BlockT>::Header) -> sp_runtime::ExtrinsicInclusionMode {
			Executive::initialize_block(header)
		}
	}

	impl sp_api::Metadata<Block> for Runtime {
		fn metadata() -> OpaqueMetadata {
			OpaqueMetadata::new(Runtime::metadata().into())
		}

		fn metadata_at_version(version: u32) -> Option<OpaqueMetadata> {
			Runtime::metadata_at_version(version)
		}

		fn metadata_versions() -> Vec<u32> {
			Runtime::metadata_versions()
		}
	}

	impl sp_block_builder::BlockBuilder<Block> for Runtime {
		fn apply_extrinsic(extrinsic: <Block as BlockT>::Extrinsic) -> ApplyExtrinsicResult {
			Executive::apply_extrinsic(extrinsic)
		}

		fn finalize_block() -> <Block as BlockT>::Header {
			Executive::finalize_block()
		}

		fn inherent_extrinsics(data: sp_inherents::InherentData) -> Vec<<Block as BlockT>::Extrinsic> {
			data.create_extrinsics()
		}

		fn check_inherents(
			block: <Block as BlockT>::LazyBlock,
			data: sp_inherents::InherentData,
		) -> sp_inherents::CheckInherentsResult {
			data.check_extrinsics(&block)
		}
	}

	impl sp_transaction_pool::runtime_api::TaggedTransactionQueue<Block> for Runtime {
		fn validate_transaction(
			source: TransactionSource,
			tx: <Block as BlockT>::Extrinsic,
			block_hash: <Block as BlockT>::Hash,
		) -> TransactionValidity {
			Executive::validate_transaction(source, tx, block_hash)
		}
	}

	impl sp_offchain::OffchainWorkerApi<Block> for Runtime {
		fn offchain_worker(header: &<Block as BlockT>::Header) {
			Executive::offchain_worker(header)
		}
	}

	impl sp_session::SessionKeys<Block> for Runtime {
		fn generate_session_keys(
			owner: Vec<u8>,
			seed: Option<Vec<u8>>,
		) -> sp_session::OpaqueGeneratedSessionKeys {
			SessionKeys::generate(&owner, seed).into()
		}

		fn decode_session_keys(
			encoded: Vec<u8>,
		) -> Option<Vec<(Vec<u8>, KeyTypeId)>> {
			SessionKeys::decode_into_raw_public_keys(&encoded)
		}
	}

	impl frame_system_rpc_runtime_api::AccountNonceApi<Block, AccountId, Nonce> for Runtime {
		fn account_nonce(account: AccountId) -> Nonce {
			System::account_nonce(account)
		}
	}

	impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentApi<Block, Balance> for Runtime {
		fn query_info(
			uxt: <Block as BlockT>::Extrinsic,
			len: u32,
		) -> pallet_transaction_payment_rpc_runtime_api::RuntimeDispatchInfo<Balance> {
			TransactionPayment::query_info(uxt, len)
		}
		fn query_fee_details(
			uxt: <Block as BlockT>::Extrinsic,
			len: u32,
		) -> pallet_transaction_payment::FeeDetails<Balance> {
			TransactionPayment::query_fee_details(uxt, len)
		}
		fn query_weight_to_fee(weight: Weight) -> Balance {
			TransactionPayment::weight_to_fee(weight)
		}
		fn query_length_to_fee(length: u32) -> Balance {
			TransactionPayment::length_to_fee(length)
		}
	}

	impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentCallApi<Block, Balance, RuntimeCall>
		for Runtime
	{
		fn query_call_info(
			call: RuntimeCall,
			len: u32,
		) -> pallet_transaction_payment::RuntimeDispatchInfo<Balance> {
			TransactionPayment::query_call_info(call, len)
		}
		fn query_call_fee_details(
			call: RuntimeCall,
			len: u32,
		) -> pallet_transaction_payment::FeeDetails<Balance> {
			TransactionPayment::query_call_fee_details(call, len)
		}
		fn query_weight_to_fee(weight: Weight) -> Balance {
			TransactionPayment::weight_to_fee(weight)
		}
		fn query_length_to_fee(length: u32) -> Balance {
			TransactionPayment::length_to_fee(length)
		}
	}

	impl cumulus_primitives_core::CollectCollationInfo<Block> for Runtime {
		fn collect_collation_info(header: &<Block as BlockT>::Header) -> cumulus_primitives_core::CollationInfo {
			ParachainSystem::collect_collation_info(header)
		}
	}

	impl cumulus_primitives_core::GetParachainInfo<Block> for Runtime {
		fn parachain_id() -> cumulus_primitives_core::ParaId {
			ParachainInfo::parachain_id()
		}
	}

	impl pallet_reputation_runtime_api::ReputationApi<Block, AccountId, Balance> for Runtime {
		fn credit(who: AccountId) -> Option<u32> {
			pallet_reputation::Credits::<Runtime>::get(who)
		}

		fn institution(who: AccountId) -> Option<pallet_reputation_runtime_api::InstitutionSummary> {
			Reputation::summary(&who)
		}

		fn ranking() -> Vec<pallet_reputation_runtime_api::RankingEntry<AccountId, Balance>> {
			Reputation::ranking()
		}

		fn selected_collators() -> Vec<AccountId> {
			pallet_reputation::SelectedCollators::<Runtime>::get().into_inner()
		}
	}

	impl pallet_ehr_index_runtime_api::EhrIndexApi<Block, AccountId, pallet_ehr_index::Record<Runtime>>
		for Runtime
	{
		fn records_of_patient(
			patient: AccountId,
			start_after: Option<u64>,
			limit: u32,
		) -> Vec<(u64, pallet_ehr_index::Record<Runtime>)> {
			EhrIndex::records_of_patient(&patient, start_after, limit.min(100))
		}

		fn version_chain(record_id: u64) -> Vec<(u64, pallet_ehr_index::Record<Runtime>)> {
			EhrIndex::version_chain(record_id)
		}

		fn pending_for(validator: AccountId, limit: u32) -> Vec<(u64, pallet_ehr_index::Record<Runtime>)> {
			EhrIndex::pending_for(&validator, limit.min(100))
		}
	}

	#[api_version(2)]
	impl pallet_proxy_reencrypt_runtime_api::ProxyReencryptApi<
		Block,
		AccountId,
		pallet_proxy_reencrypt::Grant<Runtime>,
		pallet_proxy_reencrypt::AccessRequest<Runtime>,
	> for Runtime
	{
		fn patient_grants(patient: AccountId) -> Vec<(u64, pallet_proxy_reencrypt::Grant<Runtime>)> {
			ProxyReencrypt::grants_of_patient(&patient)
		}

		fn accessible_records(grantee: AccountId) -> Vec<(u64, u64)> {
			ProxyReencrypt::accessible_records(&grantee)
		}

		fn access_log(record: u64) -> Vec<(u64, pallet_proxy_reencrypt::AccessRequest<Runtime>)> {
			ProxyReencrypt::access_log(record)
		}

		fn readable_under(who: AccountId, record: u64) -> Option<u64> {
			ProxyReencrypt::readable_under(&who, record)
		}

		fn purpose_of_read(who: AccountId, record: u64, grant: u64) -> Option<medchain_primitives::AccessPurpose> {
			ProxyReencrypt::read_allowed(&who, record, grant)
		}

		fn fragments(request: u64) -> Vec<(AccountId, Vec<u8>)> {
			ProxyReencrypt::fragments_of(request)
		}

		fn key_fragment_of(proxy: AccountId, grant: u64) -> Option<medchain_primitives::ProxyAssignment> {
			ProxyReencrypt::assignment_of(&proxy, grant)
		}

		fn capsule_for(grant: u64, record: u64) -> Option<(Vec<u8>, Vec<u8>)> {
			ProxyReencrypt::capsule_of(grant, record).map(|c| (c.capsule.into_inner(), c.ciphertext.into_inner()))
		}
	}

	impl pallet_fl_task_runtime_api::FlTaskApi<
		Block,
		AccountId,
		pallet_fl_task::LearningTask<AccountId>,
		pallet_fl_task::Round<BlockNumber>,
	> for Runtime
	{
		fn task(task: u32) -> Option<pallet_fl_task::LearningTask<AccountId>> {
			pallet_fl_task::Tasks::<Runtime>::get(task)
		}

		fn global_model(task: u32) -> Option<Vec<i64>> {
			pallet_fl_task::GlobalModel::<Runtime>::get(task).and_then(|m| m.inline().map(|p| p.to_vec()))
		}

		fn stored_model(task: u32) -> Option<([u8; 32], u32, Vec<u8>)> {
			let model = pallet_fl_task::GlobalModel::<Runtime>::get(task)?;
			let r = model.stored()?;
			Some((r.digest.0, r.params, r.store.to_vec()))
		}

		fn rounds(task: u32) -> Vec<(u32, pallet_fl_task::Round<BlockNumber>)> {
			let Some(t) = pallet_fl_task::Tasks::<Runtime>::get(task) else { return Vec::new() };
			(0..=t.round)
				.filter_map(|r| pallet_fl_task::Rounds::<Runtime>::get(task, r).map(|info| (r, info)))
				.collect()
		}

		fn compute_aggregate(task: u32) -> Option<(Vec<i64>, Vec<AccountId>)> {
			let t = pallet_fl_task::Tasks::<Runtime>::get(task)?;
			FlTask::compute_aggregate(task, t.round).ok()
		}
	}

	#[cfg(feature = "try-runtime")]
	impl frame_try_runtime::TryRuntime<Block> for Runtime {
		fn on_runtime_upgrade(checks: frame_try_runtime::UpgradeCheckSelect) -> (Weight, Weight) {
			use super::configs::RuntimeBlockWeights;
			let weight = Executive::try_runtime_upgrade(checks).unwrap();
			(weight, RuntimeBlockWeights::get().max_block)
		}

		fn execute_block(
			block: <Block as BlockT>::LazyBlock,
			state_root_check: bool,
			signature_check: bool,
			select: frame_try_runtime::TryStateSelect,
		) -> Weight {
			Executive::try_execute_block(block, state_root_check, signature_check, select).unwrap()
		}
	}

	#[cfg(feature = "runtime-benchmarks")]
	impl frame_benchmarking::Benchmark<Block> for Runtime {
		fn benchmark_metadata(extra: bool) -> (
			Vec<frame_benchmarking::BenchmarkList>,
			Vec<frame_support::traits::StorageInfo>,
		) {
			use frame_benchmarking::BenchmarkList;
			use frame_support::traits::StorageInfoTrait;
			use frame_system_benchmarking::Pallet as SystemBench;
			use super::*;

			let mut list = Vec::<BenchmarkList>::new();
			list_benchmarks!(list, extra);
			let storage_info = AllPalletsWithSystem::storage_info();
			(list, storage_info)
		}

		#[allow(non_local_definitions)]
		fn dispatch_benchmark(
			config: frame_benchmarking::BenchmarkConfig,
		) -> Result<Vec<frame_benchmarking::BenchmarkBatch>, alloc::string::String> {
			use frame_benchmarking::{BenchmarkBatch, BenchmarkError};
			use frame_support::traits::WhitelistedStorageKeys;
			use frame_system_benchmarking::Pallet as SystemBench;
			use super::*;

			impl frame_system_benchmarking::Config for Runtime {
				fn setup_set_code_requirements(code: &Vec<u8>) -> Result<(), BenchmarkError> {
					ParachainSystem::initialize_for_set_code_benchmark(code.len() as u32);
					Ok(())
				}

				fn verify_set_code() {
					System::assert_last_event(
						cumulus_pallet_parachain_system::Event::<Runtime>::ValidationFunctionStored.into(),
					);
				}
			}

			let whitelist = AllPalletsWithSystem::whitelisted_storage_keys();
			let mut batches = Vec::<BenchmarkBatch>::new();
			let params = (&config, &whitelist);
			add_benchmarks!(params, batches);
			Ok(batches)
		}
	}

	impl sp_genesis_builder::GenesisBuilder<Block> for Runtime {
		fn build_state(config: Vec<u8>) -> sp_genesis_builder::Result {
			build_state::<RuntimeGenesisConfig>(config)
		}

		fn get_preset(id: &Option<sp_genesis_builder::PresetId>) -> Option<Vec<u8>> {
			get_preset::<RuntimeGenesisConfig>(id, crate::genesis_config_presets::get_preset)
		}

		fn preset_names() -> Vec<sp_genesis_builder::PresetId> {
			crate::genesis_config_presets::preset_names()
		}
	}
}
