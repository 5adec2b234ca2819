//! A generic image turned into a board image as it is read (`rockusb flash --adapt`,
//! `rockusb image adapt`): the plan comes from `rockusb_images::adapt`, and the result is
//! an [`ImageSource`] like any raw file, so the flasher's checks, sparse plan, crash-safe
//! order and verification apply to the adapted bytes unchanged, with no temporary file.

use super::{Format, ImageAt, ImageSource};
use rockusb_images::adapt::{self, AdaptError, AdaptPlan, AdaptRequest, OutputPlan};
use rockusb_images::read_at::ReadAt;
use std::io::{self, Read};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AdaptSourceError {
    #[error(
        "{name} is {format} data, which can only be decoded from its start; adapting first \
         reads the partition table at both ends and the EFI partition's FAT. Decompress it \
         to a .raw file first, or use the .raw.xz that Talos publishes (its blocks can be \
         read one by one). Nothing was written"
    )]
    NoRandomAccess { name: String, format: Format },
    #[error("{name}: {error}. Nothing was written")]
    Plan { name: String, error: AdaptError },
}

impl AdaptSourceError {
    /// The image is already in the board's layout: there is nothing to adapt.
    pub fn is_already_adapted(&self) -> bool {
        matches!(self, AdaptSourceError::Plan { error, .. } if error.is_already_adapted())
    }
}

/// An adapted image, and the plan that says what adapting changed.
pub struct Adapted {
    pub source: ImageSource,
    pub plan: AdaptPlan,
    /// Random access to the generic image (for reading its UKIs, for example).
    pub original: ImageAt,
}

/// Random access to the image `base` decodes, and a second, independent one for the
/// in-order pass (so the two do not evict each other's cached .xz blocks).
fn random_readers(base: &ImageSource) -> Result<(ImageAt, ImageAt), AdaptSourceError> {
    match (base.random_reader(), base.random_reader()) {
        (Some(random), Some(in_order)) => Ok((random, in_order)),
        _ => Err(AdaptSourceError::NoRandomAccess {
            name: base.name.clone(),
            format: base.format,
        }),
    }
}

/// Plans the adaptation of `base` and returns the adapted image as a source.
pub fn adapt_source(
    base: ImageSource,
    request: &AdaptRequest,
) -> Result<Adapted, AdaptSourceError> {
    let (random, in_order) = random_readers(&base)?;
    let plan_error = |error| AdaptSourceError::Plan {
        name: base.name.clone(),
        error,
    };
    let len = base.image_len.ok_or_else(|| {
        plan_error(AdaptError::Read {
            what: "the length".into(),
            source: io::Error::new(io::ErrorKind::InvalidData, "it is not known up front"),
        })
    })?;
    let plan = adapt::plan(&random, len, request).map_err(plan_error)?;
    let output = Arc::new(plan.output.clone());
    let source = ImageSource {
        name: format!(
            "{} (adapted for the {})",
            base.name, request.layout.display_name
        ),
        format: Format::Raw,
        image_len: Some(output.len),
        stored_len: base.stored_len,
        xz_streams: 1,
        random_access: Some(ImageAt::new(AdaptedAt {
            plan: output.clone(),
            source: random.clone(),
        })),
        xz_blocks: None,
        shared: None,
        input: Box::new(AdaptedReader {
            plan: output,
            source: in_order,
            position: 0,
        }),
    };
    Ok(Adapted {
        source,
        plan,
        original: random,
    })
}

/// The adapted image by offset.
struct AdaptedAt {
    plan: Arc<OutputPlan>,
    source: ImageAt,
}

impl ReadAt for AdaptedAt {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.plan.read_output(&mut &self.source, offset, buf)
    }
}

/// The adapted image front to back; copied ranges come in source order, so the source is
/// read in one forward pass.
struct AdaptedReader {
    plan: Arc<OutputPlan>,
    source: ImageAt,
    position: u64,
}

impl Read for AdaptedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.plan.len.saturating_sub(self.position);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.plan
            .read_output(&mut &self.source, self.position, &mut buf[..n])?;
        self.position += n as u64;
        Ok(n)
    }
}
