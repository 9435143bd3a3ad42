//! Strict PEM splitting.
//!
//! The `pem` crate silently skips text between blocks; an API that stores what it was given
//! must instead reject trailing junk, so blocks are delimited here and only the base64 decoding
//! is delegated.

use crate::PkiError;

/// One decoded PEM block.
pub(crate) struct Block {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Splits `input` into PEM blocks. Only whitespace may appear outside blocks.
pub(crate) fn split(input: &str) -> Result<Vec<Block>, PkiError> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for (idx, raw_line) in input.lines().enumerate() {
        let line = raw_line.trim();
        match current.as_mut() {
            None => {
                if line.is_empty() {
                    continue;
                }
                let label = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                    .ok_or(PkiError::PemTrailingData { line: idx + 1 })?;
                let mut text = String::with_capacity(2048);
                text.push_str(line);
                text.push('\n');
                current = Some((label.to_string(), text));
            }
            Some((label, text)) => {
                if line.starts_with("-----END ") {
                    if line != format!("-----END {label}-----") {
                        return Err(PkiError::PemMalformed(format!(
                            "line {}: END line does not match 'BEGIN {label}'",
                            idx + 1
                        )));
                    }
                    text.push_str(line);
                    text.push('\n');
                    let parsed = pem::parse(text.as_bytes()).map_err(|e| {
                        PkiError::PemMalformed(format!("block '{label}': {}", describe(&e)))
                    })?;
                    blocks.push(Block {
                        label: label.clone(),
                        der: parsed.into_contents(),
                    });
                    current = None;
                } else if line.starts_with("-----BEGIN ") {
                    return Err(PkiError::PemMalformed(format!(
                        "line {}: BEGIN inside block '{label}' (missing END line)",
                        idx + 1
                    )));
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    if let Some((label, _)) = current {
        return Err(PkiError::PemMalformed(format!(
            "block '{label}' has no END line"
        )));
    }
    Ok(blocks)
}

/// Error text from the pem crate, without echoing input (which could be a key).
fn describe(e: &pem::PemError) -> &'static str {
    match e {
        pem::PemError::InvalidData(_) => "invalid base64 content",
        pem::PemError::InvalidHeader(_) => "invalid header line",
        pem::PemError::MismatchedTags(_, _) => "BEGIN and END labels differ",
        pem::PemError::MalformedFraming => "malformed framing",
        pem::PemError::MissingBeginTag | pem::PemError::MissingEndTag => "missing BEGIN/END",
        pem::PemError::MissingData => "no content",
        pem::PemError::NotUtf8(_) => "not UTF-8",
    }
}

/// Exactly one block with the given label; anything else is an error that names what was found.
pub(crate) fn single(input: &str, expected: &'static str) -> Result<Vec<u8>, PkiError> {
    let blocks = split(input)?;
    let mut iter = blocks.into_iter();
    let first = iter.next().ok_or(PkiError::PemEmpty { expected })?;
    let extra = iter.count();
    if first.label != expected {
        return Err(PkiError::PemUnexpectedLabel {
            expected,
            found: first.label,
        });
    }
    if extra > 0 {
        return Err(PkiError::PemTooManyBlocks { found: extra + 1 });
    }
    Ok(first.der)
}

/// Re-encodes DER as PEM with LF line endings and a trailing newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
