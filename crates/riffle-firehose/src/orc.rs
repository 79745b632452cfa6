//! An ORC file writer (ORC v1, the Hive 0.11/0.12 file format) for the
//! Arrow record batches record format conversion builds.
//!
//! The file Riffle writes:
//!
//! - the `ORC` magic;
//! - stripes of whole rows, closed once the rows buffered for one reach
//!   the stripe size. A stripe is its row indexes (one ROW_INDEX stream a
//!   column, with an entry for every row index stride of rows: each
//!   stream's position at the row group's first row and the group's
//!   statistics, and for the bloom filter columns a BLOOM_FILTER_UTF8
//!   stream with a bloom filter a row group), its data streams, column by
//!   column in pre-order, then
//!   its stripe footer (the streams, a DIRECT encoding for every column,
//!   writer time zone `UTC`). Every column is written with
//!   the version 1 encodings: PRESENT (boolean run-length) when the stripe
//!   holds a null of the column; integers (short, int, long, date) as
//!   signed run-length v1; tinyint as byte run-length; boolean as boolean
//!   run-length; float and double little-endian IEEE 754; string and
//!   binary as DATA bytes and a LENGTH stream; timestamp as DATA seconds
//!   since 2015-01-01 00:00:00 UTC and SECONDARY nanoseconds without their
//!   trailing zeros; decimal as DATA zigzag varints of the unscaled value
//!   and a SECONDARY scale stream; list and map as a LENGTH stream with
//!   their elements (keys and values) in the child columns; struct
//!   columns have no stream but PRESENT, and their fields hold values
//!   only for the rows where the struct is present;
//! - with padding on, zeros before a stripe that would straddle a block
//!   boundary, when the space left in the block is within the tolerance;
//! - the metadata (per-stripe column statistics), the file footer (the
//!   type tree flattened in pre-order, stripe locations, file column
//!   statistics, row count, row index stride) and the PostScript
//!   (lengths, compression, block size, file version, writer version,
//!   magic), then one byte: the PostScript's length.
//!
//! Every stream, stripe footer, metadata and footer is compressed
//! separately with NONE, ZLIB (raw deflate) or SNAPPY, in chunks of at
//! most the compression block size, each behind a 3-byte header; a chunk
//! that does not shrink is stored as it is. A position in a compressed
//! stream is the chunk's start and the offset into its uncompressed
//! bytes, then the values into a run-length group (and the bits into a
//! byte for boolean streams).
//!
//! Column statistics hold the value count and whether a null was seen;
//! integers add minimum, maximum and sum (while it fits), dates minimum
//! and maximum, floats minimum, maximum and sum (none once a NaN is seen),
//! strings minimum and maximum (up to 1 KiB) and total length, booleans
//! the true count, binaries the total length, lists and maps the fewest,
//! most and total children, timestamps the earliest and latest
//! millisecond, decimals minimum, maximum and sum (while it fits 38
//! digits) as text. Protocol Buffers messages are encoded here
//! ([`Msg`]).

use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

/// Generic compression of the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Snappy,
}

/// How to write a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub compression: Compression,
    /// The most uncompressed bytes of one compression chunk.
    pub compression_block_size: usize,
    /// A stripe is closed once its buffered data reaches this size.
    pub stripe_size: usize,
    /// The file system block stripes are padded to, with padding on.
    pub block_size: u64,
    /// The share of a stripe's size that may be spent on padding; `None`
    /// when padding is off.
    pub padding_tolerance: Option<f64>,
    /// The file format version: `[0, 11]` or `[0, 12]`.
    pub version: [u32; 2],
    /// Rows a row index entry covers; 0 writes no row index.
    pub row_index_stride: u32,
    /// Top-level columns (lower case) with a bloom filter for every row
    /// group (with a row index).
    pub bloom_filter_columns: Vec<String>,
    /// The bloom filters' false positive probability.
    pub bloom_filter_fpp: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            compression: Compression::Snappy,
            compression_block_size: 256 * 1024,
            stripe_size: 64 * 1024 * 1024,
            block_size: 256 * 1024 * 1024,
            padding_tolerance: None,
            version: [0, 12],
            row_index_stride: 10_000,
            bloom_filter_columns: Vec::new(),
            bloom_filter_fpp: 0.05,
        }
    }
}

/// Seconds from the Unix epoch to 2015-01-01 00:00:00 UTC, ORC's
/// timestamp base.
const TIMESTAMP_BASE: i64 = 1_420_070_400;

/// Rows appended to a stripe between two checks of its size.
const ROWS_PER_CHECK: usize = 1024;

/// The largest chunk a 3-byte chunk header can describe.
const MAX_CHUNK: usize = (1 << 23) - 1;

/// The version of this writer (writers other than ORC Java start at 6).
const WRITER_VERSION: u64 = 6;

// ---------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------

/// Base 128 varint.
fn varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn zigzag128(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// A run-length encoded stream and where each of its groups (runs and
/// literal lists) starts: (index of the group's first value, byte
/// offset).
#[derive(Debug, Default)]
pub struct Rle {
    pub bytes: Vec<u8>,
    starts: Vec<(usize, usize)>,
    values: usize,
}

impl Rle {
    /// Opens a group whose first value is the `first`th.
    fn group(&mut self, first: usize, control: u8) {
        self.starts.push((first, self.bytes.len()));
        self.bytes.push(control);
    }

    /// Writes `items`, the values from the `first`th on, as literal
    /// groups of at most 128, each behind its negative count.
    fn literals<T: Copy>(&mut self, first: usize, items: &[T], put: impl Fn(&mut Vec<u8>, T)) {
        for (g, group) in items.chunks(128).enumerate() {
            self.group(first + g * 128, (-(group.len() as i32)) as u8);
            for &v in group {
                put(&mut self.bytes, v);
            }
        }
    }

    /// Where the `k`th value is: the byte offset of its group and how
    /// many of the group's values come before it.
    fn at(&self, k: usize) -> (usize, u64) {
        if k >= self.values {
            return (self.bytes.len(), 0);
        }
        let g = self.starts.partition_point(|&(first, _)| first <= k);
        let (first, offset) = self.starts[g.saturating_sub(1)];
        (offset, (k - first) as u64)
    }
}

/// Run-length encoding of integers, version 1: runs of 3 to 130 values
/// with a constant delta in -128..=127 (control byte, delta, base value)
/// and literal groups. `signed` values are zigzag encoded.
pub fn int_rle(values: &[i64], signed: bool) -> Rle {
    let put =
        |out: &mut Vec<u8>, v: i64| varint(out, if signed { zigzag(v) } else { v as u64 } as u128);
    let mut out = Rle {
        values: values.len(),
        ..Rle::default()
    };
    let (mut start, mut i) = (0, 0);
    while i < values.len() {
        let run = (i + 2 < values.len())
            .then(|| i128::from(values[i + 1]) - i128::from(values[i]))
            .filter(|d| (-128..=127).contains(d))
            .map(|d| {
                let mut n = 2;
                while i + n < values.len()
                    && n < 130
                    && i128::from(values[i + n]) - i128::from(values[i + n - 1]) == d
                {
                    n += 1;
                }
                (n, d)
            })
            .filter(|(n, _)| *n >= 3);
        match run {
            Some((n, d)) => {
                out.literals(start, &values[start..i], put);
                out.group(i, (n - 3) as u8);
                out.bytes.push(d as i8 as u8);
                put(&mut out.bytes, values[i]);
                i += n;
                start = i;
            }
            None => i += 1,
        }
    }
    out.literals(start, &values[start..], put);
    out
}

/// Byte run-length encoding: runs of 3 to 130 equal bytes and literal
/// groups.
pub fn byte_rle(values: &[u8]) -> Rle {
    let put = |out: &mut Vec<u8>, v: u8| out.push(v);
    let mut out = Rle {
        values: values.len(),
        ..Rle::default()
    };
    let (mut start, mut i) = (0, 0);
    while i < values.len() {
        let mut n = 1;
        while i + n < values.len() && n < 130 && values[i + n] == values[i] {
            n += 1;
        }
        if n >= 3 {
            out.literals(start, &values[start..i], put);
            out.group(i, (n - 3) as u8);
            out.bytes.push(values[i]);
            i += n;
            start = i;
        } else {
            i += 1;
        }
    }
    out.literals(start, &values[start..], put);
    out
}

/// Boolean run-length encoding: bits from the most significant down,
/// the bytes byte run-length encoded.
pub fn bool_rle(values: impl IntoIterator<Item = bool>) -> Rle {
    let mut bytes = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        if i % 8 == 0 {
            bytes.push(0);
        }
        if v {
            if let Some(last) = bytes.last_mut() {
                *last |= 0x80 >> (i % 8);
            }
        }
    }
    byte_rle(&bytes)
}

/// A timestamp's nanoseconds as the SECONDARY stream holds them: without
/// trailing decimal zeros, the low 3 bits saying how many were dropped
/// (n means n + 1 zeros).
pub fn encode_nanos(nanos: u32) -> u64 {
    if nanos == 0 || !nanos.is_multiple_of(100) {
        return u64::from(nanos) << 3;
    }
    let (mut n, mut zeros) = (nanos / 100, 1);
    while n % 10 == 0 && zeros < 7 {
        n /= 10;
        zeros += 1;
    }
    (u64::from(n) << 3) | zeros
}

