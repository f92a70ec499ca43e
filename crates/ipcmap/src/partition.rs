//! Partitioning: how `n` elements are cut into parts (`--splits`) and parts grouped into tasks
//! (`--chunksize`).
//!
//! Parts follow `numpy.array_split`: the first `n % splits` parts get one element more.

use std::ops::Range;

/// Element ranges of `splits` parts over `n` elements, like `numpy.array_split(data, splits)`.
///
/// Parts may be empty when `splits > n` (numpy does the same); configuration refuses that case.
pub fn array_split(n: usize, splits: usize) -> Vec<Range<usize>> {
    assert!(splits > 0, "splits must be positive");
    let base = n / splits;
    let extra = n % splits;
    let mut start = 0;
    (0..splits)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

/// One unit of work sent to a worker in one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Position of the task in scatter order; results are placed by it.
    pub index: usize,
    /// Element ranges this task covers, consecutive; one per part (split) or one in all (item).
    pub parts: Vec<Range<usize>>,
}

impl Task {
    /// All elements the task covers.
    pub fn span(&self) -> Range<usize> {
        let start = self.parts.first().map_or(0, |r| r.start);
        let end = self.parts.last().map_or(start, |r| r.end);
        start..end
    }

    /// Number of elements the task covers.
    pub fn len(&self) -> usize {
        self.span().len()
    }

    /// True when the task covers no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Groups `parts` into tasks of `chunksize` consecutive parts, like `Pool.map(f, parts, chunksize)`.
pub fn group(parts: Vec<Range<usize>>, chunksize: usize) -> Vec<Task> {
    assert!(chunksize > 0, "chunksize must be positive");
    let mut tasks = Vec::with_capacity(parts.len().div_ceil(chunksize));
    let mut iter = parts.into_iter().peekable();
    while iter.peek().is_some() {
        let parts: Vec<_> = iter.by_ref().take(chunksize).collect();
        tasks.push(Task { index: tasks.len(), parts });
    }
    tasks
}

/// Tasks of `chunksize` items each over `n` elements (item mode): one range per task.
pub fn item_tasks(n: usize, chunksize: usize) -> Vec<Task> {
    assert!(chunksize > 0, "chunksize must be positive");
    (0..n.div_ceil(chunksize))
        .map(|index| {
            let start = index * chunksize;
            let end = (start + chunksize).min(n);
            Task { index, parts: std::iter::once(start..end).collect() }
        })
        .collect()
}

/// `multiprocessing.Pool.map`'s default chunksize: `ceil(n / (4 * workers))`, at least 1.
pub fn pool_map_default_chunksize(n: usize, workers: usize) -> usize {
    n.div_ceil(4 * workers.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_split_gives_the_first_parts_one_more() {
        let parts = array_split(10, 3);
        assert_eq!(parts, vec![0..4, 4..7, 7..10]);
    }

    #[test]
    fn array_split_covers_everything_once() {
        for (n, s) in [(100_003, 64), (1, 1), (0, 4), (64, 64), (7, 9)] {
            let parts = array_split(n, s);
            assert_eq!(parts.len(), s);
            assert_eq!(parts.iter().map(|r| r.len()).sum::<usize>(), n);
            for pair in parts.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
        }
    }

    #[test]
    fn group_makes_tasks_of_chunksize_parts() {
        let tasks = group(array_split(100, 10), 4);
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].span(), 0..40);
        assert_eq!(tasks[2].span(), 80..100);
        assert_eq!(tasks[2].parts.len(), 2);
    }

    #[test]
    fn item_tasks_cover_n() {
        let tasks = item_tasks(10, 4);
        assert_eq!(tasks.iter().map(Task::span).collect::<Vec<_>>(), vec![0..4, 4..8, 8..10]);
        assert!(item_tasks(0, 4).is_empty());
    }

    #[test]
    fn pool_map_rule_matches_cpython() {
        // CPython: chunksize, extra = divmod(len, 4 * processes); if extra: chunksize += 1
        assert_eq!(pool_map_default_chunksize(10_000_000, 4), 625_000);
        assert_eq!(pool_map_default_chunksize(10, 4), 1);
        assert_eq!(pool_map_default_chunksize(17, 2), 3);
    }
}
