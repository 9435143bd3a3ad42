//! Chain validation for the MQTT gateway, with rustls-webpki.

use crate::{Certificate, PkiError, cert_id, verify_signed_by};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use std::time::Duration;

/// What [`verify_chain`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    /// Index into the `anchors` slice of the trust anchor the chain ends at.
    pub anchor_index: usize,
    /// Certificate id of that anchor.
    pub anchor_id: String,
    /// Certificate ids of the intermediates on the path, leaf side first.
    pub intermediate_ids: Vec<String>,
}

/// Builds and validates a path from `leaf_der` through any of `intermediates_der` to one of
/// `anchors`, at time `now_unix`, for TLS client authentication.
///
/// EKU: uses webpki's `KeyUsage::client_auth()`, which accepts leaves (and intermediates)
/// without an ExtendedKeyUsage extension, as AWS does; when the extension is present it must
/// contain `id-kp-clientAuth`. Anchors webpki cannot use (unparseable) are skipped. Revocation
/// is not checked here (the registry's certificate status is the revocation mechanism).
///
/// X.509 v1 leaves: webpki refuses them, but `openssl x509 -req` without an extension file
/// (OpenSSL 3.0, and AWS's own JITR tutorials) makes exactly those, and AWS accepts them. For
/// a v1 leaf the path is therefore checked here instead: leaf validity at `now`, then issuer
/// by issuer (name match + signature) through intermediates that are CAs and valid at `now`,
/// up to an anchor, at most 6 intermediates. A v1 leaf has no extensions, so there is no EKU
/// or BasicConstraints to check on it; intermediates' KeyUsage and name constraints are not
/// checked on this path.
pub fn verify_chain(
    leaf_der: &[u8],
    intermediates_der: &[impl AsRef<[u8]>],
    anchors: &[Certificate],
    now_unix: i64,
) -> Result<ChainInfo, PkiError> {
    let chain_err = |e: webpki::Error| PkiError::Chain(e.to_string());
    // webpki refuses v1 certificates outright; see the doc comment.
    let parsed_leaf = Certificate::from_der(leaf_der)?;
    if parsed_leaf.version() == 1 {
        let inters = intermediates_der
            .iter()
            .filter_map(|d| Certificate::from_der(d.as_ref()).ok())
            .collect::<Vec<_>>();
        return verify_v1_leaf(&parsed_leaf, &inters, anchors, now_unix);
    }
    let leaf = CertificateDer::from(leaf_der);
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(chain_err)?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.der()))
        .collect();
    let mut index_map = Vec::with_capacity(anchors.len());
    let mut tas: Vec<TrustAnchor<'_>> = Vec::with_capacity(anchors.len());
    for (i, d) in anchor_ders.iter().enumerate() {
        if let Ok(ta) = webpki::anchor_from_trusted_cert(d) {
            index_map.push(i);
            tas.push(ta);
        }
    }
    let inter: Vec<CertificateDer<'_>> = intermediates_der
        .iter()
        .map(|d| CertificateDer::from(d.as_ref()))
        .collect();
    let secs = u64::try_from(now_unix).map_err(|_| PkiError::InvalidTime(now_unix))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let path = ee
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &tas,
            &inter,
            time,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(chain_err)?;
    let anchor_pos = tas
        .iter()
        .position(|t| std::ptr::eq(t, path.anchor()))
        .ok_or_else(|| PkiError::Chain("webpki returned an unknown trust anchor".into()))?;
    let anchor_index = index_map
        .get(anchor_pos)
        .copied()
        .ok_or_else(|| PkiError::Chain("webpki returned an unknown trust anchor".into()))?;
    let intermediate_ids = path
        .intermediate_certificates()
        .map(|c| cert_id(c.der().as_ref()))
        .collect();
    Ok(ChainInfo {
        anchor_index,
        anchor_id: anchors
            .get(anchor_index)
            .map(|a| a.id().to_string())
            .unwrap_or_default(),
        intermediate_ids,
    })
}

/// Longest chain of intermediates followed for a v1 leaf.
const MAX_INTERMEDIATES: usize = 6;

/// Path check for X.509 v1 leaves (see [`verify_chain`]).
fn verify_v1_leaf(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    now: i64,
) -> Result<ChainInfo, PkiError> {
    if !leaf.is_valid_at(now) {
        return Err(PkiError::Chain(
            "certificate is expired or not yet valid".into(),
        ));
    }
    let mut current = leaf.clone();
    let mut used: Vec<String> = Vec::new();
    for _ in 0..=MAX_INTERMEDIATES {
        if let Some(i) = anchors
            .iter()
            .position(|a| verify_signed_by(&current, a).is_ok())
        {
            return Ok(ChainInfo {
                anchor_index: i,
                anchor_id: anchors[i].id().to_string(),
                intermediate_ids: used,
            });
        }
        let next = intermediates.iter().find(|c| {
            c.is_ca()
                && c.is_valid_at(now)
                && !used.iter().any(|u| u == c.id())
                && verify_signed_by(&current, c).is_ok()
        });
        match next {
            Some(c) => {
                used.push(c.id().to_string());
                current = c.clone();
            }
            None => {
                return Err(PkiError::Chain(
                    "no valid path from the certificate to a trusted CA".into(),
                ));
            }
        }
    }
    Err(PkiError::Chain("certificate chain is too long".into()))
}
