//! Wire primitives: a bounds-checked reader over a packet body and writer helpers.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{DecodeError, EncodeError};

/// Largest value a variable byte integer can hold.
pub(crate) const VBI_MAX: u32 = 268_435_455;

/// Bounds-checked cursor over a complete packet body. Every read checks the remaining length.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

const EOF: DecodeError = DecodeError::Malformed("packet ends before a field is complete");

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.remaining() < n {
            return Err(EOF);
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self.buf.get(self.pos).copied().ok_or(EOF)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.u8()?;
        }
        Ok(u32::from_be_bytes(b))
    }

    /// Variable byte integer; at most 4 bytes, minimal encoding required.
    pub(crate) fn vbi(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::Malformed(
                        "variable byte integer not minimally encoded",
                    ));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "variable byte integer longer than 4 bytes",
        ))
    }

    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// UTF-8 encoded string (MQTT §1.5.4): valid UTF-8 (so no surrogates) and no U+0000.
    pub(crate) fn utf8(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let s = std::str::from_utf8(&raw)
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))?;
        if s.contains('\0') {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(s.to_owned())
    }

    /// The rest of the body.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos.min(self.buf.len())..);
        self.pos = self.buf.len();
        out
    }

    /// A sub-reader over the next `n` bytes.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take(n)?))
    }
}

/// Parses a variable byte integer at the start of `buf`.
/// `Ok(None)` when more bytes are needed; `Ok(Some((value, length)))` otherwise.
pub(crate) fn peek_vbi(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(DecodeError::Malformed(
                    "remaining length not minimally encoded",
                ));
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::Malformed(
        "remaining length longer than 4 bytes",
    ))
}

pub(crate) fn put_vbi(buf: &mut BytesMut, v: usize) -> Result<(), EncodeError> {
    if v > VBI_MAX as usize {
        return Err(EncodeError::TooLarge(v));
    }
    let mut v = v;
    loop {
        let mut b = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            b |= 0x80;
        }
        buf.put_u8(b);
        if v == 0 {
            return Ok(());
        }
    }
}

pub(crate) fn put_binary(buf: &mut BytesMut, b: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong(b.len()))?;
    buf.put_u16(len);
    buf.put_slice(b);
    Ok(())
}

pub(crate) fn put_str(buf: &mut BytesMut, s: &str) -> Result<(), EncodeError> {
    put_binary(buf, s.as_bytes())
}