/// Seconds relative to [`TIMESTAMP_BASE`] and encoded nanoseconds of a
/// time `secs` (floored) + `nanos` after the Unix epoch. Readers take a
/// second off a negative time whose nanoseconds exceed 999,999 (written
/// rounded towards zero), so such a time is written one second later.
fn timestamp(secs: i64, nanos: u32) -> (i64, u64) {
    let secs = if secs < -1 && nanos > 999_999 {
        secs + 1
    } else {
        secs
    };
    (secs.saturating_sub(TIMESTAMP_BASE), encode_nanos(nanos))
}

// ---------------------------------------------------------------------
// Protocol Buffers
// ---------------------------------------------------------------------

/// A Protocol Buffers message being encoded.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, u128::from((field << 3) | u32::from(wire)));
    }

    fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        self.key(field, 0);
        varint(&mut self.0, u128::from(v));
        self
    }

    fn sint(&mut self, field: u32, v: i64) -> &mut Self {
        self.uint(field, zigzag(v))
    }

    fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.0, v.len() as u128);
        self.0.extend_from_slice(v);
        self
    }

    fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }

    fn packed(&mut self, field: u32, vs: impl IntoIterator<Item = u64>) -> &mut Self {
        let mut body = Vec::new();
        for v in vs {
            varint(&mut body, u128::from(v));
        }
        self.bytes(field, &body)
    }
}

// ---------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------

fn compress(data: &[u8], o: &Options) -> std::io::Result<Vec<u8>> {
    Ok(compress_chunks(data, o)?.0)
}

/// The chunk size compression uses.
fn chunk_size(o: &Options) -> usize {
    o.compression_block_size.clamp(1, MAX_CHUNK)
}

/// `data` compressed, and where each chunk starts in the output.
fn compress_chunks(data: &[u8], o: &Options) -> std::io::Result<(Vec<u8>, Vec<usize>)> {
    if o.compression == Compression::None {
        return Ok((data.to_vec(), Vec::new()));
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 3);
    let mut starts = Vec::new();
    for chunk in data.chunks(chunk_size(o)) {
        starts.push(out.len());
        let packed = match o.compression {
            Compression::Zlib => {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(chunk)?;
                e.finish()?
            }
            _ => snap::raw::Encoder::new()
                .compress_vec(chunk)
                .map_err(std::io::Error::other)?,
        };
        let (header, body) = if packed.len() < chunk.len() {
            (packed.len() << 1, &packed[..])
        } else {
            ((chunk.len() << 1) | 1, chunk)
        };
        out.extend_from_slice(&(header as u32).to_le_bytes()[..3]);
        out.extend_from_slice(body);
    }
    Ok((out, starts))
}

/// A row index position in a stream: the byte offset, or with compression
/// the chunk's start and the offset in the uncompressed chunk; then the
/// numbers that follow.
fn position(at: &(usize, Vec<u64>), packed_len: usize, starts: &[usize], o: &Options) -> Vec<u64> {
    let mut out = if o.compression == Compression::None {
        vec![at.0 as u64]
    } else {
        let size = chunk_size(o);
        match starts.get(at.0 / size) {
            Some(&start) => vec![start as u64, (at.0 % size) as u64],
            None => vec![packed_len as u64, 0],
        }
    };
    out.extend_from_slice(&at.1);
    out
}

// ---------------------------------------------------------------------
// Bloom filters
// ---------------------------------------------------------------------

/// The 64-bit Murmur3 variant ORC hashes bytes (strings, binaries) with:
/// seed 104729, 8-byte little-endian blocks, the tail folded into one
/// more block, the length mixed in, then the 64-bit finalizer.
pub fn murmur3_64(data: &[u8]) -> u64 {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let scramble = |k: u64| k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mut h: u64 = 104_729;
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        h ^= scramble(u64::from_le_bytes(word));
        h = h.rotate_left(27).wrapping_mul(5).wrapping_add(0x52dc_e729);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        h ^= scramble(u64::from_le_bytes(word));
    }
    h ^= data.len() as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Thomas Wang's 64-bit integer hash, as ORC hashes integers, dates,
/// booleans and the bits of doubles (arithmetic shifts, as on a signed
/// long).
pub fn long_hash(v: i64) -> u64 {
    let mut k = (!v).wrapping_add(v << 21);
    k ^= k >> 24;
    k = k.wrapping_add(k << 3).wrapping_add(k << 8);
    k ^= k >> 14;
    k = k.wrapping_add(k << 2).wrapping_add(k << 4);
    k ^= k >> 28;
    k.wrapping_add(k << 31) as u64
}

/// A bloom filter sized for `entries` values at false positive
/// probability `fpp`: whole 64-bit words of bits and k hash functions.
struct Bloom {
    bits: Vec<u64>,
    k: u32,
}

impl Bloom {
    fn new(entries: u64, fpp: f64) -> Bloom {
        let n = entries.max(1) as f64;
        let fpp = if fpp > 0.0 && fpp < 1.0 { fpp } else { 0.05 };
        let ln2 = std::f64::consts::LN_2;
        let m = ((-n * fpp.ln() / (ln2 * ln2)) as u64).max(1);
        let k = ((m as f64 / n * ln2).round() as u32).max(1);
        Bloom {
            bits: vec![0; m.div_ceil(64) as usize],
            k,
        }
    }

    /// Sets the k bits of a hash: its low and high 32-bit halves combined
    /// as low + i * high (i from 1 to k), flipped when negative, modulo
    /// the bit count.
    fn add(&mut self, hash: u64) {
        let m = self.bits.len() as u64 * 64;
        let (low, high) = (hash as i32, (hash >> 32) as i32);
        for i in 1..=self.k as i32 {
            let mut c = low.wrapping_add(i.wrapping_mul(high));
            if c < 0 {
                c = !c;
            }
            let bit = c as u64 % m;
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    fn msg(&self) -> Msg {
        let bytes: Vec<u8> = self.bits.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut m = Msg::default();
        m.uint(1, u64::from(self.k)).bytes(3, &bytes);
        m
    }
}

// ---------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Boolean,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    String,
    Binary,
    Timestamp(TimeUnit),
    Date,
    Decimal(u8, i8),
    List,
    Map,
    Struct(Vec<String>),
}

impl Kind {
    /// The Type.Kind number.
    fn number(&self) -> u64 {
        match self {
            Kind::Boolean => 0,
            Kind::Byte => 1,
            Kind::Short => 2,
            Kind::Int => 3,
            Kind::Long => 4,
            Kind::Float => 5,
            Kind::Double => 6,
            Kind::String => 7,
            Kind::Binary => 8,
            Kind::Timestamp(_) => 9,
            Kind::List => 10,
            Kind::Map => 11,
            Kind::Struct(_) => 12,
            Kind::Decimal(..) => 14,
            Kind::Date => 15,
        }
    }
}

/// Stream.Kind numbers.
const PRESENT: u64 = 0;
const DATA: u64 = 1;
const LENGTH: u64 = 2;
const SECONDARY: u64 = 5;
const ROW_INDEX: u64 = 6;
const BLOOM_FILTER_UTF8: u64 = 8;

/// Column statistics: values (not null), whether a null was seen, and
/// what the column's type keeps of its values.
#[derive(Debug, Clone, Default)]
struct Stats {
    values: u64,
    has_null: bool,
    typed: Typed,
}

/// The longest string kept as a minimum or maximum.
const MAX_STRING_STAT: usize = 1024;

/// Type-specific statistics.
#[derive(Debug, Clone, Default, PartialEq)]
enum Typed {
    #[default]
    None,
    /// Integers: minimum, maximum, sum (`None` once it overflows).
    Int(i64, i64, Option<i64>),
    /// Floats: minimum, maximum, sum; `None` once a NaN was seen.
    Double(Option<(f64, f64, f64)>),
    /// Strings: minimum and maximum (`None` when one is too long to
    /// keep), total length.
    Str(Option<(String, String)>, i64),
    /// Binaries: total length.
    Bin(i64),
    Date(i32, i32),
    /// Booleans: how many are true.
    Bucket(u64),
    /// Lists and maps: fewest, most and total children.
    Collection(u64, u64, u64),
    /// Timestamps: earliest and latest, in milliseconds.
    Timestamp(i64, i64),
    /// Decimals: scale, least and greatest, sum (`None` once it
    /// overflows 38 digits).
    Decimal(i8, i128, i128, Option<i128>),
}

impl Typed {
    fn merge(self, other: Typed) -> Typed {
        use Typed::*;
        match (self, other) {
            (None, x) | (x, None) => x,
            (Int(a, b, s), Int(c, d, t)) => Int(
                a.min(c),
                b.max(d),
                s.zip(t).and_then(|(s, t)| s.checked_add(t)),
            ),
            (Double(x), Double(y)) => Double(
                x.zip(y)
                    .map(|((a, b, s), (c, d, t))| (a.min(c), b.max(d), s + t)),
            ),
            (Str(x, n), Str(y, m)) => Str(
                x.zip(y).map(|((a, b), (c, d))| (a.min(c), b.max(d))),
                n.saturating_add(m),
            ),
            (Bin(n), Bin(m)) => Bin(n.saturating_add(m)),
            (Date(a, b), Date(c, d)) => Date(a.min(c), b.max(d)),
            (Bucket(n), Bucket(m)) => Bucket(n + m),
            (Collection(a, b, n), Collection(c, d, m)) => Collection(a.min(c), b.max(d), n + m),
            (Timestamp(a, b), Timestamp(c, d)) => Timestamp(a.min(c), b.max(d)),
            (Decimal(s, a, b, x), Decimal(_, c, d, y)) => Decimal(
                s,
                a.min(c),
                b.max(d),
                x.zip(y).and_then(|(x, y)| decimal_sum(x, y)),
            ),
            (x, _) => x,
        }
    }

