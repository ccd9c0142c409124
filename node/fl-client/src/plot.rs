//! A PNG line chart of accuracy and loss per round, written without
//! dependencies: an RGB canvas, a 3×5 pixel font, and a PNG encoder with
//! stored (uncompressed) deflate blocks.

use std::{fs, path::Path};

const W: usize = 640;
const H: usize = 400;
const LEFT: usize = 60;
const RIGHT: usize = 20;
const TOP: usize = 40;
const BOTTOM: usize = 50;

/// Colour of the accuracy line.
pub const ACCURACY: [u8; 3] = [31, 119, 180];
/// Colour of the loss line.
pub const LOSS: [u8; 3] = [214, 39, 40];

struct Canvas {
	px: Vec<u8>,
}

impl Canvas {
	fn new() -> Self {
		Canvas { px: vec![255; W * H * 3] }
	}

	fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
		if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
			let i = (y as usize * W + x as usize) * 3;
			self.px[i..i + 3].copy_from_slice(&c);
		}
	}

	fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3], thick: i64) {
		let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
		for s in 0..=steps {
			let x = x0 + (x1 - x0) * s / steps;
			let y = y0 + (y1 - y0) * s / steps;
			for dx in 0..thick {
				for dy in 0..thick {
					self.set(x + dx, y + dy, c);
				}
			}
		}
	}

	fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3], scale: i64) {
		for (k, ch) in s.chars().enumerate() {
			let glyph = glyph(ch);
			for (row, bits) in glyph.iter().enumerate() {
				for col in 0..3 {
					if bits & (0b100 >> col) != 0 {
						for dx in 0..scale {
							for dy in 0..scale {
								self.set(x + (k as i64 * 4 + col) * scale + dx, y + row as i64 * scale + dy, c);
							}
						}
					}
				}
			}
		}
	}
}

/// 3×5 glyphs, one row per entry, bit 2 = left column.
fn glyph(c: char) -> [u8; 5] {
	match c.to_ascii_uppercase() {
		'0' => [7, 5, 5, 5, 7],
		'1' => [2, 6, 2, 2, 7],
		'2' => [7, 1, 7, 4, 7],
		'3' => [7, 1, 7, 1, 7],
		'4' => [5, 5, 7, 1, 1],
		'5' => [7, 4, 7, 1, 7],
		'6' => [7, 4, 7, 5, 7],
		'7' => [7, 1, 1, 1, 1],
		'8' => [7, 5, 7, 5, 7],
		'9' => [7, 5, 7, 1, 7],
		'.' => [0, 0, 0, 0, 2],
		'-' => [0, 0, 7, 0, 0],
		'/' => [1, 1, 2, 4, 4],
		':' => [0, 2, 0, 2, 0],
		'A' => [2, 5, 7, 5, 5],
		'C' => [7, 4, 4, 4, 7],
		'D' => [6, 5, 5, 5, 6],
		'E' => [7, 4, 6, 4, 7],
		'F' => [7, 4, 6, 4, 4],
		'K' => [5, 5, 6, 5, 5],
		'L' => [4, 4, 4, 4, 7],
		'N' => [5, 7, 7, 7, 5],
		'O' => [7, 5, 5, 5, 7],
		'R' => [6, 5, 6, 5, 5],
		'S' => [7, 4, 7, 1, 7],
		'T' => [7, 2, 2, 2, 2],
		'U' => [5, 5, 5, 5, 7],
		'Y' => [5, 5, 2, 2, 2],
		_ => [0; 5],
	}
}

