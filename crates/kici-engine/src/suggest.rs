//! "Did you mean …?" suggestions for names users mistype (jobs in `needs`, `KICI_*` variables).

/// The candidate within edit distance `max(2, len/4)` of `wanted`, closest first.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 4).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("tset", ["build", "test"]), Some("test"));
        assert_eq!(closest("deploy", ["build", "test"]), None);
        assert_eq!(closest("KICI_PROT", ["KICI_PORT", "KICI_DATA_DIR"]), Some("KICI_PORT"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
