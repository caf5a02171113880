//! Spreadsheet-column style job keys: `A` … `Z`, `AA` … `ZZ`, `AAA` …

/// The `index`-th key (from 0) over `alphabet`: every one-letter key, then
/// every two-letter key, and so on.
pub fn job_key(mut index: usize, alphabet: &[char]) -> String {
    let base = alphabet.len();
    if base == 0 {
        return String::new();
    }
    let mut length = 1;
    let mut count = base;
    while index >= count {
        index -= count;
        length += 1;
        count = count.saturating_mul(base);
    }
    let mut letters = vec![alphabet[0]; length];
    for slot in letters.iter_mut().rev() {
        *slot = alphabet[index % base];
        index /= base;
    }
    letters.into_iter().collect()
}

/// The key alphabet the tools use.
pub const LETTERS: [char; 26] = [
    'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S',
    'T', 'U', 'V', 'W', 'X', 'Y', 'Z',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_sequence() {
        let keys: Vec<String> = (0..8).map(|i| job_key(i, &['A', 'B'])).collect();
        assert_eq!(keys, ["A", "B", "AA", "AB", "BA", "BB", "AAA", "AAB"]);
        assert_eq!(job_key(0, &LETTERS), "A");
        assert_eq!(job_key(25, &LETTERS), "Z");
        assert_eq!(job_key(26, &LETTERS), "AA");
        assert_eq!(job_key(26 + 26 * 26, &LETTERS), "AAA");
    }
}
