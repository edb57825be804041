//! [`ClientMap`]: the concurrent map [`super::memory`] keeps clients in.
//!
//! This module owns splitting a store's clients into a fixed number of parts,
//! each its own sharded map, so that forgetting idle clients can visit one
//! part at a time and a table that grows rehashes one part's share of the
//! clients: a request that pays for either pays for an eighth of the map.
//! Which clients are idle, and when to sweep, is the store's business.

use dashmap::DashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;

/// How many parts a map is split into; a power of two.
pub(crate) const PARTS: usize = 8;

type Part<K, V> = DashMap<K, V, foldhash::fast::RandomState>;

/// Clients split into [`PARTS`] parts by a hash of their key.
pub(crate) struct ClientMap<K, V> {
    parts: Box<[Part<K, V>]>,
    /// Picks a key's part from the top bits of its hash; seeded apart from
    /// the parts' own hashers, so a part's keys still spread over all of its
    /// shards. foldhash's `quality` variant, whose final mix spreads every
    /// input bit into the top ones: with the `fast` variant, some seeds sent
    /// consecutive integer keys to six parts of eight, leaving two empty.
    pick: foldhash::quality::RandomState,
}

impl<K: Hash + Eq, V> Default for ClientMap<K, V> {
    fn default() -> Self {
        let shards = shards_per_part();
        ClientMap {
            parts: (0..PARTS)
                .map(|_| Part::with_hasher_and_shard_amount(Default::default(), shards))
                .collect(),
            pick: Default::default(),
        }
    }
}

/// A part by the top bits of a key's hash.
fn part_index(hash: u64) -> usize {
    (hash >> (u64::BITS - PARTS.trailing_zeros())) as usize
}

/// As many shard locks over all parts as one map would have by default (four
/// per core), and at least two per part.
fn shards_per_part() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        ((cores * 4).next_power_of_two() / PARTS).max(2)
    })
}

impl<K: Hash + Eq, V> ClientMap<K, V> {
    /// The part that holds `key`.
    pub(crate) fn part_of(&self, key: &K) -> &Part<K, V> {
        &self.parts[self.index_of(key)]
    }

    fn index_of(&self, key: &K) -> usize {
        part_index(self.pick.hash_one(key))
    }

    /// Keeps the entries of part `index` (modulo [`PARTS`]) for which `keep`
    /// says so, and returns the memory of the others.
    pub(crate) fn retain_part(&self, index: usize, keep: impl FnMut(&K, &mut V) -> bool) {
        let part = &self.parts[index % PARTS];
        part.retain(keep);
        part.shrink_to_fit();
    }

    /// How many entries the map holds.
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_every_part_and_a_part_is_swept_alone() {
        // Every map has its own random seed (and every process its own
        // global one): consecutive keys must spread evenly whatever the
        // seed, so try many, as fixed seeds of the same hash family.
        for seed in 0..4_000 {
            let pick = foldhash::quality::FixedState::with_seed(seed);
            let mut sizes = [0_usize; PARTS];
            for key in 0..8_000_u32 {
                sizes[part_index(pick.hash_one(key))] += 1;
            }
            assert!(
                sizes.iter().all(|&size| (800..1_200).contains(&size)),
                "seed {seed}: {sizes:?}"
            );
        }

        let map: ClientMap<u32, u64> = ClientMap::default();
        for key in 0..8_000 {
            map.part_of(&key).insert(key, u64::from(key));
        }
        assert_eq!(map.len(), 8_000);
        let sizes: Vec<usize> = map.parts.iter().map(Part::len).collect();

        map.retain_part(3, |_, _| false);
        assert_eq!(map.len(), 8_000 - sizes[3]);
        for key in 0..8_000 {
            let expected = (map.index_of(&key) != 3).then_some(u64::from(key));
            assert_eq!(map.part_of(&key).get(&key).map(|value| *value), expected);
        }
    }
}