    /// Integers' statistics.
    fn ints(values: &[i64]) -> Typed {
        let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
            return Typed::None;
        };
        let sum = values.iter().try_fold(0i64, |s, &v| s.checked_add(v));
        Typed::Int(min, max, sum)
    }

    fn doubles(values: impl Iterator<Item = f64>) -> Typed {
        let mut acc: Option<(f64, f64, f64)> = None;
        for v in values {
            if v.is_nan() {
                return Typed::Double(None);
            }
            acc = Some(acc.map_or((v, v, v), |(a, b, s)| (a.min(v), b.max(v), s + v)));
        }
        acc.map_or(Typed::None, |a| Typed::Double(Some(a)))
    }
}

/// The sum of two unscaled decimals, while it fits 38 digits.
fn decimal_sum(a: i128, b: i128) -> Option<i128> {
    a.checked_add(b)
        .filter(|s| s.unsigned_abs() < 10u128.pow(38))
}

/// An unscaled decimal as text with `scale` digits after the point.
fn decimal_text(v: i128, scale: i8) -> String {
    let digits = v.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.values += other.values;
        self.has_null |= other.has_null;
        self.typed = std::mem::take(&mut self.typed).merge(other.typed.clone());
    }

    fn msg(&self) -> Msg {
        let mut m = Msg::default();
        m.uint(1, self.values);
        let mut t = Msg::default();
        let field = match &self.typed {
            Typed::None => 0,
            Typed::Int(min, max, sum) => {
                t.sint(1, *min).sint(2, *max);
                if let Some(sum) = sum {
                    t.sint(3, *sum);
                }
                2
            }
            Typed::Double(d) => {
                if let Some((min, max, sum)) = d {
                    t.double(1, *min).double(2, *max).double(3, *sum);
                }
                3
            }
            Typed::Str(range, sum) => {
                if let Some((min, max)) = range {
                    t.bytes(1, min.as_bytes()).bytes(2, max.as_bytes());
                }
                t.sint(3, *sum);
                4
            }
            Typed::Bucket(trues) => {
                t.packed(1, [*trues]);
                5
            }
            Typed::Date(min, max) => {
                t.sint(1, i64::from(*min)).sint(2, i64::from(*max));
                7
            }
            Typed::Bin(sum) => {
                t.sint(1, *sum);
                8
            }
            Typed::Collection(min, max, total) => {
                t.uint(1, *min).uint(2, *max).uint(3, *total);
                12
            }
            Typed::Timestamp(min, max) => {
                // Local and UTC bounds alike: the writer's time zone is UTC.
                t.sint(1, *min).sint(2, *max).sint(3, *min).sint(4, *max);
                9
            }
            Typed::Decimal(scale, min, max, sum) => {
                t.bytes(1, decimal_text(*min, *scale).as_bytes())
                    .bytes(2, decimal_text(*max, *scale).as_bytes());
                if let Some(sum) = sum {
                    t.bytes(3, decimal_text(*sum, *scale).as_bytes());
                }
                6
            }
        };
        if field != 0 && self.values > 0 {
            m.msg(field, &t);
        }
        m.uint(10, u64::from(self.has_null));
        m
    }
}

/// Where a column's buffers stood when a row group started.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    present: usize,
    ints: usize,
    lengths: usize,
    secondary: usize,
    bytes: usize,
    wide: usize,
}

/// One stream of a stripe, uncompressed, with its position at each row
/// group's start: a byte offset and the numbers that follow it (values
/// into a run, bits into a byte).
struct Stream {
    kind: u64,
    bytes: Vec<u8>,
    at: Vec<(usize, Vec<u64>)>,
}

/// One column of the type tree with the values buffered for the stripe
/// being built.
struct Column {
    id: u32,
    kind: Kind,
    children: Vec<Column>,
    present: Vec<bool>,
    /// DATA integers (booleans and bytes too), or timestamp seconds.
    ints: Vec<i64>,
    /// LENGTH values.
    lengths: Vec<i64>,
    /// SECONDARY values: encoded nanoseconds or decimal scales.
    secondary: Vec<i64>,
    /// For statistics: timestamps in milliseconds (floored), decimals
    /// unscaled.
    wide: Vec<i128>,
    /// DATA bytes: floats, strings, binaries, decimal varints.
    bytes: Vec<u8>,
    /// Where each row group of the stripe starts.
    marks: Vec<Mark>,
    /// Whether the column has bloom filters.
    bloom: bool,
    stripe: Stats,
    file: Stats,
}

fn unsupported(t: &DataType) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("ORC output has no column type for {t}"),
    )
}

impl Column {
    fn new(t: &DataType, next: &mut u32) -> std::io::Result<Column> {
        let id = *next;
        *next += 1;
        let (kind, children) = match t {
            DataType::Boolean => (Kind::Boolean, vec![]),
            DataType::Int8 => (Kind::Byte, vec![]),
            DataType::Int16 => (Kind::Short, vec![]),
            DataType::Int32 => (Kind::Int, vec![]),
            DataType::Int64 => (Kind::Long, vec![]),
            DataType::Float32 => (Kind::Float, vec![]),
            DataType::Float64 => (Kind::Double, vec![]),
            DataType::Utf8 => (Kind::String, vec![]),
            DataType::Binary => (Kind::Binary, vec![]),
            DataType::Date32 => (Kind::Date, vec![]),
            DataType::Timestamp(unit, _) => (Kind::Timestamp(*unit), vec![]),
            DataType::Decimal128(p, s) if *s >= 0 => (Kind::Decimal(*p, *s), vec![]),
            DataType::List(f) => (Kind::List, vec![Column::new(f.data_type(), next)?]),
            DataType::Map(f, _) => match f.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => (
                    Kind::Map,
                    vec![
                        Column::new(kv[0].data_type(), next)?,
                        Column::new(kv[1].data_type(), next)?,
                    ],
                ),
                _ => return Err(unsupported(t)),
            },
            DataType::Struct(fields) => (
                Kind::Struct(fields.iter().map(|f| f.name().clone()).collect()),
                fields
                    .iter()
                    .map(|f| Column::new(f.data_type(), next))
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(unsupported(other)),
        };
        Ok(Column {
            id,
            kind,
            children,
            present: Vec::new(),
            ints: Vec::new(),
            lengths: Vec::new(),
            secondary: Vec::new(),
            wide: Vec::new(),
            bytes: Vec::new(),
            marks: Vec::new(),
            bloom: false,
            stripe: Stats::default(),
            file: Stats::default(),
        })
    }

    /// The columns of the subtree, in pre-order.
    fn walk<'a>(&'a self, out: &mut Vec<&'a Column>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }

    fn walk_mut(&mut self, f: &mut impl FnMut(&mut Column)) {
        f(self);
        for c in &mut self.children {
            c.walk_mut(f);
        }
    }

    /// Bytes buffered for the stripe (an estimate of its encoded size).
    fn buffered(&self) -> usize {
        self.present.len() / 8
            + 8 * (self.ints.len() + self.lengths.len() + self.secondary.len())
            + 16 * self.wide.len()
            + self.bytes.len()
            + self.children.iter().map(Column::buffered).sum::<usize>()
    }