/// Draws accuracy (left scale 0–1) and loss (scaled to its maximum) per round
/// and writes a PNG to `path`.
pub fn write_plot(path: &Path, title: &str, rounds: &[(u32, f64, f64)]) -> Result<(), String> {
	let mut c = Canvas::new();
	let (pw, ph) = ((W - LEFT - RIGHT) as i64, (H - TOP - BOTTOM) as i64);
	let (x0, y0) = (LEFT as i64, (H - BOTTOM) as i64);
	let grey = [200, 200, 200];
	for k in 0..=4 {
		let y = y0 - ph * k / 4;
		c.line((x0, y), (x0 + pw, y), grey, 1);
		c.text(8, y - 5, &format!("{:.2}", k as f64 / 4.0), [0, 0, 0], 2);
	}
	c.line((x0, y0), (x0 + pw, y0), [0, 0, 0], 2);
	c.line((x0, y0 - ph), (x0, y0), [0, 0, 0], 2);
	c.text(LEFT as i64, 10, title, [0, 0, 0], 3);
	c.text(x0 + pw / 2 - 30, y0 + 28, "ROUND", [0, 0, 0], 3);
	let last = rounds.last().map_or(1, |r| r.0.max(1)) as i64;
	let max_loss = rounds.iter().map(|r| r.2).fold(f64::MIN_POSITIVE, f64::max);
	let px = |round: u32| x0 + pw * round as i64 / last;
	for k in [0, last / 2, last] {
		c.text(px(k as u32) - 4, y0 + 8, &k.to_string(), [0, 0, 0], 2);
	}
	let point = |round: u32, v: f64| (px(round), y0 - (ph as f64 * v.clamp(0.0, 1.0)) as i64);
	for pair in rounds.windows(2) {
		c.line(point(pair[0].0, pair[0].1), point(pair[1].0, pair[1].1), ACCURACY, 3);
		c.line(point(pair[0].0, pair[0].2 / max_loss), point(pair[1].0, pair[1].2 / max_loss), LOSS, 3);
	}
	let legend_x = x0 + pw - 230;
	c.line((legend_x, y0 - 40), (legend_x + 20, y0 - 40), ACCURACY, 3);
	c.text(legend_x + 28, y0 - 44, "ACCURACY", ACCURACY, 2);
	c.line((legend_x, y0 - 20), (legend_x + 20, y0 - 20), LOSS, 3);
	c.text(legend_x + 28, y0 - 24, &format!("LOSS / {max_loss:.2}"), LOSS, 2);
	fs::write(path, encode_png(&c.px, W, H)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Encodes 8-bit RGB pixels as a PNG.
pub fn encode_png(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
	let mut raw = Vec::with_capacity((w * 3 + 1) * h);
	for row in rgb.chunks(w * 3) {
		raw.push(0); // filter: none
		raw.extend_from_slice(row);
	}
	let mut z = vec![0x78, 0x01];
	let mut blocks = raw.chunks(65_535).peekable();
	while let Some(block) = blocks.next() {
		z.push(if blocks.peek().is_none() { 1 } else { 0 });
		let len = block.len() as u16;
		z.extend_from_slice(&len.to_le_bytes());
		z.extend_from_slice(&(!len).to_le_bytes());
		z.extend_from_slice(block);
	}
	z.extend_from_slice(&adler32(&raw).to_be_bytes());

	let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
	let mut ihdr = Vec::new();
	ihdr.extend_from_slice(&(w as u32).to_be_bytes());
	ihdr.extend_from_slice(&(h as u32).to_be_bytes());
	ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
	chunk(&mut png, b"IHDR", &ihdr);
	chunk(&mut png, b"IDAT", &z);
	chunk(&mut png, b"IEND", &[]);
	png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
	out.extend_from_slice(&(data.len() as u32).to_be_bytes());
	let start = out.len();
	out.extend_from_slice(kind);
	out.extend_from_slice(data);
	let crc = crc32(&out[start..]);
	out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
	let mut crc = 0xFFFF_FFFFu32;
	for b in bytes {
		crc ^= *b as u32;
		for _ in 0..8 {
			crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
		}
	}
	!crc
}

fn adler32(bytes: &[u8]) -> u32 {
	let (mut a, mut b) = (1u32, 0u32);
	for x in bytes {
		a = (a + *x as u32) % 65_521;
		b = (b + a) % 65_521;
	}
	(b << 16) | a
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn checksums_match_known_values() {
		assert_eq!(crc32(b"IEND"), 0xAE42_6082);
		assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
	}

	#[test]
	fn png_has_the_right_structure() {
		let png = encode_png(&vec![0; 4 * 3 * 3], 4, 3);
		assert_eq!(&png[..8], &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
		assert_eq!(&png[12..16], b"IHDR");
		assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
	}
}
