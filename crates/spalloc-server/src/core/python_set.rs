//! The iteration order of a CPython 3.11 `set` of small-integer tuples.
//!
//! The reference server sends a job's BMP commands by iterating Python sets
//! of `(x, y, z)` boards and `(x, y, z, link)` links. For tuples of small
//! non-negative integers, hashing is not randomised, so that order is
//! deterministic: it follows from the tuple hash (xxHash-based since Python
//! 3.8), the set's open-addressing probe sequence and its resizing policy,
//! given the order the elements were added in. Reproducing it lets our
//! server talk to BMPs command for command as the reference does.

/// CPython's `_PyHASH_XXPRIME_1`.
const XXPRIME_1: u64 = 11_400_714_785_074_694_791;
/// CPython's `_PyHASH_XXPRIME_2`.
const XXPRIME_2: u64 = 14_029_467_366_897_019_727;
/// CPython's `_PyHASH_XXPRIME_5`.
const XXPRIME_5: u64 = 2_870_177_450_012_600_261;
/// Slots probed linearly before perturbation (`LINEAR_PROBES`).
const LINEAR_PROBES: usize = 9;
/// `PERTURB_SHIFT`.
const PERTURB_SHIFT: u32 = 5;
/// `PySet_MINSIZE`.
const MIN_SIZE: usize = 8;

/// `hash(tuple)` for a tuple of small non-negative ints (whose hash is
/// themselves), as a 64-bit CPython `Py_hash_t` bit pattern.
pub fn tuple_hash(items: &[u64]) -> u64 {
    let mut acc = XXPRIME_5;
    for &lane in items {
        acc = acc.wrapping_add(lane.wrapping_mul(XXPRIME_2));
        acc = acc.rotate_left(31);
        acc = acc.wrapping_mul(XXPRIME_1);
    }
    acc = acc.wrapping_add((items.len() as u64) ^ (XXPRIME_5 ^ 3_527_539));
    if acc == u64::MAX {
        // -1 is reserved for errors in CPython.
        return 1_546_275_796;
    }
    acc
}

/// Where `hash` lands in a table of `mask + 1` slots, probing as both
/// `set_add_entry` and `set_insert_clean` do (no deletions ever happen here).
fn free_slot(table: &[Option<usize>], mask: usize, hash: u64) -> usize {
    let mut perturb = hash;
    let mut i = (hash as usize) & mask;
    loop {
        if table[i].is_none() {
            return i;
        }
        if i + LINEAR_PROBES <= mask {
            for j in 1..=LINEAR_PROBES {
                if table[i + j].is_none() {
                    return i + j;
                }
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i
            .wrapping_mul(5)
            .wrapping_add(1)
            .wrapping_add(perturb as usize))
            & mask;
    }
}

/// The order a CPython set iterates `items`, given that they were added in
/// this order (duplicates, by hash-and-equality, are ignored as by `add`).
pub fn iteration_order<T: Clone + PartialEq>(items: &[T], hash: impl Fn(&T) -> u64) -> Vec<T> {
    let mut entries: Vec<(u64, T)> = Vec::with_capacity(items.len());
    let mut table: Vec<Option<usize>> = vec![None; MIN_SIZE];
    for item in items {
        let h = hash(item);
        if entries.iter().any(|(eh, e)| *eh == h && e == item) {
            continue;
        }
        let mask = table.len() - 1;
        let slot = free_slot(&table, mask, h);
        table[slot] = Some(entries.len());
        entries.push((h, item.clone()));
        let fill = entries.len();
        if fill * 5 >= mask * 3 {
            // set_table_resize(so, used > 50000 ? used * 2 : used * 4)
            let min_used = if fill > 50_000 { fill * 2 } else { fill * 4 };
            let mut size = MIN_SIZE;
            while size <= min_used {
                size <<= 1;
            }
            let mut bigger = vec![None; size];
            for index in table.iter().flatten() {
                let slot = free_slot(&bigger, size - 1, entries[*index].0);
                bigger[slot] = Some(*index);
            }
            table = bigger;
        }
    }
    table
        .iter()
        .flatten()
        .map(|index| entries[*index].1.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(items: &[&[u64]]) -> Vec<Vec<u64>> {
        let items: Vec<Vec<u64>> = items.iter().map(|i| i.to_vec()).collect();
        iteration_order(&items, |t| tuple_hash(t))
    }

    // Golden values printed by CPython 3.11.7 (the reference server's
    // interpreter): `hash((1, 2, 3))`, and `list(s)` after adding the
    // tuples in the order given.
    #[test]
    fn tuple_hashes_match_cpython() {
        assert_eq!(tuple_hash(&[1, 2, 3]) as i64, 529_344_067_295_497_451);
        assert_eq!(tuple_hash(&[0, 0, 0]) as i64, 3_010_437_511_937_009_226);
        assert_eq!(tuple_hash(&[]) as i64, 5_740_354_900_026_072_187);
    }

    #[test]
    fn six_boards_of_a_triad_pair_iterate_as_cpython() {
        // The whole 2x1 machine, in the reference's BFS order.
        let got = order(&[
            &[0, 0, 0],
            &[0, 0, 1],
            &[0, 0, 2],
            &[1, 0, 0],
            &[1, 0, 1],
            &[1, 0, 2],
        ]);
        let want: Vec<Vec<u64>> = CPYTHON_SIX.iter().map(|t| t.to_vec()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn one_boards_links_iterate_as_cpython() {
        let links: Vec<Vec<u64>> = (0..6).map(|l| vec![0, 0, 0, l]).collect();
        let got = iteration_order(&links, |t| tuple_hash(t));
        let want: Vec<Vec<u64>> = CPYTHON_LINKS.iter().map(|t| t.to_vec()).collect();
        assert_eq!(got, want);
    }

    /// Random insertion sequences (up to 120 tuples, with duplicates and
    /// resizes), against CPython 3.11.7's own answers.
    #[test]
    fn random_sequences_match_cpython() {
        let text = include_str!("python_set_golden.txt");
        let parse = |s: &str| -> Vec<Vec<u64>> {
            s.split(';')
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.split(',').map(|n| n.trim().parse().unwrap()).collect())
                .collect()
        };
        let mut checked = 0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            checked += 1;
            let (input, want) = line.split_once('|').unwrap();
            assert_eq!(
                iteration_order(&parse(input), |t| tuple_hash(t)),
                parse(want),
                "{input}"
            );
        }
        assert_eq!(checked, 80);
    }

    const CPYTHON_SIX: [[u64; 3]; 6] = [
        [1, 0, 1],
        [0, 0, 0],
        [1, 0, 0],
        [0, 0, 2],
        [1, 0, 2],
        [0, 0, 1],
    ];
    const CPYTHON_LINKS: [[u64; 4]; 6] = [
        [0, 0, 0, 1],
        [0, 0, 0, 4],
        [0, 0, 0, 3],
        [0, 0, 0, 0],
        [0, 0, 0, 2],
        [0, 0, 0, 5],
    ];
}
