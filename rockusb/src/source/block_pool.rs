//! Buffers for decoded blocks, handed back for reuse once the last reader is done.
//!
//! Decoded blocks (1 MiB each for Talos images) are made on decoder threads and dropped on
//! whichever board's thread wrote them last. Left to the allocator, that churn of large
//! buffers across threads leaves memory behind in per-thread arenas; a station flashing
//! eight boards then holds far more than it uses. Reusing the buffers keeps what the
//! process holds at what the decoder and the boards actually have in hand.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// Spare block buffers, at most `keep` of them.
#[derive(Debug)]
pub struct BlockPool {
    spare: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BlockPool {
    /// A pool that keeps up to `keep` spare buffers (more are freed).
    pub fn new(keep: usize) -> Arc<BlockPool> {
        Arc::new(BlockPool {
            spare: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// A spare buffer (empty, with its capacity), or a new empty one.
    pub fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Spare buffers held now.
    pub fn spare(&self) -> usize {
        self.lock().len()
    }

    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spare = self.lock();
        if spare.len() < self.keep && buf.capacity() > 0 {
            spare.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A decoded block's bytes; the buffer goes back to its pool when this is dropped.
#[derive(Debug)]
pub struct PooledBlock {
    data: Vec<u8>,
    pool: Option<Arc<BlockPool>>,
}

impl PooledBlock {
    /// `data`, to be returned to `pool` when dropped.
    pub fn new(data: Vec<u8>, pool: &Arc<BlockPool>) -> Self {
        PooledBlock {
            data,
            pool: Some(pool.clone()),
        }
    }

    /// `data`, freed as usual when dropped.
    pub fn unpooled(data: Vec<u8>) -> Self {
        PooledBlock { data, pool: None }
    }
}

impl Deref for PooledBlock {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for PooledBlock {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.put(std::mem::take(&mut self.data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_block_lends_its_buffer_to_the_next_decode_and_spares_are_capped() {
        let pool = BlockPool::new(1);
        let mut buf = pool.take();
        buf.extend_from_slice(&[7u8; 4096]);
        let address = buf.as_ptr();
        let block = Arc::new(PooledBlock::new(buf, &pool));
        let reader = block.clone();
        drop(block);
        assert_eq!(pool.spare(), 0, "a reader still holds it");
        assert_eq!(&reader[..2], &[7, 7]);
        drop(reader);
        assert_eq!(pool.spare(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same buffer, reused");
        assert!(again.is_empty() && again.capacity() >= 4096);

        // Beyond `keep` spare buffers, a returned one is freed.
        let a = PooledBlock::new(vec![1u8; 16], &pool);
        let b = PooledBlock::new(vec![2u8; 16], &pool);
        drop((a, b));
        assert_eq!(pool.spare(), 1);
        drop(PooledBlock::unpooled(vec![3u8; 16]));
        assert_eq!(pool.spare(), 1);
    }
}