    /// Appends `rows` of `array` (an array of this column's type).
    fn append(&mut self, array: &dyn Array, rows: &[usize]) -> std::io::Result<()> {
        let valid: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| array.is_valid(r))
            .collect();
        self.present.extend(rows.iter().map(|&r| array.is_valid(r)));
        self.stripe.add(&Stats {
            values: valid.len() as u64,
            has_null: valid.len() < rows.len(),
            typed: Typed::None,
        });
        let wrong = || unsupported(array.data_type());
        macro_rules! ints {
            ($t:ty) => {{
                let a = array.as_primitive_opt::<$t>().ok_or_else(wrong)?;
                self.ints
                    .extend(valid.iter().map(|&r| i64::from(a.value(r))));
            }};
        }
        macro_rules! times {
            ($t:ty, $per_sec:expr) => {{
                let a = array.as_primitive_opt::<$t>().ok_or_else(wrong)?;
                for &r in &valid {
                    let v = a.value(r);
                    let nanos = v.rem_euclid($per_sec) * (1_000_000_000 / $per_sec);
                    let (s, n) = timestamp(v.div_euclid($per_sec), nanos as u32);
                    self.ints.push(s);
                    self.secondary.push(n as i64);
                    let ms = i128::from(v) * 1000 / $per_sec;
                    self.wide
                        .push(ms - i128::from(ms * $per_sec > i128::from(v) * 1000));
                }
            }};
        }
        match &self.kind {
            Kind::Boolean => {
                let a = array.as_boolean_opt().ok_or_else(wrong)?;
                self.ints
                    .extend(valid.iter().map(|&r| i64::from(a.value(r))));
            }
            Kind::Byte => ints!(Int8Type),
            Kind::Short => ints!(Int16Type),
            Kind::Int => ints!(Int32Type),
            Kind::Long => ints!(Int64Type),
            Kind::Date => ints!(Date32Type),
            Kind::Float => {
                let a = array.as_primitive_opt::<Float32Type>().ok_or_else(wrong)?;
                for &r in &valid {
                    self.bytes.extend_from_slice(&a.value(r).to_le_bytes());
                }
            }
            Kind::Double => {
                let a = array.as_primitive_opt::<Float64Type>().ok_or_else(wrong)?;
                for &r in &valid {
                    self.bytes.extend_from_slice(&a.value(r).to_le_bytes());
                }
            }
            Kind::String => {
                let a = array.as_string_opt::<i32>().ok_or_else(wrong)?;
                for &r in &valid {
                    self.bytes.extend_from_slice(a.value(r).as_bytes());
                    self.lengths.push(a.value(r).len() as i64);
                }
            }
            Kind::Binary => {
                let a = array.as_binary_opt::<i32>().ok_or_else(wrong)?;
                for &r in &valid {
                    self.bytes.extend_from_slice(a.value(r));
                    self.lengths.push(a.value(r).len() as i64);
                }
            }
            Kind::Timestamp(TimeUnit::Second) => times!(TimestampSecondType, 1),
            Kind::Timestamp(TimeUnit::Millisecond) => times!(TimestampMillisecondType, 1_000),
            Kind::Timestamp(TimeUnit::Microsecond) => {
                times!(TimestampMicrosecondType, 1_000_000)
            }
            Kind::Timestamp(TimeUnit::Nanosecond) => {
                times!(TimestampNanosecondType, 1_000_000_000)
            }
            Kind::Decimal(_, scale) => {
                let a = array
                    .as_primitive_opt::<Decimal128Type>()
                    .ok_or_else(wrong)?;
                for &r in &valid {
                    varint(&mut self.bytes, zigzag128(a.value(r)));
                    self.secondary.push(i64::from(*scale));
                    self.wide.push(a.value(r));
                }
            }
            Kind::List => {
                let a = array.as_list_opt::<i32>().ok_or_else(wrong)?;
                let offsets = a.value_offsets();
                let items = self.spans(offsets, &valid);
                self.children[0].append(a.values().as_ref(), &items)?;
            }
            Kind::Map => {
                let a = array.as_map_opt().ok_or_else(wrong)?;
                let items = self.spans(a.value_offsets(), &valid);
                let entries = a.entries();
                self.children[0].append(entries.column(0).as_ref(), &items)?;
                self.children[1].append(entries.column(1).as_ref(), &items)?;
            }
            Kind::Struct(_) => {
                let a = array.as_struct_opt().ok_or_else(wrong)?;
                for (child, field) in self.children.iter_mut().zip(a.columns()) {
                    child.append(field.as_ref(), &valid)?;
                }
            }
        }
        Ok(())
    }

    /// Records the LENGTH of each row's span of `offsets` and returns the
    /// child rows the spans cover.
    fn spans(&mut self, offsets: &[i32], rows: &[usize]) -> Vec<usize> {
        let mut items = Vec::new();
        for &r in rows {
            let (from, to) = (offsets[r] as usize, offsets[r + 1] as usize);
            self.lengths.push((to - from) as i64);
            items.extend(from..to);
        }
        items
    }

    /// Where the buffers stand: the start of a row group.
    fn mark(&self) -> Mark {
        Mark {
            present: self.present.len(),
            ints: self.ints.len(),
            lengths: self.lengths.len(),
            secondary: self.secondary.len(),
            wide: self.wide.len(),
            bytes: self.bytes.len(),
        }
    }

    /// The statistics of the values buffered between two marks.
    fn stats(&self, from: Mark, to: Mark) -> Stats {
        let present = &self.present[from.present..to.present];
        Stats {
            values: present.iter().filter(|p| **p).count() as u64,
            has_null: present.contains(&false),
            typed: self.typed_stats(from, to),
        }
    }

    /// The type-specific statistics of the values buffered between two
    /// marks.
    fn typed_stats(&self, from: Mark, to: Mark) -> Typed {
        let ints = &self.ints[from.ints..to.ints];
        let bytes = &self.bytes[from.bytes..to.bytes];
        let lengths = &self.lengths[from.lengths..to.lengths];
        match &self.kind {
            Kind::Byte | Kind::Short | Kind::Int | Kind::Long => Typed::ints(ints),
            Kind::Date => match Typed::ints(ints) {
                Typed::Int(min, max, _) => Typed::Date(min as i32, max as i32),
                other => other,
            },
            Kind::Boolean => Typed::Bucket(ints.iter().filter(|&&v| v != 0).count() as u64),
            Kind::Float => Typed::doubles(
                bytes
                    .chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
            Kind::Double => Typed::doubles(
                bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default())),
            ),
            Kind::String if !lengths.is_empty() => {
                let mut at = 0;
                let mut range: Option<(&[u8], &[u8])> = None;
                for &len in lengths {
                    let v = bytes.get(at..at + len as usize).unwrap_or_default();
                    at += len as usize;
                    range = Some(range.map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
                }
                let keep = range.filter(|(a, b)| a.len().max(b.len()) <= MAX_STRING_STAT);
                Typed::Str(
                    keep.map(|(a, b)| {
                        (
                            String::from_utf8_lossy(a).into_owned(),
                            String::from_utf8_lossy(b).into_owned(),
                        )
                    }),
                    bytes.len() as i64,
                )
            }
            Kind::Binary => Typed::Bin(bytes.len() as i64),
            Kind::Timestamp(_) => {
                let wide = &self.wide[from.wide..to.wide];
                match (wide.iter().min(), wide.iter().max()) {
                    (Some(&a), Some(&b)) => Typed::Timestamp(
                        a.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                        b.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                    ),
                    _ => Typed::None,
                }
            }
            Kind::Decimal(_, scale) => {
                let wide = &self.wide[from.wide..to.wide];
                match (wide.iter().min(), wide.iter().max()) {
                    (Some(&a), Some(&b)) => {
                        let sum = wide.iter().try_fold(0i128, |s, &v| decimal_sum(s, v));
                        Typed::Decimal(*scale, a, b, sum)
                    }
                    _ => Typed::None,
                }
            }
            Kind::List | Kind::Map if !lengths.is_empty() => {
                let (min, max) = (lengths.iter().min(), lengths.iter().max());
                let total: i64 = lengths.iter().sum();
                Typed::Collection(
                    min.copied().unwrap_or(0) as u64,
                    max.copied().unwrap_or(0) as u64,
                    total as u64,
                )
            }
            _ => Typed::None,
        }
    }

    /// The bloom filter of the values buffered between two marks.
    fn bloom_filter(&self, from: Mark, to: Mark, o: &Options) -> Bloom {
        let mut b = Bloom::new(u64::from(o.row_index_stride), o.bloom_filter_fpp);
        let bytes = &self.bytes[from.bytes..to.bytes];
        match &self.kind {
            Kind::Float => {
                for v in bytes.chunks_exact(4) {
                    let f = f64::from(f32::from_le_bytes([v[0], v[1], v[2], v[3]]));
                    b.add(long_hash(f.to_bits() as i64));
                }
            }
            Kind::Double => {
                for v in bytes.chunks_exact(8) {
                    let f = f64::from_le_bytes(v.try_into().unwrap_or_default());
                    b.add(long_hash(f.to_bits() as i64));
                }
            }
            Kind::String | Kind::Binary => {
                let mut at = 0;
                for &len in &self.lengths[from.lengths..to.lengths] {
                    b.add(murmur3_64(
                        bytes.get(at..at + len as usize).unwrap_or_default(),
                    ));
                    at += len as usize;
                }
            }
            _ => {
                for &v in &self.ints[from.ints..to.ints] {
                    b.add(long_hash(v));
                }
            }
        }
        b
    }

    /// This column's streams for the stripe, each with its position at
    /// every row group's start.
    fn streams(&self, root: bool) -> Vec<Stream> {
        let marks = &self.marks;
        // A run-length stream: the group's offset and the values into it.
        let rle = |kind, rle: Rle, k: fn(&Mark) -> usize| Stream {
            at: marks
                .iter()
                .map(|m| {
                    let (offset, n) = rle.at(k(m));
                    (offset, vec![n])
                })
                .collect(),
            kind,
            bytes: rle.bytes,
        };
        // A boolean stream: the byte's position and the bits into it.
        let bits = |kind, values: &mut dyn Iterator<Item = bool>, k: fn(&Mark) -> usize| {
            let rle = bool_rle(values);
            Stream {
                at: marks
                    .iter()
                    .map(|m| {
                        let (offset, n) = rle.at(k(m) / 8);
                        (offset, vec![n, (k(m) % 8) as u64])
                    })
                    .collect(),
                kind,
                bytes: rle.bytes,
            }
        };
        // A stream of plain bytes: the byte offset.
        let raw = |kind, bytes: &[u8]| Stream {
            kind,
            bytes: bytes.to_vec(),
            at: marks.iter().map(|m| (m.bytes, vec![])).collect(),
        };
        let mut out = Vec::new();
        if !root && self.present.contains(&false) {
            out.push(bits(PRESENT, &mut self.present.iter().copied(), |m| {
                m.present
            }));
        }
        match &self.kind {
            Kind::Boolean => out.push(bits(DATA, &mut self.ints.iter().map(|&v| v != 0), |m| {
                m.ints
            })),
            Kind::Byte => {
                let bytes: Vec<u8> = self.ints.iter().map(|&v| v as u8).collect();
                out.push(rle(DATA, byte_rle(&bytes), |m| m.ints));
            }
            Kind::Short | Kind::Int | Kind::Long | Kind::Date => {
                out.push(rle(DATA, int_rle(&self.ints, true), |m| m.ints))
            }
            Kind::Float | Kind::Double => out.push(raw(DATA, &self.bytes)),
            Kind::String | Kind::Binary => {
                out.push(raw(DATA, &self.bytes));
                out.push(rle(LENGTH, int_rle(&self.lengths, false), |m| m.lengths));
            }
            Kind::Timestamp(_) => {
                out.push(rle(DATA, int_rle(&self.ints, true), |m| m.ints));
                out.push(rle(SECONDARY, int_rle(&self.secondary, false), |m| {
                    m.secondary
                }));
            }
            Kind::Decimal(..) => {
                out.push(raw(DATA, &self.bytes));
                out.push(rle(SECONDARY, int_rle(&self.secondary, true), |m| {
                    m.secondary
                }));
            }
            Kind::List | Kind::Map => {
                out.push(rle(LENGTH, int_rle(&self.lengths, false), |m| m.lengths))
            }
            Kind::Struct(_) => {}
        }
        out
    }

    fn type_msg(&self) -> Msg {
        let mut m = Msg::default();
        m.uint(1, self.kind.number());
        if !self.children.is_empty() {
            m.packed(2, self.children.iter().map(|c| u64::from(c.id)));
        }
        if let Kind::Struct(names) = &self.kind {
            for n in names {
                m.bytes(3, n.as_bytes());
            }
        }
        if let Kind::Decimal(p, s) = self.kind {
            m.uint(5, u64::from(p)).uint(6, s as u64);
        }
        m
    }
}

