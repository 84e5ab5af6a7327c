//! A dense, row-major `f32` matrix: the one data shape every model in this crate takes.

use crate::{ModelError, Result};
use serde::{Deserialize, Serialize};

/// Row-major matrix of `n_rows × n_cols` finite `f32` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    data: Vec<f32>,
    n_cols: usize,
}

impl Matrix {
    /// An empty matrix with `n_cols` columns, ready for [`Matrix::push_row`].
    pub fn with_cols(n_cols: usize) -> Self {
        Self { data: Vec::new(), n_cols }
    }

    /// Wraps `data` (row-major); its length must be a multiple of `n_cols`.
    pub fn from_vec(data: Vec<f32>, n_cols: usize) -> Result<Self> {
        if n_cols == 0 || data.len() % n_cols != 0 {
            return Err(ModelError::InvalidData(format!("{} values do not form rows of {n_cols} columns", data.len())));
        }
        Ok(Self { data, n_cols })
    }

    /// Appends one row; it must have exactly `n_cols` values.
    pub fn push_row(&mut self, row: &[f32]) -> Result<()> {
        if row.len() != self.n_cols {
            return Err(ModelError::FeatureCount { expected: self.n_cols, got: row.len() });
        }
        self.data.extend_from_slice(row);
        Ok(())
    }

    pub fn n_rows(&self) -> usize {
        self.data.len().checked_div(self.n_cols).unwrap_or(0)
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`. Panics if `i >= n_rows()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.n_cols.max(1))
    }

    pub fn rows_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.data.chunks_exact_mut(self.n_cols.max(1))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// A new matrix holding the rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.n_cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Self { data, n_cols: self.n_cols }
    }

    /// Fails unless the matrix has at least one row and every value is finite.
    pub(crate) fn check_trainable(&self) -> Result<()> {
        self.check_rows_where(|v| v.is_finite())
    }

    /// Fails unless the matrix has at least one row and every value is finite or missing (NaN).
    pub(crate) fn check_trainable_allowing_nan(&self) -> Result<()> {
        self.check_rows_where(|v| v.is_finite() || v.is_nan())
    }

    fn check_rows_where(&self, ok: impl Fn(f32) -> bool) -> Result<()> {
        if self.n_rows() == 0 {
            return Err(ModelError::InvalidData("no rows to train on".into()));
        }
        if let Some(pos) = self.data.iter().position(|&v| !ok(v)) {
            return Err(ModelError::InvalidData(format!(
                "non-finite value at row {}, column {}",
                pos / self.n_cols,
                pos % self.n_cols
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_selection() {
        let m = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2).unwrap();
        assert_eq!(m.n_rows(), 3);
        assert_eq!(m.row(1), &[3.0, 4.0]);
        let s = m.select_rows(&[2, 0]);
        assert_eq!(s.as_slice(), &[5.0, 6.0, 1.0, 2.0]);
    }

    #[test]
    fn rejects_ragged_data_and_wrong_rows() {
        assert!(Matrix::from_vec(vec![1.0, 2.0, 3.0], 2).is_err());
        let mut m = Matrix::with_cols(2);
        assert!(m.push_row(&[1.0]).is_err());
        assert!(m.push_row(&[1.0, f32::NAN]).is_ok());
        assert!(m.check_trainable().is_err());
    }
}
