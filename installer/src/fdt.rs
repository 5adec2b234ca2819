//! A small, bounds-checked reader for flattened device trees (DTB files).
//!
//! Only what the DTB gate needs: the node tree, property values, string lists and
//! phandle lookups. Every read of the untrusted blob goes through checked helpers, so a
//! truncated or hostile file gives an [`FdtError`] instead of a panic.

use std::collections::HashMap;
use thiserror::Error;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Version 16 is the oldest layout with the string-table fields this reader relies on.
const FDT_MIN_READABLE_VERSION: u32 = 16;
/// Real trees are a dozen levels deep at most; a bound stops a crafted blob from
/// building an absurd tree.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FdtError {
    #[error("the file is {len} bytes, too short for a device-tree header (40 bytes)")]
    TooShort { len: usize },
    #[error(
        "bad magic {found:#010x}: not a flattened device tree (expected 0xd00dfeed); pass a compiled .dtb, not a .dts"
    )]
    BadMagic { found: u32 },
    #[error(
        "the header says the tree is {declared} bytes but the file has only {actual}; the DTB is truncated"
    )]
    Truncated { declared: u32, actual: usize },
    #[error(
        "device-tree version {version} is too old (need 16 or later); recompile the DTB with a current dtc"
    )]
    UnsupportedVersion { version: u32 },
    #[error("the {block} block (offset {offset}, {len} bytes) lies outside the {total}-byte tree")]
    BlockOutOfBounds {
        block: &'static str,
        offset: u32,
        len: u32,
        total: u32,
    },
    #[error("the structure block ends early at offset {offset}")]
    UnexpectedEnd { offset: usize },
    #[error("unknown structure token {token:#x} at offset {offset}")]
    BadToken { token: u32, offset: usize },
    #[error("a name at offset {offset} has no terminating NUL")]
    UnterminatedName { offset: usize },
    #[error("a name at offset {offset} is not valid UTF-8")]
    NameNotUtf8 { offset: usize },
    #[error(
        "the structure block is unbalanced (a node is closed that was never opened, or never closed)"
    )]
    Unbalanced,
    #[error("nodes are nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("the tree has no root node")]
    NoRoot,
}

/// One property: its name and raw big-endian value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: Vec<u8>,
}

/// One node of the tree. Nodes refer to each other by index into [`Fdt::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The full node name, `name@unit-address` (empty for the root).
    pub name: String,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub properties: Vec<Property>,
}

impl Node {
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_slice())
    }

    /// The part of the name after `@`, if any.
    pub fn unit_address(&self) -> Option<&str> {
        self.name.split_once('@').map(|(_, addr)| addr)
    }

    /// A string-list property (NUL-separated strings), e.g. `compatible`.
    /// Missing or non-UTF-8 entries yield an empty list / are skipped.
    pub fn string_list(&self, name: &str) -> Vec<String> {
        self.property(name)
            .map(split_string_list)
            .unwrap_or_default()
    }

    /// A single-string property such as `status` or `model`.
    pub fn string(&self, name: &str) -> Option<String> {
        self.string_list(name).into_iter().next()
    }

    /// The first cell of a property holding one or more big-endian u32 cells.
    pub fn u32_cell(&self, name: &str) -> Option<u32> {
        let bytes = self.property(name)?;
        let cell: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(cell))
    }

    pub fn is_compatible_with_any(&self, candidates: &[&str]) -> bool {
        self.string_list("compatible")
            .iter()
            .any(|c| candidates.contains(&c.as_str()))
    }

    /// The node's own `status`: absent, "okay" and "ok" mean enabled.
    pub fn own_status_enabled(&self) -> bool {
        match self.string("status") {
            None => true,
            Some(status) => status == "okay" || status == "ok",
        }
    }
}

fn split_string_list(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| std::str::from_utf8(s).ok())
        .map(str::to_owned)
        .collect()
}

