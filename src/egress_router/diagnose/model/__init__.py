"""The pure part of diagnose: observations in, findings and a verdict out."""
