//! Verification: a parallel result must equal the sequential result bit for bit.

use crate::error::RunError;

/// Errors naming the first index where `got` differs from `expected` (compared as bits, so
/// NaNs compare equal to themselves and -0.0 differs from 0.0).
pub fn check(mode: &str, expected: &[f64], got: &[f64]) -> Result<(), RunError> {
    if expected.len() != got.len() {
        return Err(RunError::WrongLength {
            mode: mode.to_string(),
            got: got.len(),
            expected: expected.len(),
        });
    }
    match expected
        .iter()
        .zip(got)
        .position(|(a, b)| a.to_bits() != b.to_bits())
    {
        None => Ok(()),
        Some(index) => Err(RunError::Mismatch {
            mode: mode.to_string(),
            index,
            got: got[index],
            got_bits: got[index].to_bits(),
            expected: expected[index],
            expected_bits: expected[index].to_bits(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_differing_index() {
        let err = check("split", &[1.0, 2.0, 3.0], &[1.0, 2.5, 3.5]).unwrap_err();
        assert!(err.to_string().contains("index 1"), "{err}");
        assert!(check("split", &[0.0], &[-0.0]).is_err());
        assert!(check("split", &[f64::NAN], &[f64::NAN]).is_ok());
        assert!(check("split", &[1.0], &[]).is_err());
    }
}
