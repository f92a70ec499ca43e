//! What every registry entry (a codec, an output format) says of itself: its name on the
//! command line and in reports, and its line for `--help`.

/// A registry entry's name and `--help` line, declared once in [`Named::id`].
pub trait Named {
    /// Its name and its line for `--help`.
    fn id(&self) -> (&'static str, &'static str);
    /// Its name on the command line and in reports.
    fn name(&self) -> &'static str {
        self.id().0
    }
    /// Its line for `--help`.
    fn about(&self) -> &'static str {
        self.id().1
    }
}

/// `impl Named for $ty`: its name and `--help` line, in one line of the entry's file.
macro_rules! named {
    ($ty:ty, $name:expr, $about:expr $(,)?) => {
        impl $crate::named::Named for $ty {
            fn id(&self) -> (&'static str, &'static str) {
                ($name, $about)
            }
        }
    };
}
pub(crate) use named;
