//! What a block's events say about one of its extrinsics, read with the
//! metadata of the runtime that made the block rather than with the
//! runtime types compiled into the tools: events that a runtime upgrade
//! added or changed decode as well as the old ones.
//!
//! `frame-metadata` decodes the metadata, `scale-value` decodes
//! `System::Events` against its type registry.

use codec::Decode;
use frame_metadata::{v14::StorageEntryType, RuntimeMetadata, RuntimeMetadataPrefixed};
use scale_info::{form::PortableForm, PortableRegistry, TypeDef};
use scale_value::{Composite, Primitive, Value, ValueDef};

/// How an extrinsic dispatched, as its block's events say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
	/// `System::ExtrinsicSuccess`.
	Success,
	/// `System::ExtrinsicFailed`, with the error's name (`ehrIndex.NotReadable`,
	/// `BadOrigin`, …).
	Failed(String),
}

/// The types of one runtime's events and errors, from its metadata.
pub struct EventTypes {
	registry: PortableRegistry,
	/// Type of the `System::Events` storage value.
	events: u32,
	/// Each pallet's index, name and error type.
	pallets: Vec<(u8, String, Option<u32>)>,
}

impl EventTypes {
	/// Reads the types from SCALE-encoded metadata (`state_getMetadata`,
	/// versions 14 and 15).
	pub fn from_metadata(bytes: &[u8]) -> Result<Self, String> {
		let prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..]).map_err(|e| format!("metadata: {e}"))?;
		macro_rules! read {
			($m:expr) => {{
				let m = $m;
				let mut events = None;
				let mut pallets = Vec::new();
				for p in m.pallets {
					if p.name == "System" {
						events = p.storage.iter().flat_map(|s| s.entries.iter()).find_map(|e| match &e.ty {
							StorageEntryType::Plain(ty) if e.name == "Events" => Some(ty.id),
							_ => None,
						});
					}
					pallets.push((p.index, p.name, p.error.map(|e| e.ty.id)));
				}
				let events = events.ok_or("metadata: no System::Events")?;
				EventTypes { registry: m.types, events, pallets }
			}};
		}
		Ok(match prefixed.1 {
			RuntimeMetadata::V14(m) => read!(m),
			RuntimeMetadata::V15(m) => read!(m),
			_ => return Err("metadata: only versions 14 and 15 are read".into()),
		})
	}

	/// How the extrinsic at `index` of a block dispatched, from the block's
	/// encoded `System::Events`; `None` if the events say nothing of it.
	pub fn dispatch_of(&self, events: &[u8], index: u32) -> Result<Option<Dispatch>, String> {
		let decoded = scale_value::scale::decode_as_type(&mut &events[..], self.events, &self.registry)
			.map_err(|e| format!("events: {e}"))?;
		let ValueDef::Composite(records) = decoded.value else { return Err("events: not a sequence".into()) };
		for record in records.values() {
			let Some(("ApplyExtrinsic", phase)) = field(record, "phase").and_then(variant) else { continue };
			if phase.values().next().and_then(Value::as_u128) != Some(u128::from(index)) {
				continue;
			}
			let Some(("System", inner)) = field(record, "event").and_then(variant) else { continue };
			match inner.values().next().and_then(variant) {
				Some(("ExtrinsicSuccess", _)) => return Ok(Some(Dispatch::Success)),
				Some(("ExtrinsicFailed", fields)) => {
					let error = fields.values().next().map(|e| self.error_name(e)).unwrap_or_default();
					return Ok(Some(Dispatch::Failed(error)));
				},
				_ => {},
			}
		}
		Ok(None)
	}

	/// The name of a `DispatchError` value: `pallet.Error` for a module
	/// error, the variant's name otherwise.
	fn error_name(&self, error: &Value<u32>) -> String {
		let Some((name, inner)) = variant(error) else { return "unknown error".into() };
		if name != "Module" {
			return name.to_string();
		}
		let module = inner.values().next();
		let index = module.and_then(|m| field(m, "index")).and_then(Value::as_u128);
		let code = module.and_then(|m| field(m, "error")).and_then(first_byte);
		let (Some(index), Some(code)) = (index, code) else { return "Module".into() };
		let Some((_, pallet, ty)) = self.pallets.iter().find(|(i, _, _)| u128::from(*i) == index) else {
			return format!("pallet {index} error {code}");
		};
		let error = ty.and_then(|ty| self.variant_name(ty, code)).unwrap_or_else(|| format!("error {code}"));
		format!("{}.{error}", lower_first(pallet))
	}

	/// The name of variant `index` of enum type `ty`.
	fn variant_name(&self, ty: u32, index: u8) -> Option<String> {
		let ty: &scale_info::Type<PortableForm> = self.registry.resolve(ty)?;
		let TypeDef::Variant(def) = &ty.type_def else { return None };
		def.variants.iter().find(|v| v.index == index).map(|v| v.name.clone())
	}
}

/// Field `name` of a composite value with named fields.
fn field<'a>(value: &'a Value<u32>, name: &str) -> Option<&'a Value<u32>> {
	match &value.value {
		ValueDef::Composite(Composite::Named(fields)) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
		_ => None,
	}
}

/// The name and fields of an enum value.
fn variant(value: &Value<u32>) -> Option<(&str, &Composite<u32>)> {
	match &value.value {
		ValueDef::Variant(v) => Some((v.name.as_str(), &v.values)),
		_ => None,
	}
}

