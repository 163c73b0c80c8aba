"""Linear models on basis features, fitted by gradient steps or in closed form."""

from __future__ import annotations

import torch
from torch import nn

from rlapprox.core.devices import physical_memory_bytes
from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.features.base import FeatureMap


class LinearApproximator(nn.Module):
    r"""A linear model on fixed basis features.

    .. math:: f_\theta(x) = \theta^\top \beta(\mathrm{norm}(x)) + b

    The weights start at zero, so a fresh model predicts 0 everywhere (U₀ = 0 in value
    iteration). Train it like any ``nn.Module``, or solve it exactly with
    :meth:`fit_least_squares`.

    Args:
        features: the basis β, which expects inputs in the unit box.
        out_dim: number of outputs (1 for U(s), the number of actions for Q(s, ·)).
        bias: add a learned constant per output.
        normalizer: optional module applied to the raw input before ``features``, usually a
            :class:`~rlapprox.approximators.BoxNormalizer`.

    Shape:
        - Input: ``(B, in_dim)``.
        - Output: ``(B, out_dim)``.

    Examples:
        >>> from rlapprox.features import SineBasis
        >>> model = LinearApproximator(SineBasis(1, order=3), out_dim=1)
        >>> x = torch.linspace(0, 1, 50, dtype=torch.float64).unsqueeze(1)
        >>> _ = model.double().fit_least_squares(x, torch.sin(3 * torch.pi * x))
        >>> round(model.linear.weight[0, 2].item(), 6)
        1.0
    """

    def __init__(
        self,
        features: FeatureMap,
        out_dim: int,
        bias: bool = True,
        normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.out_dim = check_positive_int("out_dim", out_dim)
        self.normalizer = normalizer
        self.features = features
        self.linear = nn.Linear(features.num_features, out_dim, bias=bias)
        nn.init.zeros_(self.linear.weight)
        if bias:
            nn.init.zeros_(self.linear.bias)

    @property
    def in_dim(self) -> int:
        """Number of input dimensions."""
        return self.features.in_dim

    @property
    def has_bias(self) -> bool:
        """Whether the model adds a learned constant per output (the last row of θ)."""
        return self.linear.bias is not None

    @property
    def has_vertices(self) -> bool:
        """Whether the features are a grid with vertices (multilinear interpolation)."""
        return hasattr(self.features, "vertices")

    def feature_matrix(
        self, x: torch.Tensor, dtype: torch.dtype | None = torch.float64, sparse: bool = False
    ) -> torch.Tensor:
        """Features β(norm(x)) of raw inputs: the design matrix Φ of linear algebra on the model.

        Args:
            x: raw inputs ``(B, in_dim)``, normalised here.
            dtype: compute in this dtype (``x`` is cast first); ``None`` keeps ``x``'s dtype.
            sparse: return a sparse COO matrix where the feature map offers ``sparse_forward``
                (multilinear grids: ``2**in_dim`` nonzeros per row); dense otherwise.

        Returns:
            Φ, shape ``(B, num_features)``, without the bias column (see :attr:`has_bias`).
        """
        if dtype is not None:
            x = x.to(dtype)
        if self.normalizer is not None:
            x = self.normalizer(x)
        sparse_features = getattr(self.features, "sparse_forward", None) if sparse else None
        phi = sparse_features(x) if sparse_features is not None else self.features(x)
        return phi if dtype is None else phi.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the model on ``(B, in_dim)`` inputs; returns ``(B, out_dim)``."""
        sparse_features = getattr(self.features, "sparse_forward", None)
        if sparse_features is None:
            return self.linear(self.feature_matrix(x, dtype=None))
        # Grids of many features with few nonzero per row (multilinear interpolation).
        z = self.normalizer(x) if self.normalizer is not None else x
        out = torch.sparse.mm(sparse_features(z), self.linear.weight.T)
        return out if self.linear.bias is None else out + self.linear.bias

    def get_theta(self) -> torch.Tensor:
        """All weights as one float64 matrix θ, a copy.

        Returns:
            ``(num_features [+ 1], out_dim)``: column j holds output j's feature weights, then
            its bias in the last row if :attr:`has_bias`; f(x) = [Φ(x), 1] θ.
        """
        theta = self.linear.weight.detach().T.to(torch.float64)
        if self.linear.bias is None:
            return theta.clone()
        return torch.cat([theta, self.linear.bias.detach().to(torch.float64).unsqueeze(0)])

    @torch.no_grad()
    def set_theta(self, theta: torch.Tensor) -> None:
        """Set the weights from θ, cast to the parameters' dtype.

        Args:
            theta: ``(num_features [+ 1], out_dim)``, laid out as :meth:`get_theta` returns it.
        """
        num_features = self.linear.in_features
        self.linear.weight.copy_(theta[:num_features].T.to(self.linear.weight.dtype))
        if self.linear.bias is not None:
            self.linear.bias.copy_(theta[num_features].to(self.linear.bias.dtype))

    def input_vertices(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The feature grid's vertices in raw input coordinates, in feature order.

        Where the features interpolate on a grid, feature j is 1 at vertex j and 0 at the
        others, so θ holds the model's values at these points.

        Args:
            dtype: floating dtype of the result.

        Returns:
            ``(num_features, in_dim)``, on the model's device.

        Raises:
            ValueError: if the features have no vertices (:attr:`has_vertices`), or there is
                no box normaliser (with ``low``/``high`` bounds) to map them from the unit box.
        """
        if not self.has_vertices:
            raise ValueError(f"{type(self.features).__name__} features have no grid vertices")
        low = getattr(self.normalizer, "low", None)
        high = getattr(self.normalizer, "high", None)
        if low is None or high is None:
            raise ValueError(
                "the grid vertices in input coordinates need a BoxNormalizer (low/high bounds), "
                f"got normalizer={type(self.normalizer).__name__}"
            )
        unit = self.features.vertices(dtype)
        low, high = low.to(unit.device, dtype), high.to(unit.device, dtype)
        return low + unit * (high - low)

    @torch.no_grad()
    def fit_least_squares(
        self, x: torch.Tensor, y: torch.Tensor, ridge: float = 0.0
    ) -> LinearApproximator:
        r"""Set the weights to the exact (ridge) least-squares solution.

        .. math:: \theta^* = \arg\min_\theta \|\Phi\theta - y\|^2 + \lambda\|w\|^2

        The solve runs in float64 whatever the parameter dtype. With ``ridge=0`` it is the
        minimum-norm solution, so redundant columns (a constant feature beside the bias) are
        fine. The bias, if any, is not penalised.

        Args:
            x: inputs, shape ``(N, in_dim)``.
            y: targets, shape ``(N,)`` or ``(N, out_dim)``.
            ridge: the L2 penalty λ ≥ 0 on the feature weights.

        Returns:
            ``self``, fitted in place.

        Raises:
            ValueError: for a negative ridge, targets of the wrong width, or dense work on
                the CPU larger than its memory.
        """
        check_range("ridge", ridge, low=0.0)
        targets = y.reshape(len(y), -1).double()
        if targets.shape[1] != self.out_dim:
            raise ValueError(
                f"y has {targets.shape[1]} columns but the model has out_dim={self.out_dim}"
            )
        has_bias = self.has_bias
        if x.device.type == "cpu":  # Φ, its float64 copy and LAPACK's working copies
            check_dense_memory(len(x), self.linear.in_features + int(has_bias), 3, "least squares")
        phi = self.feature_matrix(x, dtype=None).double()
        phi = with_bias_column(phi) if has_bias else phi
        if ridge > 0.0 or phi.device.type != "cpu":
            theta = least_squares_operator(phi, ridge, num_unpenalised=int(has_bias)) @ targets
        else:
            theta = torch.linalg.lstsq(phi, targets, driver="gelsd").solution
        self.set_theta(theta)
        return self


def check_dense_memory(rows: int, cols: int, matrices: int, what: str) -> None:
    """Refuse dense float64 work that would not fit in this machine's memory.

    Past the physical memory the OS kills the process without a word; this says why first.

    Args:
        rows: rows of each matrix.
        cols: columns of each matrix.
        matrices: how many ``(rows, cols)`` float64 matrices the work holds at once.
        what: what needs them, the start of the message.

    Raises:
        ValueError: naming the matrices, the memory they take and what to change.
    """
    need = matrices * 8 * rows * cols
    memory = physical_memory_bytes()
    if memory is not None and need > memory:
        raise ValueError(
            f"{what} needs {matrices} dense {rows:,} × {cols:,} float64 matrices, about "
            f"{need / 2**30:,.0f} GiB, more than this machine's {memory / 2**30:,.0f} GiB; use "
            "fewer features (fewer tiles or tilings, a hash_size, or a low-order basis such as "
            f"linear_fourier){' or fewer samples' if rows != cols else ''}"
        )


def with_bias_column(phi: torch.Tensor) -> torch.Tensor:
    """Append a column of ones to a feature matrix ``(N, k)``, giving ``(N, k + 1)``."""
    return torch.cat([phi, torch.ones_like(phi[:, :1])], dim=1)


def least_squares_operator(
    phi: torch.Tensor, ridge: float = 0.0, num_unpenalised: int = 0
) -> torch.Tensor:
    r"""The matrix M with θ = M y solving ``min ‖Φθ - y‖² + ridge ‖θ[:-num_unpenalised]‖²``.

    Iterative algorithms (fitted value and Q iteration) regress new targets on the same
    features again and again; factoring once makes each fit one matrix-vector product. With
    ``ridge=0`` it is the pseudo-inverse: the minimum-norm solution, also on CUDA, whose
    ``lstsq`` handles only full-rank systems.

    Args:
        phi: feature matrix ``(N, k)``, dense.
        ridge: L2 penalty λ ≥ 0.
        num_unpenalised: trailing columns left out of the penalty (a bias column).

    Returns:
        ``(k, N)``.

    Raises:
        ValueError: for dense work on the CPU larger than its memory.
    """
    if phi.device.type == "cpu":  # host memory; a GPU says for itself when it runs out
        check_dense_memory(*phi.shape, 3, "the least-squares operator")  # Φ, Φ⁺, the SVD's
        if ridge > 0.0:  # ΦᵀΦ, the penalty's diagonal and the LU factors
            check_dense_memory(phi.shape[1], phi.shape[1], 3, "the ridge operator")
    if ridge > 0.0:
        penalty = torch.full((phi.shape[1],), ridge, dtype=phi.dtype, device=phi.device)
        if num_unpenalised:
            penalty[-num_unpenalised:] = 0.0
        return torch.linalg.solve(phi.T @ phi + torch.diag(penalty), phi.T)
    return torch.linalg.pinv(phi)
