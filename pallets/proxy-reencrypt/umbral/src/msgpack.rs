//! The subset of MessagePack that Umbral's objects serialize to, without
//! `std`: structs as arrays, byte strings as `bin`, booleans. Byte for byte
//! what `rmp_serde::to_vec` writes for them (checked in this crate's tests);
//! anything else is refused with [`CodecError`].

use alloc::vec::Vec;
use core::fmt;
use serde::{de, ser, Deserialize, Serialize};

/// Bytes that are not the expected MessagePack, or a value outside the subset.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CodecError(pub &'static str);

impl fmt::Display for CodecError {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(self.0)
	}
}

impl de::StdError for CodecError {}

impl de::Error for CodecError {
	fn custom<T: fmt::Display>(_: T) -> Self {
		// Umbral reports failed self-checks here; the detail is not needed.
		CodecError("invalid value")
	}
}

impl ser::Error for CodecError {
	fn custom<T: fmt::Display>(_: T) -> Self {
		CodecError("cannot serialize")
	}
}

/// Serializes `value` to MessagePack.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
	let mut out = Vec::new();
	value.serialize(&mut Writer { out: &mut out })?;
	Ok(out)
}

/// Deserializes a `T` from MessagePack; trailing bytes are an error.
pub fn from_bytes<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, CodecError> {
	let mut reader = Reader { input: bytes, depth: 0 };
	let value = T::deserialize(&mut reader)?;
	if reader.input.is_empty() {
		Ok(value)
	} else {
		Err(CodecError("trailing bytes"))
	}
}

struct Writer<'a> {
	out: &'a mut Vec<u8>,
}

impl Writer<'_> {
	fn array_header(&mut self, len: usize) -> Result<(), CodecError> {
		match len {
			0..=15 => self.out.push(0x90 | len as u8),
			16..=0xffff => {
				self.out.push(0xdc);
				self.out.extend_from_slice(&(len as u16).to_be_bytes());
			},
			_ => return Err(CodecError("array too long")),
		}
		Ok(())
	}
}

const UNSUPPORTED: CodecError = CodecError("type outside the Umbral subset");

impl<'a, 'b> ser::Serializer for &'a mut Writer<'b> {
	type Ok = ();
	type Error = CodecError;
	type SerializeSeq = ser::Impossible<(), CodecError>;
	type SerializeTuple = ser::Impossible<(), CodecError>;
	type SerializeTupleStruct = ser::Impossible<(), CodecError>;
	type SerializeTupleVariant = ser::Impossible<(), CodecError>;
	type SerializeMap = ser::Impossible<(), CodecError>;
	type SerializeStruct = Self;
	type SerializeStructVariant = ser::Impossible<(), CodecError>;

	fn is_human_readable(&self) -> bool {
		false
	}

	fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
		self.out.push(if v { 0xc3 } else { 0xc2 });
		Ok(())
	}

	fn serialize_bytes(self, v: &[u8]) -> Result<(), CodecError> {
		match v.len() {
			0..=0xff => {
				self.out.push(0xc4);
				self.out.push(v.len() as u8);
			},
			0x100..=0xffff => {
				self.out.push(0xc5);
				self.out.extend_from_slice(&(v.len() as u16).to_be_bytes());
			},
			_ => {
				let len = u32::try_from(v.len()).map_err(|_| CodecError("bytes too long"))?;
				self.out.push(0xc6);
				self.out.extend_from_slice(&len.to_be_bytes());
			},
		}
		self.out.extend_from_slice(v);
		Ok(())
	}

	fn serialize_struct(self, _: &'static str, len: usize) -> Result<Self, CodecError> {
		self.array_header(len)?;
		Ok(self)
	}

	fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), CodecError> {
		v.serialize(self)
	}

	fn serialize_i8(self, _: i8) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_i16(self, _: i16) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_i32(self, _: i32) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_i64(self, _: i64) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_u8(self, _: u8) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_u16(self, _: u16) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_u32(self, _: u32) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_u64(self, _: u64) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_f32(self, _: f32) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_f64(self, _: f64) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_char(self, _: char) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_str(self, _: &str) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_none(self) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_unit(self) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_unit_struct(self, _: &'static str) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_newtype_variant<T: Serialize + ?Sized>(
		self,
		_: &'static str,
		_: u32,
		_: &'static str,
		_: &T,
	) -> Result<(), CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_tuple_variant(
		self,
		_: &'static str,
		_: u32,
		_: &'static str,
		_: usize,
	) -> Result<Self::SerializeTupleVariant, CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
		Err(UNSUPPORTED)
	}
	fn serialize_struct_variant(
		self,
		_: &'static str,
		_: u32,
		_: &'static str,
		_: usize,
	) -> Result<Self::SerializeStructVariant, CodecError> {
		Err(UNSUPPORTED)
	}
}

