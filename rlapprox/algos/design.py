"""Design matrices Φ of linear models, sparse where the features are, and LSTD's products.

Tile coding and multilinear grids have a few nonzero features per row (``sparse_forward``):
Φ is then a sparse COO matrix, and the products least-squares TD needs — ``XᵀY``, ``X M``,
row subsets and row scalings — never build the dense ``(N, k)`` matrix (8 tilings of 9⁴ tiles
over CartPole's 4 inputs are 52,488 features: 21 GB dense for 50k rows in float64, 3.2 MB
sparse). Dense features go through the same functions as dense tensors.
"""

from __future__ import annotations

import warnings

import torch

from rlapprox.approximators.linear import LinearApproximator, with_bias_column


def design_matrix(model: LinearApproximator, obs: torch.Tensor) -> torch.Tensor:
    """Φ of raw observations in float64 on the CPU, with the bias column if the model has one.

    Returns:
        ``(N, k [+ 1])``: sparse COO (coalesced) where the features offer ``sparse_forward``,
        else dense.
    """
    with torch.no_grad():
        phi = model.feature_matrix(obs.cpu(), sparse=True)
    if not phi.is_sparse:
        return with_bias_column(phi) if model.has_bias else phi
    phi = phi.coalesce()
    if model.has_bias:
        rows = torch.arange(phi.shape[0])
        bias = torch.stack([rows, torch.full_like(rows, phi.shape[1])])
        indices = torch.cat([phi.indices(), bias], dim=1)
        values = torch.cat([phi.values(), torch.ones(len(rows), dtype=phi.dtype)])
        shape = (phi.shape[0], phi.shape[1] + 1)
        phi = torch.sparse_coo_tensor(indices, values, shape, check_invariants=False)
    return phi.coalesce()


def take_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a dense or sparse ``(N, k)`` matrix."""
    return x.index_select(0, index).coalesce() if x.is_sparse else x[index]


def scale_rows(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``diag(scale) X`` for ``scale`` ``(N,)``, as sparse as ``X``."""
    if not x.is_sparse:
        return scale.unsqueeze(1) * x
    values = x.values() * scale[x.indices()[0]]
    return torch.sparse_coo_tensor(x.indices(), values, x.shape, check_invariants=False).coalesce()


def transpose_times(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``XᵀY`` as a dense matrix, for dense or sparse ``X`` ``(N, k)`` and ``Y`` ``(N, m)``."""
    if x.is_sparse:
        with warnings.catch_warnings():
            # sparse x sparse goes through torch's CSR kernels, which warn that CSR is in beta
            warnings.filterwarnings("ignore", "Sparse CSR tensor support", UserWarning)
            product = torch.sparse.mm(x.t().coalesce(), y)
        return product.to_dense() if product.is_sparse else product
    if y.is_sparse:
        return transpose_times(y, x).T
    return x.T @ y


def times(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``X M`` as a dense matrix, for dense or sparse ``X`` ``(N, k)`` and dense ``M``."""
    return torch.sparse.mm(x, matrix) if x.is_sparse else x @ matrix


def dense(x: torch.Tensor) -> torch.Tensor:
    """``X`` as a dense matrix."""
    return x.to_dense() if x.is_sparse else x
