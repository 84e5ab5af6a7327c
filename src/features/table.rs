//! Per-key state stored densely: a key → index map over one `Vec` of states. A hash table
//! holding large states inline grows to about twice its entries; the states here sit packed and
//! only the small index is sparse (measured for cards in BENCHMARKS.md).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct DenseTable<K, V> {
    index: HashMap<K, u32>,
    values: Vec<V>,
}

impl<K, V> Default for DenseTable<K, V> {
    fn default() -> Self {
        Self { index: HashMap::new(), values: Vec::new() }
    }
}

impl<K: Hash + Eq, V: Default> DenseTable<K, V> {
    /// The state of `key`, created empty on first use (`make_key` only runs then).
    pub fn get_or_insert<Q>(&mut self, key: &Q, make_key: impl FnOnce(&Q) -> K) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                self.values.push(V::default());
                let i = (self.values.len() - 1) as u32;
                self.index.insert(make_key(key), i);
                i
            }
        };
        &mut self.values[i as usize]
    }

    /// Keeps the states `keep` accepts (and shrinks the index when most went).
    pub fn retain(&mut self, keep: impl Fn(&V) -> bool)
    where
        V: Clone,
    {
        let old = std::mem::take(&mut self.values);
        let mut kept = Vec::with_capacity(old.len());
        self.index.retain(|_, i| {
            let v = &old[*i as usize];
            if !keep(v) {
                return false;
            }
            kept.push(v.clone());
            *i = (kept.len() - 1) as u32;
            true
        });
        self.values = kept;
        if self.index.capacity() > 4 * self.index.len() + 64 {
            self.index.shrink_to_fit();
        }
    }

    pub fn values(&self) -> &[V] {
        &self.values
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Bytes of the index (keys' own heap not counted).
    pub fn index_bytes(&self) -> usize {
        self.index.capacity() * (std::mem::size_of::<K>() + std::mem::size_of::<u32>() + 1)
    }
}