impl<'a, 'b> ser::SerializeStruct for &'a mut Writer<'b> {
	type Ok = ();
	type Error = CodecError;

	fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Result<(), CodecError> {
		v.serialize(&mut **self)
	}

	fn end(self) -> Result<(), CodecError> {
		Ok(())
	}
}

struct Reader<'de> {
	input: &'de [u8],
	/// Arrays entered and not yet left.
	depth: u8,
}

/// How deeply arrays may nest: Umbral's objects nest 3 deep; anything
/// deeper is refused rather than recursed into (the runtime parses bytes
/// that anyone may send).
const MAX_DEPTH: u8 = 8;

const EOF: CodecError = CodecError("unexpected end of input");

impl<'de> Reader<'de> {
	fn take(&mut self, n: usize) -> Result<&'de [u8], CodecError> {
		if self.input.len() < n {
			return Err(EOF);
		}
		let (head, rest) = self.input.split_at(n);
		self.input = rest;
		Ok(head)
	}

	fn byte(&mut self) -> Result<u8, CodecError> {
		Ok(self.take(1)?[0])
	}

	fn be(&mut self, n: usize) -> Result<usize, CodecError> {
		Ok(self.take(n)?.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize))
	}

	fn peek(&self) -> Result<u8, CodecError> {
		self.input.first().copied().ok_or(EOF)
	}

	fn bin(&mut self) -> Result<&'de [u8], CodecError> {
		let len = match self.byte()? {
			0xc4 => self.be(1)?,
			0xc5 => self.be(2)?,
			0xc6 => self.be(4)?,
			_ => return Err(CodecError("expected bytes")),
		};
		self.take(len)
	}

	fn array_len(&mut self) -> Result<usize, CodecError> {
		match self.byte()? {
			m @ 0x90..=0x9f => Ok((m & 0x0f) as usize),
			0xdc => self.be(2),
			0xdd => self.be(4),
			_ => Err(CodecError("expected an array")),
		}
	}
}

struct Elements<'a, 'de> {
	reader: &'a mut Reader<'de>,
	left: usize,
}

impl<'a, 'de> de::SeqAccess<'de> for Elements<'a, 'de> {
	type Error = CodecError;

	fn next_element_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, CodecError> {
		if self.left == 0 {
			return Ok(None);
		}
		self.left -= 1;
		if self.reader.depth >= MAX_DEPTH {
			return Err(CodecError("nested too deeply"));
		}
		self.reader.depth += 1;
		let value = seed.deserialize(&mut *self.reader);
		self.reader.depth -= 1;
		value.map(Some)
	}

	fn size_hint(&self) -> Option<usize> {
		Some(self.left)
	}
}