/// A parsed device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fdt {
    nodes: Vec<Node>,
    /// Node index by phandle (`phandle` or legacy `linux,phandle`), the first node that
    /// holds the value winning. Built once at parse time: resolving a reference is then
    /// a lookup, not a scan of every node (a 1 MiB DTB of 20,000 CPUs each naming an
    /// OPP table made the gate visit 400 million nodes).
    phandles: HashMap<u32, usize>,
}

/// Big-endian reads that fail instead of panicking when out of bounds.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn u32_at(&self, offset: usize) -> Option<u32> {
        let end = offset.checked_add(4)?;
        let cell: [u8; 4] = self.bytes.get(offset..end)?.try_into().ok()?;
        Some(u32::from_be_bytes(cell))
    }

    /// A NUL-terminated UTF-8 string starting at `offset`; returns it and the offset past the NUL.
    fn c_string_at(&self, offset: usize) -> Result<(&str, usize), FdtError> {
        let tail = self
            .bytes
            .get(offset..)
            .ok_or(FdtError::UnexpectedEnd { offset })?;
        let nul = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or(FdtError::UnterminatedName { offset })?;
        let text = tail.get(..nul).ok_or(FdtError::UnexpectedEnd { offset })?;
        let text = std::str::from_utf8(text).map_err(|_| FdtError::NameNotUtf8 { offset })?;
        Ok((text, offset + nul + 1))
    }
}

fn align4(offset: usize) -> usize {
    offset.div_ceil(4) * 4
}