/// The first byte of a byte array value (`ModuleError::error`).
fn first_byte(value: &Value<u32>) -> Option<u8> {
	match &value.value {
		ValueDef::Composite(c) => c.values().next().and_then(Value::as_u128).and_then(|b| u8::try_from(b).ok()),
		ValueDef::Primitive(Primitive::U128(b)) => u8::try_from(*b).ok(),
		_ => None,
	}
}

/// `EhrIndex` → `ehrIndex`, as polkadot.js names pallets.
fn lower_first(name: &str) -> String {
	let mut chars = name.chars();
	chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
	use super::*;
	use codec::Encode;
	use frame_system::{EventRecord, Phase};
	use medchain_runtime::{Runtime, RuntimeEvent};
	use sp_core::H256;
	use sp_runtime::{DispatchError, ModuleError};

	/// The runtime's own metadata (version 14), as `state_getMetadata` gives it.
	fn metadata() -> Vec<u8> {
		sp_io::TestExternalities::default()
			.execute_with(|| Runtime::metadata_at_version(14))
			.expect("the runtime serves metadata v14")
			.to_vec()
	}

	fn types() -> EventTypes {
		EventTypes::from_metadata(&metadata()).expect("the runtime's own metadata reads")
	}

	fn record(index: u32, event: frame_system::Event<Runtime>) -> EventRecord<RuntimeEvent, H256> {
		EventRecord { phase: Phase::ApplyExtrinsic(index), event: RuntimeEvent::System(event), topics: vec![] }
	}

	#[test]
	fn success_and_module_errors_are_read_from_metadata() {
		let types = types();
		let ehr_index = <medchain_runtime::EhrIndex as frame_support::traits::PalletInfoAccess>::index() as u8;
		// The error's position, from the pallet's own error enum.
		let not_found = pallet_ehr_index::Error::<Runtime>::RecordNotFound.encode()[0];
		let failed = frame_system::Event::ExtrinsicFailed {
			dispatch_error: DispatchError::Module(ModuleError {
				index: ehr_index,
				error: [not_found, 0, 0, 0],
				message: None,
			}),
			dispatch_info: Default::default(),
		};
		let events = vec![
			record(0, frame_system::Event::ExtrinsicSuccess { dispatch_info: Default::default() }),
			record(1, failed),
			record(
				2,
				frame_system::Event::ExtrinsicFailed {
					dispatch_error: DispatchError::BadOrigin,
					dispatch_info: Default::default(),
				},
			),
		]
		.encode();
		assert_eq!(types.dispatch_of(&events, 0), Ok(Some(Dispatch::Success)));
		assert_eq!(types.dispatch_of(&events, 1), Ok(Some(Dispatch::Failed("ehrIndex.RecordNotFound".into()))));
		assert_eq!(types.dispatch_of(&events, 2), Ok(Some(Dispatch::Failed("BadOrigin".into()))));
		assert_eq!(types.dispatch_of(&events, 3), Ok(None));
	}

	#[test]
	fn an_event_added_by_a_runtime_upgrade_does_not_hide_an_outcome() {
		// The upgraded runtime's metadata: System gains an event the tools'
		// compiled `RuntimeEvent` does not know.
		let metadata = metadata();
		let RuntimeMetadataPrefixed(magic, RuntimeMetadata::V14(mut m)) =
			RuntimeMetadataPrefixed::decode(&mut &metadata[..]).expect("metadata decodes")
		else {
			panic!("asked for v14");
		};
		let system = m.pallets.iter().find(|p| p.name == "System").expect("System pallet");
		let (system_index, system_event) = (system.index, system.event.as_ref().expect("System events").ty.id);
		let u32_type = m
			.types
			.types
			.iter()
			.find(|t| matches!(t.ty.type_def, TypeDef::Primitive(scale_info::TypeDefPrimitive::U32)))
			.expect("u32 is in the registry")
			.id;
		let event_type = m.types.types.iter_mut().find(|t| t.id == system_event).expect("System's event type");
		let TypeDef::Variant(def) = &mut event_type.ty.type_def else { panic!("events are an enum") };
		def.variants.push(scale_info::Variant {
			name: "Upgraded".into(),
			fields: vec![scale_info::Field { name: Some("height".into()), ty: u32_type.into(), type_name: None, docs: vec![] }],
			index: 200,
			docs: vec![],
		});
		let upgraded = RuntimeMetadataPrefixed(magic, RuntimeMetadata::V14(m)).encode();

		// Extrinsic 0 emitted the new event; extrinsic 1 succeeded.
		let mut events = codec::Compact(2u32).encode();
		events.extend(Phase::ApplyExtrinsic(0).encode());
		events.extend([system_index, 200]);
		events.extend(7u32.encode());
		events.extend(Vec::<H256>::new().encode());
		events.extend(record(1, frame_system::Event::ExtrinsicSuccess { dispatch_info: Default::default() }).encode());

		assert!(
			Vec::<EventRecord<RuntimeEvent, H256>>::decode(&mut &events[..]).is_err(),
			"the compiled types cannot read the upgraded runtime's events"
		);
		let types = EventTypes::from_metadata(&upgraded).expect("upgraded metadata reads");
		assert_eq!(types.dispatch_of(&events, 1), Ok(Some(Dispatch::Success)));
		assert_eq!(types.dispatch_of(&events, 0), Ok(None));
		// Bytes that do not fit the metadata are an error, never a success.
		assert!(types.dispatch_of(&events[..events.len() - 3], 1).is_err());
	}

	#[test]
	fn metadata_that_is_not_metadata_is_refused() {
		assert!(EventTypes::from_metadata(b"not metadata").is_err());
	}
}
