//! The wire format of the Talos overlay installer protocol (`pkg/machinery/overlay`):
//! what `get-options` and `install` read on stdin and what `get-options` prints.
//!
//! The host marshals with yaml.v3 (4-space indent, Talos ≤ 1.11) or yaml v4 (2-space,
//! ≥ 1.12), so nothing here depends on layout or key order. Keys the installer does not
//! know are ignored, as the Go host ignores unknown keys in what it reads back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;
use yaml_serde::Value;

/// The options map the host passes (`ExtraOptions`, a `map[string]any`).
pub type ExtraOptions = BTreeMap<String, Value>;

#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("stdin is not valid UTF-8 YAML")]
    NotUtf8,
    #[error("could not decode the {what} YAML on stdin: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: yaml_serde::Error,
    },
    #[error("could not encode the options as YAML: {0}")]
    Encode(#[source] yaml_serde::Error),
}

/// `InstallOptions[T]`: what `install` reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstallRequest {
    /// The target: a block device on the node, a raw image file in the Talos ≥ 1.13 imager.
    #[serde(default)]
    pub install_disk: String,
    /// Empty on the node (BOOT at /boot, ESP at /boot/EFI); a staging directory in the imager.
    #[serde(default)]
    pub mount_prefix: String,
    #[serde(default)]
    pub artifacts_path: String,
    /// Left out by the host when the map is empty.
    #[serde(default)]
    pub extra_options: Option<ExtraOptions>,
}

/// `Options`: what `get-options` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OverlayOptions {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
    pub partition_options: PartitionOptions,
}

/// `PartitionOptions.offset` counts logical sectors skipped before the GPT entry array.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct PartitionOptions {
    pub offset: u64,
}

fn text(stdin: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(stdin).map_err(|_| ProtocolError::NotUtf8)
}

/// True when the document holds nothing but whitespace and comments: YAML's null document.
fn is_empty_document(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
}

/// Decodes `get-options` input: the bare options map (`{}` when empty; an empty
/// document or `null` also means no options).
pub fn decode_extra_options(stdin: &[u8]) -> Result<ExtraOptions, ProtocolError> {
    let text = text(stdin)?;
    if is_empty_document(text) {
        return Ok(ExtraOptions::new());
    }
    let map: Option<ExtraOptions> =
        yaml_serde::from_str(text).map_err(|source| ProtocolError::Decode {
            what: "get-options (the overlay options map)",
            source,
        })?;
    Ok(map.unwrap_or_default())
}

/// Decodes `install` input.
pub fn decode_install_request(stdin: &[u8]) -> Result<InstallRequest, ProtocolError> {
    let text = text(stdin)?;
    let request: Option<InstallRequest> =
        yaml_serde::from_str(text).map_err(|source| ProtocolError::Decode {
            what: "install (installDisk, mountPrefix, artifactsPath, extraOptions)",
            source,
        })?;
    Ok(request.unwrap_or_default())
}

pub fn encode_options(options: &OverlayOptions) -> Result<String, ProtocolError> {
    yaml_serde::to_string(options).map_err(ProtocolError::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_request_reads_both_indentations_and_ignores_unknown_keys() {
        let four = "installDisk: /dev/mmcblk0\nmountPrefix: \"\"\nartifactsPath: /overlay/artifacts\nextraOptions:\n    earlycon: \"true\"\nfutureField: 3\n";
        let two = "futureField: 3\nextraOptions:\n  earlycon: \"true\"\nartifactsPath: /overlay/artifacts\nmountPrefix: \"\"\ninstallDisk: /dev/mmcblk0\n";
        let a = decode_install_request(four.as_bytes()).unwrap();
        let b = decode_install_request(two.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.install_disk, "/dev/mmcblk0");
        assert_eq!(a.mount_prefix, "");
        assert_eq!(
            a.extra_options.unwrap().get("earlycon"),
            Some(&Value::String("true".into()))
        );
    }

    #[test]
    fn empty_and_null_option_maps_mean_no_options() {
        for input in ["{}", "{}\n", "", "\n", "null\n", "---\n"] {
            assert!(
                decode_extra_options(input.as_bytes()).unwrap().is_empty(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_list_is_not_an_options_map() {
        assert!(decode_extra_options(b"- a\n- b\n").is_err());
        assert!(decode_extra_options(b"key: [unclosed\n").is_err());
    }

    #[test]
    fn encoded_options_name_offset_and_args() {
        let yaml = encode_options(&OverlayOptions {
            name: "nanopi-m6".into(),
            kernel_args: vec!["console=tty0".into()],
            partition_options: PartitionOptions { offset: 20480 },
        })
        .unwrap();
        let back: Value = yaml_serde::from_str(&yaml).unwrap();
        assert_eq!(back["name"], Value::String("nanopi-m6".into()));
        assert_eq!(back["kernelArgs"][0], Value::String("console=tty0".into()));
        assert_eq!(back["partitionOptions"]["offset"].as_u64(), Some(20480));
    }
}