impl Fdt {
    pub fn parse(blob: &[u8]) -> Result<Fdt, FdtError> {
        let header = Reader { bytes: blob };
        let field = |index: usize| {
            header
                .u32_at(index * 4)
                .ok_or(FdtError::TooShort { len: blob.len() })
        };
        if blob.len() < 40 {
            return Err(FdtError::TooShort { len: blob.len() });
        }
        let magic = field(0)?;
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic { found: magic });
        }
        let total_size = field(1)?;
        let off_struct = field(2)?;
        let off_strings = field(3)?;
        let version = field(5)?;
        let size_strings = field(8)?;
        let size_struct = field(9)?;
        if total_size as usize > blob.len() {
            return Err(FdtError::Truncated {
                declared: total_size,
                actual: blob.len(),
            });
        }
        if version < FDT_MIN_READABLE_VERSION {
            return Err(FdtError::UnsupportedVersion { version });
        }
        let tree = blob.get(..total_size as usize).ok_or(FdtError::Truncated {
            declared: total_size,
            actual: blob.len(),
        })?;
        let block = |name: &'static str, offset: u32, len: u32| {
            let start = offset as usize;
            start
                .checked_add(len as usize)
                .and_then(|end| tree.get(start..end))
                .ok_or(FdtError::BlockOutOfBounds {
                    block: name,
                    offset,
                    len,
                    total: total_size,
                })
        };
        let structure = Reader {
            bytes: block("structure", off_struct, size_struct)?,
        };
        let strings = Reader {
            bytes: block("strings", off_strings, size_strings)?,
        };
        Self::parse_structure(&structure, &strings)
    }

    fn parse_structure(structure: &Reader, strings: &Reader) -> Result<Fdt, FdtError> {
        let mut nodes: Vec<Node> = Vec::new();
        // Indices of the currently open nodes, innermost last.
        let mut open: Vec<usize> = Vec::new();
        let mut offset = 0usize;
        loop {
            let token = structure
                .u32_at(offset)
                .ok_or(FdtError::UnexpectedEnd { offset })?;
            let token_at = offset;
            offset += 4;
            match token {
                FDT_BEGIN_NODE => {
                    let (name, next) = structure.c_string_at(offset)?;
                    offset = align4(next);
                    if open.len() >= MAX_DEPTH {
                        return Err(FdtError::TooDeep);
                    }
                    let parent = open.last().copied();
                    if parent.is_none() && !nodes.is_empty() {
                        // A second top-level node: only one root is allowed.
                        return Err(FdtError::Unbalanced);
                    }
                    let index = nodes.len();
                    nodes.push(Node {
                        name: name.to_owned(),
                        parent,
                        children: Vec::new(),
                        properties: Vec::new(),
                    });
                    if let Some(parent) = parent {
                        nodes[parent].children.push(index);
                    }
                    open.push(index);
                }
                FDT_END_NODE => {
                    open.pop().ok_or(FdtError::Unbalanced)?;
                }
                FDT_PROP => {
                    let len = structure
                        .u32_at(offset)
                        .ok_or(FdtError::UnexpectedEnd { offset })?
                        as usize;
                    let name_offset = structure
                        .u32_at(offset + 4)
                        .ok_or(FdtError::UnexpectedEnd { offset })?
                        as usize;
                    offset += 8;
                    let value = offset
                        .checked_add(len)
                        .and_then(|end| structure.bytes.get(offset..end))
                        .ok_or(FdtError::UnexpectedEnd { offset })?;
                    let (name, _) = strings.c_string_at(name_offset)?;
                    let current = *open.last().ok_or(FdtError::Unbalanced)?;
                    nodes[current].properties.push(Property {
                        name: name.to_owned(),
                        value: value.to_vec(),
                    });
                    offset = align4(offset + len);
                }
                FDT_NOP => {}
                FDT_END => {
                    if !open.is_empty() {
                        return Err(FdtError::Unbalanced);
                    }
                    break;
                }
                other => {
                    return Err(FdtError::BadToken {
                        token: other,
                        offset: token_at,
                    });
                }
            }
        }
        if nodes.is_empty() {
            return Err(FdtError::NoRoot);
        }
        let mut phandles = HashMap::new();
        for (index, node) in nodes.iter().enumerate() {
            for name in ["phandle", "linux,phandle"] {
                if let Some(phandle) = node.u32_cell(name) {
                    phandles.entry(phandle).or_insert(index);
                }
            }
        }
        Ok(Fdt { nodes, phandles })
    }

    pub fn root(&self) -> &Node {
        // parse() guarantees at least one node, and node 0 is the root.
        &self.nodes[0]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, index: usize) -> Option<&Node> {
        self.nodes.get(index)
    }

    /// The full path of a node, e.g. `/cpus/cpu@0`.
    pub fn path_of(&self, index: usize) -> String {
        let mut parts = Vec::new();
        let mut current = Some(index);
        while let Some(i) = current {
            let Some(node) = self.nodes.get(i) else { break };
            if node.parent.is_some() {
                parts.push(node.name.as_str());
            }
            current = node.parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The index of the node at an absolute path such as `/cpus`.
    pub fn find_path(&self, path: &str) -> Option<usize> {
        let mut current = 0usize;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            current = *self
                .nodes
                .get(current)?
                .children
                .iter()
                .find(|&&child| self.nodes.get(child).is_some_and(|n| n.name == part))?;
        }
        Some(current)
    }

    /// The node whose `phandle` (or legacy `linux,phandle`) equals `phandle`.
    pub fn find_phandle(&self, phandle: u32) -> Option<usize> {
        self.phandles.get(&phandle).copied()
    }

    /// True when the node and every ancestor are enabled: the kernel does not probe a
    /// node under a disabled parent, so a child's own "okay" is not enough.
    pub fn is_enabled(&self, index: usize) -> bool {
        let mut current = Some(index);
        while let Some(i) = current {
            let Some(node) = self.nodes.get(i) else {
                return false;
            };
            if !node.own_status_enabled() {
                return false;
            }
            current = node.parent;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal DTB by hand: root { compatible = "a\0b"; child@1 { status = "disabled"; }; }.
    fn tiny_dtb() -> Vec<u8> {
        let strings = b"compatible\0status\0".to_vec();
        let mut structure = Vec::new();
        let push = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
        let pad = |s: &mut Vec<u8>| {
            while s.len() % 4 != 0 {
                s.push(0);
            }
        };
        push(&mut structure, FDT_BEGIN_NODE);
        structure.extend_from_slice(b"\0");
        pad(&mut structure);
        push(&mut structure, FDT_PROP);
        push(&mut structure, 4);
        push(&mut structure, 0);
        structure.extend_from_slice(b"a\0b\0");
        push(&mut structure, FDT_BEGIN_NODE);
        structure.extend_from_slice(b"child@1\0");
        pad(&mut structure);
        push(&mut structure, FDT_PROP);
        push(&mut structure, 9);
        push(&mut structure, 11);
        structure.extend_from_slice(b"disabled\0");
        pad(&mut structure);
        push(&mut structure, FDT_END_NODE);
        push(&mut structure, FDT_END_NODE);
        push(&mut structure, FDT_END);
        dtb_blob(&structure, &strings)
    }

    /// A version-17 DTB of a structure block and a strings block: the header, an empty
    /// memory reservation map, then the two blocks.
    fn dtb_blob(structure: &[u8], strings: &[u8]) -> Vec<u8> {
        let header_len = 40u32;
        let rsvmap_len = 16u32;
        let off_struct = header_len + rsvmap_len;
        let off_strings = off_struct + structure.len() as u32;
        let total = off_strings + strings.len() as u32;
        let mut blob = Vec::new();
        for v in [
            FDT_MAGIC,
            total,
            off_struct,
            off_strings,
            header_len,
            17,
            16,
            0,
            strings.len() as u32,
            structure.len() as u32,
        ] {
            blob.extend_from_slice(&v.to_be_bytes());
        }
        blob.extend_from_slice(&[0u8; 16]);
        blob.extend_from_slice(structure);
        blob.extend_from_slice(strings);
        blob
    }

    #[test]
    fn parses_nodes_properties_and_status() {
        let fdt = Fdt::parse(&tiny_dtb()).unwrap();
        assert_eq!(fdt.root().string_list("compatible"), vec!["a", "b"]);
        let child = fdt.find_path("/child@1").unwrap();
        assert_eq!(fdt.path_of(child), "/child@1");
        assert_eq!(fdt.node(child).unwrap().unit_address(), Some("1"));
        assert!(!fdt.is_enabled(child));
        assert!(fdt.is_enabled(0));
    }

    #[test]
    fn phandles_resolve_to_the_first_node_holding_them() {
        // root { a { linux,phandle = <5>; }; b { phandle = <5>; }; c { phandle = <7>; }; }
        let strings = b"phandle\0linux,phandle\0".to_vec();
        let mut structure = Vec::new();
        let push = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
        push(&mut structure, FDT_BEGIN_NODE);
        push(&mut structure, 0);
        for (name, name_offset, phandle) in
            [(b"a\0\0\0", 8, 5), (b"b\0\0\0", 0, 5), (b"c\0\0\0", 0, 7)]
        {
            push(&mut structure, FDT_BEGIN_NODE);
            structure.extend_from_slice(name);
            push(&mut structure, FDT_PROP);
            push(&mut structure, 4);
            push(&mut structure, name_offset);
            push(&mut structure, phandle);
            push(&mut structure, FDT_END_NODE);
        }
        push(&mut structure, FDT_END_NODE);
        push(&mut structure, FDT_END);
        let blob = dtb_blob(&structure, &strings);

        let fdt = Fdt::parse(&blob).unwrap();
        let named = |index: Option<usize>| index.map(|i| fdt.path_of(i));
        assert_eq!(named(fdt.find_phandle(5)), Some("/a".to_owned()));
        assert_eq!(named(fdt.find_phandle(7)), Some("/c".to_owned()));
        assert_eq!(fdt.find_phandle(9), None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = tiny_dtb();
        for len in 0..blob.len() {
            assert!(
                Fdt::parse(&blob[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
    }

    #[test]
    fn corrupting_any_byte_never_panics() {
        let blob = tiny_dtb();
        for i in 0..blob.len() {
            for value in [0x00, 0x01, 0x03, 0x09, 0xff] {
                let mut bad = blob.clone();
                bad[i] = value;
                let _ = Fdt::parse(&bad);
            }
        }
    }

    #[test]
    fn rejects_a_dts_text_file() {
        let err =
            Fdt::parse(b"/dts-v1/;\n/ { compatible = \"x\"; };\n padding padding").unwrap_err();
        assert!(matches!(err, FdtError::BadMagic { .. }));
    }
}