// ---------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------

struct Writer<'a> {
    o: &'a Options,
    root: Column,
    out: Vec<u8>,
    /// StripeInformation messages.
    stripes: Vec<Msg>,
    /// Each stripe's column statistics.
    stripe_stats: Vec<Msg>,
    rows: u64,
    stripe_rows: u64,
    timestamps: bool,
}

impl Writer<'_> {
    fn flush_stripe(&mut self) -> std::io::Result<()> {
        if self.stripe_rows == 0 {
            return Ok(());
        }
        self.root.walk_mut(&mut |c| {
            c.stripe.typed = c.typed_stats(Mark::default(), c.mark());
        });
        let o = self.o;
        let mut index = Vec::new();
        let mut data = Vec::new();
        // Stream messages: the index streams' first, as they come first.
        let mut index_streams = Vec::new();
        let mut data_streams = Vec::new();
        let stream = |kind: u64, column: u32, len: usize| {
            let mut s = Msg::default();
            s.uint(1, kind)
                .uint(2, u64::from(column))
                .uint(3, len as u64);
            s
        };
        let mut columns = Vec::new();
        self.root.walk(&mut columns);
        for c in &columns {
            let mut entries: Vec<Vec<u64>> = vec![Vec::new(); c.marks.len()];
            for st in c.streams(c.id == 0) {
                let (packed, starts) = compress_chunks(&st.bytes, o)?;
                for (entry, at) in entries.iter_mut().zip(&st.at) {
                    entry.extend(position(at, packed.len(), &starts, o));
                }
                data_streams.push(stream(st.kind, c.id, packed.len()));
                data.extend_from_slice(&packed);
            }
            if !c.marks.is_empty() {
                let mut row_index = Msg::default();
                let ends = c.marks.iter().skip(1).copied().chain([c.mark()]);
                for ((positions, from), to) in entries.into_iter().zip(&c.marks).zip(ends) {
                    let mut entry = Msg::default();
                    entry.packed(1, positions).msg(2, &c.stats(*from, to).msg());
                    row_index.msg(1, &entry);
                }
                let packed = compress(&row_index.0, o)?;
                index_streams.push(stream(ROW_INDEX, c.id, packed.len()));
                index.extend_from_slice(&packed);
                if c.bloom {
                    let mut filters = Msg::default();
                    let ends = c.marks.iter().skip(1).copied().chain([c.mark()]);
                    for (from, to) in c.marks.iter().zip(ends) {
                        filters.msg(1, &c.bloom_filter(*from, to, o).msg());
                    }
                    let packed = compress(&filters.0, o)?;
                    index_streams.push(stream(BLOOM_FILTER_UTF8, c.id, packed.len()));
                    index.extend_from_slice(&packed);
                }
            }
        }
        let mut footer = Msg::default();
        for s in index_streams.iter().chain(&data_streams) {
            footer.msg(1, s);
        }
        let mut stats = Msg::default();
        for c in &columns {
            // Every column DIRECT (version 1 run-length encoding); bloom
            // filters in the UTF-8 encoding with UTC timestamps (1).
            let mut encoding = Msg::default();
            encoding.uint(1, 0);
            if c.bloom && !c.marks.is_empty() {
                encoding.uint(3, 1);
            }
            footer.msg(2, &encoding);
            stats.msg(1, &c.stripe.msg());
        }
        if self.timestamps {
            footer.bytes(3, b"UTC");
        }
        let footer = compress(&footer.0, o)?;
        self.pad((index.len() + data.len() + footer.len()) as u64);
        let mut info = Msg::default();
        info.uint(1, self.out.len() as u64)
            .uint(2, index.len() as u64)
            .uint(3, data.len() as u64)
            .uint(4, footer.len() as u64)
            .uint(5, self.stripe_rows);
        self.out.extend_from_slice(&index);
        self.out.extend_from_slice(&data);
        self.out.extend_from_slice(&footer);
        self.stripes.push(info);
        self.stripe_stats.push(stats);
        self.root.walk_mut(&mut |c| {
            c.file.add(&c.stripe);
            c.stripe = Stats::default();
            c.present.clear();
            c.ints.clear();
            c.lengths.clear();
            c.secondary.clear();
            c.wide.clear();
            c.bytes.clear();
            c.marks.clear();
        });
        self.stripe_rows = 0;
        Ok(())
    }

    /// With padding on, fills the rest of the block with zeros when a
    /// stripe of `len` bytes would straddle its end and the space left is
    /// within the tolerance.
    fn pad(&mut self, len: u64) {
        let Some(tolerance) = self.o.padding_tolerance else {
            return;
        };
        let block = self.o.block_size.max(1);
        let left = block - self.out.len() as u64 % block;
        if len < block && len > left && (left as f64) <= tolerance * self.o.stripe_size as f64 {
            self.out.resize(self.out.len() + left as usize, 0);
        }
    }

    fn finish(mut self) -> std::io::Result<Vec<u8>> {
        self.flush_stripe()?;
        let mut metadata = Msg::default();
        for s in &self.stripe_stats {
            metadata.msg(1, s);
        }
        let mut columns = Vec::new();
        self.root.walk(&mut columns);
        let mut footer = Msg::default();
        footer.uint(1, 3).uint(2, self.out.len() as u64 - 3);
        for s in &self.stripes {
            footer.msg(3, s);
        }
        for c in &columns {
            footer.msg(4, &c.type_msg());
        }
        footer.uint(6, self.rows);
        for c in &columns {
            footer.msg(7, &c.file.msg());
        }
        footer.uint(8, u64::from(self.o.row_index_stride));
        let metadata = compress(&metadata.0, self.o)?;
        let footer = compress(&footer.0, self.o)?;
        let mut ps = Msg::default();
        ps.uint(1, footer.len() as u64)
            .uint(
                2,
                match self.o.compression {
                    Compression::None => 0,
                    Compression::Zlib => 1,
                    Compression::Snappy => 2,
                },
            )
            .uint(3, chunk_size(self.o) as u64)
            .packed(4, self.o.version.map(u64::from))
            .uint(5, metadata.len() as u64)
            .uint(6, WRITER_VERSION)
            .bytes(8000, b"ORC");
        let mut out = self.out;
        out.extend_from_slice(&metadata);
        out.extend_from_slice(&footer);
        out.extend_from_slice(&ps.0);
        out.push(ps.0.len() as u8);
        Ok(out)
    }
}