impl<'a, 'de> de::Deserializer<'de> for &'a mut Reader<'de> {
	type Error = CodecError;

	fn is_human_readable(&self) -> bool {
		false
	}

	fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
		match self.peek()? {
			0xc2 | 0xc3 => self.deserialize_bool(visitor),
			0xc4..=0xc6 => self.deserialize_bytes(visitor),
			0x90..=0x9f | 0xdc | 0xdd => self.deserialize_seq(visitor),
			_ => Err(UNSUPPORTED),
		}
	}

	fn deserialize_bool<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
		match self.byte()? {
			0xc2 => visitor.visit_bool(false),
			0xc3 => visitor.visit_bool(true),
			_ => Err(CodecError("expected a boolean")),
		}
	}

	fn deserialize_bytes<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
		visitor.visit_borrowed_bytes(self.bin()?)
	}

	fn deserialize_byte_buf<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
		self.deserialize_bytes(visitor)
	}

	fn deserialize_seq<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
		let left = self.array_len()?;
		// Each element takes at least one byte: refuse absurd lengths early.
		if left > self.input.len() {
			return Err(EOF);
		}
		let value = visitor.visit_seq(Elements { reader: &mut *self, left })?;
		Ok(value)
	}

	fn deserialize_tuple<V: de::Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, CodecError> {
		self.deserialize_seq(visitor)
	}

	fn deserialize_struct<V: de::Visitor<'de>>(
		self,
		_: &'static str,
		fields: &'static [&'static str],
		visitor: V,
	) -> Result<V::Value, CodecError> {
		let before = self.input;
		let len = self.array_len()?;
		if len != fields.len() {
			self.input = before;
			return Err(CodecError("wrong number of fields"));
		}
		visitor.visit_seq(Elements { reader: &mut *self, left: len })
	}

	fn deserialize_newtype_struct<V: de::Visitor<'de>>(
		self,
		_: &'static str,
		visitor: V,
	) -> Result<V::Value, CodecError> {
		visitor.visit_newtype_struct(self)
	}

	serde::forward_to_deserialize_any! {
		i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
		option unit unit_struct tuple_struct map enum identifier ignored_any
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[derive(Serialize, Deserialize, PartialEq, Debug)]
	struct Sample {
		#[serde(with = "bytes")]
		a: Vec<u8>,
		flag: bool,
	}

	mod bytes {
		use super::*;
		pub fn serialize<S: ser::Serializer>(v: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
			s.serialize_bytes(v)
		}
		pub fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
			struct V;
			impl<'de> de::Visitor<'de> for V {
				type Value = Vec<u8>;
				fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
					f.write_str("bytes")
				}
				fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
					Ok(v.to_vec())
				}
			}
			d.deserialize_bytes(V)
		}
	}

	#[test]
	fn lengths_of_every_width_round_trip_as_rmp_serde_writes_them() {
		for len in [0usize, 1, 255, 256, 65_535, 65_536] {
			let s = Sample { a: vec![7u8; len], flag: len % 2 == 0 };
			let ours = to_bytes(&s).unwrap();
			assert_eq!(ours, rmp_serde::to_vec(&s).unwrap(), "len {len}");
			assert_eq!(from_bytes::<Sample>(&ours).unwrap(), s);
		}
	}

	#[test]
	fn refuses_truncated_trailing_and_foreign_input() {
		let s = Sample { a: vec![1, 2, 3], flag: true };
		let bytes = to_bytes(&s).unwrap();
		assert_eq!(from_bytes::<Sample>(&bytes[..bytes.len() - 1]), Err(EOF));
		let mut longer = bytes.clone();
		longer.push(0);
		assert_eq!(from_bytes::<Sample>(&longer), Err(CodecError("trailing bytes")));
		// A map (rmp_serde::to_vec_named) is not the wire format.
		assert!(from_bytes::<Sample>(&rmp_serde::to_vec_named(&s).unwrap()).is_err());
		assert_eq!(to_bytes(&5u32), Err(UNSUPPORTED));
		// An array header promising more elements than bytes left.
		assert_eq!(from_bytes::<Sample>(&[0xdc, 0xff, 0xff]), Err(CodecError("wrong number of fields")));
	}

	#[test]
	fn deeply_nested_arrays_are_refused_not_recursed_into() {
		use serde::de::IgnoredAny;
		// 500 one-element arrays inside each other, as a crafted fragment.
		let mut deep = vec![0x91u8; 500];
		deep.push(0xc2);
		assert_eq!(from_bytes::<IgnoredAny>(&deep).err(), Some(CodecError("nested too deeply")));
		let mut shallow = vec![0x91u8; 8];
		shallow.push(0xc2);
		assert!(from_bytes::<IgnoredAny>(&shallow).is_ok());
	}
}
