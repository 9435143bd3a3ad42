//! A minimal DER writer and reader: just enough to build a TBSCertificate by hand.
//!
//! Hand-building lets the issuer copy a CSR's subject and public key byte for byte, which
//! rcgen cannot do (its name type drops repeated attributes and multi-valued RDNs).

use crate::PkiError;
use time::OffsetDateTime;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// Encodes one tag-length-value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        // Short form; the cast cannot truncate because len < 0x80.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let n = bytes.len() - skip;
        out.push(0x80 | n as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded parts.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

/// An OID from its encoded content bytes.
pub(crate) fn oid(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OID, content)
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn uint(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mag = &bytes[skip..];
    let mut content = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(mag);
    tlv(TAG_INTEGER, &content)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(TAG_BIT_STRING, &content)
}

/// A certificate time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5).
pub(crate) fn time(unix: i64) -> Result<Vec<u8>, PkiError> {
    let t = OffsetDateTime::from_unix_timestamp(unix).map_err(|_| PkiError::InvalidTime(unix))?;
    let year = t.year();
    if !(1950..=9999).contains(&year) {
        return Err(PkiError::InvalidTime(unix));
    }
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(if year < 2050 {
        tlv(TAG_UTC_TIME, format!("{:02}{rest}", year % 100).as_bytes())
    } else {
        tlv(TAG_GENERALIZED_TIME, format!("{year:04}{rest}").as_bytes())
    })
}

/// One X.509 extension.
pub(crate) fn extension(oid_content: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let id = oid(oid_content);
    let v = tlv(TAG_OCTET_STRING, value);
    if critical {
        seq(&[&id, &tlv(TAG_BOOLEAN, &[0xff]), &v])
    } else {
        seq(&[&id, &v])
    }
}

/// Reads one TLV; returns (tag, content, rest). Only definite lengths (DER).
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(uint(&[0x00, 0x80]), vec![0x02, 2, 0x00, 0x80]);
        assert_eq!(uint(&[0x00, 0x00, 0x7f]), vec![0x02, 1, 0x7f]);
        assert_eq!(uint(&[]), vec![0x02, 1, 0x00]);
        let (tag, content, rest) = read_tlv(&long).expect("tlv");
        assert_eq!((tag, content.len(), rest.len()), (0x04, 300, 0));
        assert!(read_tlv(&[0x04, 0x05, 1]).is_none());
    }

    #[test]
    fn times() {
        // 2049-12-31T23:59:59Z is the last UTCTime, 2050-01-01 the first GeneralizedTime.
        assert_eq!(
            time(2_524_607_999).expect("t"),
            tlv(TAG_UTC_TIME, b"491231235959Z")
        );
        assert_eq!(
            time(2_524_608_000).expect("t"),
            tlv(TAG_GENERALIZED_TIME, b"20500101000000Z")
        );
        assert_eq!(time(0).expect("t"), tlv(TAG_UTC_TIME, b"700101000000Z"));
        assert!(time(-1_000_000_000_000).is_err());
    }
}