/// `batch` as an ORC file.
pub fn write(batch: &RecordBatch, o: &Options) -> std::io::Result<Vec<u8>> {
    let mut next = 0;
    let root = Column::new(
        &DataType::Struct(batch.schema().fields().clone()),
        &mut next,
    )?;
    let mut root = root;
    for (c, field) in root.children.iter_mut().zip(batch.schema().fields().iter()) {
        c.bloom = o
            .bloom_filter_columns
            .contains(&field.name().to_lowercase())
            && !matches!(
                c.kind,
                Kind::Decimal(..) | Kind::Timestamp(_) | Kind::List | Kind::Map | Kind::Struct(_)
            );
    }
    let mut columns = Vec::new();
    root.walk(&mut columns);
    let timestamps = columns.iter().any(|c| matches!(c.kind, Kind::Timestamp(_)));
    let mut w = Writer {
        o,
        root,
        out: b"ORC".to_vec(),
        stripes: Vec::new(),
        stripe_stats: Vec::new(),
        rows: 0,
        stripe_rows: 0,
        timestamps,
    };
    let stride = o.row_index_stride as u64;
    let mut at = 0;
    while at < batch.num_rows() {
        let mut n = ROWS_PER_CHECK.min(batch.num_rows() - at);
        if stride > 0 {
            let into = w.stripe_rows % stride;
            if into == 0 {
                w.root.walk_mut(&mut |c| c.marks.push(c.mark()));
            }
            n = n.min((stride - into) as usize);
        }
        let rows: Vec<usize> = (at..at + n).collect();
        w.root.present.extend(std::iter::repeat_n(true, n));
        w.root.stripe.values += n as u64;
        for (child, array) in w.root.children.iter_mut().zip(batch.columns()) {
            child.append(array.as_ref(), &rows)?;
        }
        at += n;
        w.rows += n as u64;
        w.stripe_rows += n as u64;
        if w.root.buffered() >= o.stripe_size.max(1) {
            w.flush_stripe()?;
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{
        BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
        Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, ListBuilder,
        MapBuilder, StringBuilder, TimestampMillisecondBuilder,
    };
    use arrow_array::{ArrayRef, StructArray};
    use arrow_buffer::NullBuffer;
    use arrow_schema::{Field, Fields, Schema};
    use bytes::Bytes;
    use serde_json::{json, Value as Json};

    use super::*;

    fn int_rle_bytes(values: &[i64], signed: bool) -> Vec<u8> {
        int_rle(values, signed).bytes
    }

    fn byte_rle_bytes(values: &[u8]) -> Vec<u8> {
        byte_rle(values).bytes
    }

    fn bool_rle_bytes(values: impl IntoIterator<Item = bool>) -> Vec<u8> {
        bool_rle(values).bytes
    }

    #[test]
    fn varints_match_the_specification() {
        for (v, want) in [
            (0u128, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (129, &[0x81, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (16_385, &[0x81, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out, want, "{v}");
        }
        let zz: Vec<u64> = [0, -1, 1, -2, 2].into_iter().map(zigzag).collect();
        assert_eq!(zz, [0, 1, 2, 3, 4]);
        assert_eq!(zigzag128(-1), 1);
        assert_eq!(zigzag128(i128::MAX), u128::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn integer_rle_v1_matches_the_specification() {
        assert_eq!(int_rle_bytes(&[7; 100], false), [0x61, 0x00, 0x07]);
        let down: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(int_rle_bytes(&down, false), [0x61, 0xff, 0x64]);
        assert_eq!(
            int_rle_bytes(&[2, 3, 6, 7, 11], false),
            [0xfb, 0x02, 0x03, 0x06, 0x07, 0x0b]
        );
        // Signed values are zigzag encoded; deltas stay signed bytes.
        assert_eq!(int_rle_bytes(&[-1, -1, -1], true), [0x00, 0x00, 0x01]);
        assert_eq!(int_rle_bytes(&[-2, 5], true), [0xfe, 0x03, 0x0a]);
        // Literals around a run, runs longer than 130 split.
        assert_eq!(
            int_rle_bytes(&[1, 9, 5, 5, 5, 5, 0], false),
            [0xfe, 0x01, 0x09, 0x01, 0x00, 0x05, 0xff, 0x00]
        );
        assert_eq!(
            int_rle_bytes(&[3; 131], false),
            [0x7f, 0x00, 0x03, 0xff, 0x03]
        );
        // A delta past a signed byte is not a run; huge deltas do not overflow.
        assert_eq!(int_rle_bytes(&[0, 200, 400], false)[0], 0xfd);
        assert_eq!(
            int_rle_bytes(&[i64::MIN, i64::MAX, i64::MIN], true)[0],
            0xfd
        );
        assert!(int_rle_bytes(&[], true).is_empty());
        // 129 literals: a group of 128 and one of 1.
        let lits: Vec<i64> = (0..129).map(|i| i * 1000 % 7919).collect();
        let out = int_rle_bytes(&lits, false);
        assert_eq!(out[0], 0x80);
        assert!(out
            .windows(2)
            .any(|w| w == [0xff, (128_000 % 7919) as u8 & 0x7f | 0x80]));
    }

    #[test]
    fn positions_name_a_group_and_the_values_into_it() {
        // [lit 1, 9] [run 5 x4] [lit 0]
        let r = int_rle(&[1, 9, 5, 5, 5, 5, 0], false);
        let at: Vec<(usize, u64)> = (0..8).map(|k| r.at(k)).collect();
        assert_eq!(
            at,
            [
                (0, 0),
                (0, 1),
                (3, 0),
                (3, 1),
                (3, 2),
                (3, 3),
                (6, 0),
                (8, 0)
            ]
        );
        // 200 literals: the second group starts at value 128.
        let lits: Vec<u8> = (0..200).map(|i| (i * 7 % 256) as u8).collect();
        let r = byte_rle(&lits);
        assert_eq!(
            (r.at(127), r.at(128), r.at(130)),
            ((0, 127), (129, 0), (129, 2))
        );
        assert_eq!(Rle::default().at(0), (0, 0));
        // Uncompressed: the offset; compressed: the chunk's start and the
        // offset into the chunk; the run-length numbers follow.
        let o = |compression| Options {
            compression,
            compression_block_size: 100,
            ..Options::default()
        };
        let at = (250, vec![3]);
        assert_eq!(position(&at, 0, &[], &o(Compression::None)), [250, 3]);
        let starts = [0, 40, 90];
        assert_eq!(
            position(&at, 120, &starts, &o(Compression::Zlib)),
            [90, 50, 3]
        );
        let end = (300, vec![0]);
        assert_eq!(
            position(&end, 120, &starts, &o(Compression::Snappy)),
            [120, 0, 0]
        );
    }

    #[test]
    fn decimals_as_text() {
        assert_eq!(decimal_text(0, 0), "0");
        assert_eq!(decimal_text(-5, 0), "-5");
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(-123456, 2), "-1234.56");
        assert_eq!(
            decimal_text(i128::MIN, 38),
            "-1.70141183460469231731687303715884105728"
        );
        assert_eq!(decimal_sum(10i128.pow(38) - 1, 1), None);
        assert_eq!(decimal_sum(-5, 3), Some(-2));
    }

    #[test]
    fn bloom_filters_answer_as_orc_rust_reads_them() {
        let mut b = Bloom::new(1000, 0.01);
        // m = 1000 * ln(100) / ln(2)^2 = 9585 bits, in 150 words; k = 7.
        assert_eq!((b.bits.len(), b.k), (150, 7));
        let words: Vec<String> = (0..1000).map(|i| format!("value-{i}")).collect();
        for w in &words {
            b.add(murmur3_64(w.as_bytes()));
        }
        let mut bitset = Vec::new();
        for w in &b.bits {
            bitset.extend_from_slice(&w.to_le_bytes());
        }
        let proto = orc_rust::proto::BloomFilter {
            num_hash_functions: Some(b.k),
            bitset: vec![],
            utf8bitset: Some(bitset),
        };
        let read = orc_rust::bloom_filter::BloomFilter::try_from_proto(&proto).unwrap();
        assert!(words.iter().all(|w| read.might_contain(w.as_bytes())));
        let misses = (1000..11_000)
            .filter(|i| read.might_contain(format!("value-{i}").as_bytes()))
            .count();
        assert!(misses < 200, "{misses}");
        // Short and block-sized inputs take the tail and block paths.
        assert_ne!(murmur3_64(b""), murmur3_64(b"\0"));
        assert_ne!(murmur3_64(b"12345678"), murmur3_64(b"1234567"));
        assert_ne!(long_hash(0), long_hash(1));
    }

    #[test]
    fn byte_and_boolean_rle_match_the_specification() {
        assert_eq!(byte_rle_bytes(&[0; 100]), [0x61, 0x00]);
        assert_eq!(byte_rle_bytes(&[0x44, 0x45]), [0xfe, 0x44, 0x45]);
        let mut bits = vec![true];
        bits.extend([false; 7]);
        assert_eq!(bool_rle_bytes(bits), [0xff, 0x80]);
        // Nine values: the last byte is padded with zero bits.
        assert_eq!(bool_rle_bytes([true; 9]), [0xfe, 0xff, 0x80]);
        assert_eq!(bool_rle_bytes([false; 100 * 8]), [0x61, 0x00]);
    }

    #[test]
    fn nanoseconds_drop_their_trailing_zeros() {
        assert_eq!(encode_nanos(0), 0);
        assert_eq!(encode_nanos(1), 8);
        assert_eq!(encode_nanos(10), 80);
        assert_eq!(encode_nanos(100), (1 << 3) | 1);
        assert_eq!(encode_nanos(123_000_000), (123 << 3) | 5);
        assert_eq!(encode_nanos(500_000_000), (5 << 3) | 7);
        assert_eq!(encode_nanos(999_999_999), 999_999_999 << 3);
        assert_eq!(timestamp(TIMESTAMP_BASE, 0), (0, 0));
        assert_eq!(timestamp(0, 0), (-TIMESTAMP_BASE, 0));
        assert_eq!(timestamp(-2, 500_000_000).0, -1 - TIMESTAMP_BASE);
    }

    #[test]
    fn compressed_chunks_have_headers() {
        let o = |compression| Options {
            compression,
            compression_block_size: 1000,
            ..Options::default()
        };
        let data = vec![7u8; 2500];
        assert_eq!(compress(&data, &o(Compression::None)).unwrap(), data);
        for c in [Compression::Zlib, Compression::Snappy] {
            let out = compress(&data, &o(c)).unwrap();
            let mut at = 0;
            let mut plain = Vec::new();
            while at < out.len() {
                let h = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], 0]) as usize;
                let (len, original) = (h >> 1, h & 1 == 1);
                let body = &out[at + 3..at + 3 + len];
                assert!(!original);
                plain.extend(match c {
                    Compression::Zlib => {
                        let mut d = flate2::read::DeflateDecoder::new(body);
                        let mut v = Vec::new();
                        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
                        v
                    }
                    _ => snap::raw::Decoder::new().decompress_vec(body).unwrap(),
                });
                at += 3 + len;
            }
            assert_eq!(plain, data);
        }
        // Data that does not shrink is stored as it is.
        let out = compress(&[1, 2, 3], &o(Compression::Snappy)).unwrap();
        assert_eq!(out, [(3 << 1) | 1, 0, 0, 1, 2, 3]);
    }

    /// One value of an array as JSON, whatever its field names and time
    /// unit.
    fn value(a: &dyn Array, i: usize) -> Json {
        if a.is_null(i) {
            return Json::Null;
        }
        match a.data_type() {
            DataType::Boolean => json!(a.as_boolean().value(i)),
            DataType::Int8 => json!(a.as_primitive::<Int8Type>().value(i)),
            DataType::Int16 => json!(a.as_primitive::<Int16Type>().value(i)),
            DataType::Int32 => json!(a.as_primitive::<Int32Type>().value(i)),
            DataType::Int64 => json!(a.as_primitive::<Int64Type>().value(i)),
            DataType::Float32 => json!(a.as_primitive::<Float32Type>().value(i)),
            DataType::Float64 => json!(a.as_primitive::<Float64Type>().value(i)),
            DataType::Utf8 => json!(a.as_string::<i32>().value(i)),
            DataType::Binary => json!(a.as_binary::<i32>().value(i)),
            DataType::Date32 => json!(a.as_primitive::<Date32Type>().value(i)),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                json!(a.as_primitive::<TimestampMillisecondType>().value(i) as i128 * 1_000_000)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                json!(a.as_primitive::<TimestampNanosecondType>().value(i) as i128)
            }
            DataType::Decimal128(_, s) => json!(format!(
                "{}e-{s}",
                a.as_primitive::<Decimal128Type>().value(i)
            )),
            DataType::List(_) => {
                let l = a.as_list::<i32>().value(i);
                Json::Array((0..l.len()).map(|j| value(&l, j)).collect())
            }
            DataType::Map(..) => {
                let m = a.as_map();
                let (from, to) = (m.value_offsets()[i], m.value_offsets()[i + 1]);
                let e = m.entries();
                Json::Array(
                    (from as usize..to as usize)
                        .map(|j| json!([value(e.column(0), j), value(e.column(1), j)]))
                        .collect(),
                )
            }
            DataType::Struct(_) => {
                let s = a.as_struct();
                Json::Array(s.columns().iter().map(|c| value(c, i)).collect())
            }
            other => panic!("{other}"),
        }
    }

    fn rows(b: &RecordBatch) -> Vec<Json> {
        (0..b.num_rows())
            .map(|i| Json::Array(b.columns().iter().map(|c| value(c, i)).collect()))
            .collect()
    }

    fn read(body: Vec<u8>) -> (Vec<Json>, usize) {
        let r = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(body)).unwrap();
        let stripes = r.file_metadata().stripe_metadatas().len();
        let mut out = Vec::new();
        for b in r.build() {
            out.extend(rows(&b.unwrap()));
        }
        (out, stripes)
    }

    /// Every column type, nested, with nulls at every level, `n` rows.
    fn every_type(n: usize) -> RecordBatch {
        let mut cols: Vec<(&str, ArrayRef)> = Vec::new();
        macro_rules! prim {
            ($name:expr, $b:expr, $f:expr) => {{
                let mut b = $b;
                for i in 0..n {
                    if i % 3 == 1 {
                        b.append_null();
                    } else {
                        b.append_value($f(i));
                    }
                }
                cols.push(($name, Arc::new(b.finish())));
            }};
        }
        prim!("b", BooleanBuilder::new(), |i| i % 2 == 0);
        prim!("t", Int8Builder::new(), |i: usize| (i % 256) as i8);
        prim!("s", Int16Builder::new(), |i: usize| -(i as i16));
        prim!("i", Int32Builder::new(), |i: usize| (i as i32)
            .wrapping_mul(1_000_003));
        prim!(
            "l",
            Int64Builder::new(),
            |i: usize| if i.is_multiple_of(2) {
                i64::MIN + i as i64
            } else {
                i64::MAX - i as i64
            }
        );
        prim!("f", Float32Builder::new(), |i: usize| i as f32 / 4.0);
        prim!("d", Float64Builder::new(), |i: usize| -(i as f64) / 3.0);
        prim!("str", StringBuilder::new(), |i: usize| "é".repeat(i % 5));
        prim!("bin", BinaryBuilder::new(), |i: usize| vec![i as u8; i % 4]);
        prim!("day", Date32Builder::new(), |i: usize| i as i32 * 37
            - 20_000);
        prim!("ts", TimestampMillisecondBuilder::new(), |i: usize| {
            (i as i64 - 2) * 86_400_123 + 1_700_000_000_000
        });
        let dec = {
            let mut b = Decimal128Builder::new();
            for i in 0..n {
                if i % 3 == 1 {
                    b.append_null();
                } else {
                    let v = 10i128.pow(37) + i as i128;
                    b.append_value(if i % 2 == 0 { v } else { -(i as i128) });
                }
            }
            b.finish().with_precision_and_scale(38, 5).unwrap()
        };
        cols.push(("dec", Arc::new(dec)));
        // array<array<int>>
        let mut lb = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for i in 0..n {
            match i % 4 {
                0 => lb.append_null(),
                1 => lb.append(true),
                _ => {
                    for j in 0..i % 3 {
                        if j == 1 {
                            lb.values().append_null();
                        } else {
                            lb.values().values().append_value(j as i32);
                            lb.values().values().append_null();
                            lb.values().append(true);
                        }
                    }
                    lb.append(true);
                }
            }
        }
        cols.push(("nested", Arc::new(lb.finish())));
        // map<string, decimal(5,2)>
        let mut mb = MapBuilder::new(
            None,
            StringBuilder::new(),
            Decimal128Builder::new()
                .with_precision_and_scale(5, 2)
                .unwrap(),
        );
        for i in 0..n {
            if i % 5 == 3 {
                mb.append(false).unwrap();
                continue;
            }
            for j in 0..i % 3 {
                mb.keys().append_value(format!("k{j}"));
                if j == 1 {
                    mb.values().append_null();
                } else {
                    mb.values().append_value(i as i128 * 7 - 350);
                }
            }
            mb.append(true).unwrap();
        }
        cols.push(("m", Arc::new(mb.finish())));
        // struct<a:int, inner:struct<x:string>, tags:array<string>>
        let a: ArrayRef = Arc::new(Int32Array::from_iter(
            (0..n).map(|i| (i % 2 == 0).then_some(i as i32)),
        ));
        let x: ArrayRef = Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 3 != 0).then(|| format!("x{i}"))),
        ));
        let inner_fields = Fields::from(vec![Field::new("x", DataType::Utf8, true)]);
        let inner: ArrayRef = Arc::new(
            StructArray::try_new(
                inner_fields.clone(),
                vec![x],
                Some(NullBuffer::from_iter((0..n).map(|i| i % 7 != 2))),
            )
            .unwrap(),
        );
        let mut tags = ListBuilder::new(StringBuilder::new());
        for i in 0..n {
            for j in 0..i % 2 {
                tags.values().append_value(format!("t{j}"));
            }
            tags.append(i % 6 != 5);
        }
        let tags: ArrayRef = Arc::new(tags.finish());
        let fields = Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("inner", DataType::Struct(inner_fields), true),
            Field::new("tags", tags.data_type().clone(), true),
        ]);
        let st = StructArray::try_new(
            fields,
            vec![a, inner, tags],
            Some(NullBuffer::from_iter((0..n).map(|i| i % 4 != 3))),
        )
        .unwrap();
        cols.push(("st", Arc::new(st)));
        let schema = Schema::new(
            cols.iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    use arrow_array::{Int32Array, Int64Array, StringArray};

    #[test]
    fn every_type_round_trips_through_orc_rust_under_each_compression() {
        let batch = every_type(300);
        let want = rows(&batch);
        for compression in [Compression::None, Compression::Zlib, Compression::Snappy] {
            let o = Options {
                compression,
                compression_block_size: 4096,
                ..Options::default()
            };
            let body = write(&batch, &o).unwrap();
            assert_eq!(&body[..3], b"ORC");
            let (got, stripes) = read(body);
            assert_eq!(stripes, 1);
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "row {i} under {compression:?}");
            }
        }
    }

    #[test]
    fn odd_sizes_round_trip() {
        // Row counts, strides, chunk and stripe sizes at their edges.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for round in 0..16 {
            let n = [0, 1, 2, 9, 1023, 1024, 1025][next(7) as usize];
            let batch = every_type(n as usize);
            let o = Options {
                compression: [Compression::None, Compression::Zlib, Compression::Snappy]
                    [next(3) as usize],
                compression_block_size: [7, 100, 4096, 1 << 24][next(4) as usize],
                stripe_size: [1, 5000, 1 << 20][next(3) as usize],
                row_index_stride: [0, 1, 7, 1000][next(4) as usize],
                bloom_filter_columns: vec!["str".into(), "i".into(), "f".into(), "nested".into()],
                padding_tolerance: Some(0.5),
                block_size: [1, 4096, 1 << 20][next(3) as usize],
                ..Options::default()
            };
            let (got, _) = read(write(&batch, &o).unwrap());
            assert_eq!(got, rows(&batch), "round {round}: {n} rows, {o:?}");
        }
    }

    #[test]
    fn stripes_close_at_the_stripe_size_and_pad_to_blocks() {
        let batch = every_type(5000);
        let want = rows(&batch);
        let o = Options {
            stripe_size: 64 * 1024,
            ..Options::default()
        };
        let (got, stripes) = read(write(&batch, &o).unwrap());
        assert!(stripes > 2, "{stripes}");
        assert_eq!(got, want);
        // A sliced batch writes the slice's rows only.
        let (got, _) = read(write(&batch.slice(10, 20), &o).unwrap());
        assert_eq!(got, want[10..30]);
        // Padding: every stripe that would cross a block boundary starts
        // at one instead.
        let padded = Options {
            compression: Compression::None,
            stripe_size: 64 * 1024,
            block_size: 100_000,
            padding_tolerance: Some(1.0),
            ..Options::default()
        };
        let body = write(&batch, &padded).unwrap();
        let r = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(body.clone())).unwrap();
        let infos: Vec<(u64, u64)> = r
            .file_metadata()
            .stripe_metadatas()
            .iter()
            .map(|s| {
                (
                    s.offset(),
                    s.data_length() + s.footer_length() + s.index_length(),
                )
            })
            .collect();
        assert!(infos.len() > 2);
        for (offset, len) in &infos {
            assert_eq!(offset / 100_000, (offset + len - 1) / 100_000, "{infos:?}");
        }
        assert!(infos.iter().any(|(o, _)| o % 100_000 == 0));
        assert_eq!(read(body).0, want);
    }

    #[test]
    fn the_tail_describes_the_file() {
        let batch = every_type(10);
        let o = Options {
            version: [0, 11],
            compression: Compression::Zlib,
            ..Options::default()
        };
        let body = write(&batch, &o).unwrap();
        let ps_len = *body.last().unwrap() as usize;
        let ps = &body[body.len() - 1 - ps_len..body.len() - 1];
        // version [0, 11] packed, writer version 6, magic last.
        assert!(ps.windows(4).any(|w| w == [0x22, 0x02, 0x00, 0x0b]));
        assert!(ps.ends_with(&[0x30, 0x06, 0x82, 0xf4, 0x03, 0x03, b'O', b'R', b'C']));
        let r = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(body)).unwrap();
        let meta = r.file_metadata();
        assert_eq!(meta.number_of_rows(), 10);
        // Root, 12 primitives, list(list(int)), map(string, decimal),
        // struct(int, struct(string), list(string)).
        let stats = meta.column_file_statistics();
        assert_eq!(stats.len(), 1 + 12 + 3 + 3 + 6);
        assert_eq!(stats[0].number_of_values(), 10);
        // "b": 10 rows, rows 1, 4, 7 null.
        assert_eq!(
            (stats[1].number_of_values(), stats[1].has_null()),
            (7, true)
        );
        let stripes = meta.stripe_metadatas();
        assert_eq!(stripes.len(), 1);
        assert_eq!(stripes[0].offset(), 3);
        assert_eq!(meta.row_index_stride(), Some(10_000));
        assert!(stripes[0].index_length() > 0);
        // RowIndexStride 0: no row index.
        let o = Options {
            row_index_stride: 0,
            ..o
        };
        let r =
            orc_rust::ArrowReaderBuilder::try_new(Bytes::from(write(&batch, &o).unwrap())).unwrap();
        assert_eq!(r.file_metadata().row_index_stride(), Some(0));
        assert_eq!(r.file_metadata().stripe_metadatas()[0].index_length(), 0);
    }

    fn stats_text(s: &orc_rust::statistics::ColumnStatistics) -> String {
        format!(
            "{} {} {:?}",
            s.number_of_values(),
            s.has_null(),
            s.type_statistics()
        )
    }

    #[test]
    fn statistics_per_stripe_and_for_the_file() {
        let ints = Int64Array::from(vec![Some(5), None, Some(-3), Some(i64::MAX), Some(9)]);
        let strs = StringArray::from(vec![Some("b"), Some("a"), None, Some("ccc"), Some("b")]);
        let bools =
            arrow_array::BooleanArray::from(vec![Some(true), None, Some(false), None, Some(true)]);
        let days = arrow_array::Date32Array::from(vec![Some(-5), Some(7), None, Some(0), Some(3)]);
        let dbls =
            arrow_array::Float64Array::from(vec![Some(1.5), Some(-2.0), None, Some(0.25), None]);
        let mut lists = ListBuilder::new(Int32Builder::new());
        for n in [2, 0, 5, 1, 3] {
            for i in 0..n {
                lists.values().append_value(i);
            }
            lists.append(n != 5);
        }
        let stamps = arrow_array::TimestampMillisecondArray::from(vec![
            Some(-1500),
            None,
            Some(1_700_000_000_123),
            Some(0),
            None,
        ]);
        let decs =
            arrow_array::Decimal128Array::from(vec![Some(-1234), Some(5), None, Some(7), None])
                .with_precision_and_scale(5, 2)
                .unwrap();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ints),
            Arc::new(strs),
            Arc::new(bools),
            Arc::new(days),
            Arc::new(dbls),
            Arc::new(lists.finish()),
            Arc::new(stamps),
            Arc::new(decs),
        ];
        let schema = Schema::new(
            ["i", "s", "b", "d", "f", "l", "t", "m"]
                .iter()
                .zip(&cols)
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(Arc::new(schema), cols).unwrap();
        let body = write(&batch, &Options::default()).unwrap();
        let r = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(body)).unwrap();
        let meta = r.file_metadata();
        let want = [
            "5 false None",
            "4 true Some(Integer { min: -3, max: 9223372036854775807, sum: None })",
            "4 true Some(String { lower_bound: \"a\", upper_bound: \"ccc\", sum: 6, is_exact_min: true, is_exact_max: true })",
            "3 true Some(Bucket { true_count: 2 })",
            "4 true Some(Date { min: -5, max: 7 })",
            "3 true Some(Double { min: -2.0, max: 1.5, sum: Some(-0.25) })",
            "4 true Some(Collection { min_children: 0, max_children: 3, total_children: 6 })",
            "6 false Some(Integer { min: 0, max: 2, sum: Some(4) })",
            "3 true Some(Timestamp { min: -1500, max: 1700000000123, min_utc: -1500, max_utc: 1700000000123 })",
            "3 true Some(Decimal { min: \"-12.34\", max: \"0.07\", sum: \"-12.22\" })",
        ];
        let file: Vec<String> = meta
            .column_file_statistics()
            .iter()
            .map(stats_text)
            .collect();
        assert_eq!(file, want);
        let stripe: Vec<String> = meta.stripe_metadatas()[0]
            .column_statistics()
            .iter()
            .map(stats_text)
            .collect();
        assert_eq!(stripe, want);
        // Across stripes the file's statistics merge the stripes'.
        let many = every_type(5000);
        let o = Options {
            stripe_size: 64 * 1024,
            ..Options::default()
        };
        let r =
            orc_rust::ArrowReaderBuilder::try_new(Bytes::from(write(&many, &o).unwrap())).unwrap();
        let meta = r.file_metadata();
        assert!(meta.stripe_metadatas().len() > 2);
        let file = &meta.column_file_statistics()[4];
        let values: Vec<i64> = (0..5000)
            .filter(|i| i % 3 != 1)
            .map(|i: i32| i64::from(i.wrapping_mul(1_000_003)))
            .collect();
        assert_eq!(
            stats_text(file),
            format!(
                "3333 true Some(Integer {{ min: {}, max: {}, sum: Some({}) }})",
                values.iter().min().unwrap(),
                values.iter().max().unwrap(),
                values.iter().sum::<i64>(),
            )
        );
        let counts: u64 = meta
            .stripe_metadatas()
            .iter()
            .map(|s| s.column_statistics()[4].number_of_values())
            .sum();
        assert_eq!(counts, 3333);
    }

    #[test]
    fn an_empty_batch_and_unknown_types() {
        let empty = every_type(0);
        let (got, stripes) = read(write(&empty, &Options::default()).unwrap());
        assert_eq!((got.len(), stripes), (0, 0));
        let schema = Schema::new(vec![Field::new("u", DataType::UInt32, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(arrow_array::UInt32Array::from(vec![1]))],
        )
        .unwrap();
        let e = write(&batch, &Options::default()).unwrap_err();
        assert_eq!(e.to_string(), "ORC output has no column type for UInt32");
    }
}
