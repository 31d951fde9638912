// Package spectrum analyses the spectrum of a Hessian H = ∇²L that is known
// only through exact Hessian-vector products: the top and bottom
// eigenvalues and eigenvectors, the trace, the eigenvalue density, and the
// same quantities for each parameter block (layer). It is the analysis side
// of PyHessian, corrected where PyHessian is biased, and it works with any
// [Operator] (Dim and HVPFlat over the flat parameter vector in model order),
// such as the hessian package's Engine, a [*Dense] matrix, or a
// dataset-level average ([Average], [Sweep]).
//
// # Eigenvalues
//
// [PowerIteration] repeats v ← Hv/‖Hv‖ with Gram–Schmidt deflation against
// the eigenvectors already found. It converges to the eigenvalue of largest
// magnitude |λ| (LargestMagnitude, what PyHessian's eigenvalues() returns:
// for an indefinite H it can be the most negative eigenvalue), at the rate
// |λ₂/λ₁| per product. Normalisation is by ‖v‖; PyHessian's v/(‖v‖ + 1e-6)
// biases its Rayleigh quotient low by about 2e-6 relative. For the
// algebraic ends it iterates on ±H + |λ_m|·I, which is positive
// semidefinite.
//
// [Lanczos] builds an orthonormal basis V_m of the Krylov space
// span{v, Hv, …, H^{m−1}v} with the three-term recurrence
//
//	β_j v_{j+1} = Hv_j − α_j v_j − β_{j−1} v_{j−1},  α_j = v_jᵀHv_j,
//
// re-orthogonalising every new vector against all previous ones (full
// reorthogonalisation, so no spurious copies of converged eigenvalues), and
// diagonalises the tridiagonal T_m = V_mᵀHV_m = SΘSᵀ. The Ritz pairs
// (θ_k, V_m s_k) approximate both ends of the spectrum at once, with residual
// ‖H y_k − θ_k y_k‖ = β_m |S_{mk}|; eigenvalue errors are bounded by
// residual²/gap. It gives the largest algebraic eigenvalues (what the golden
// files call top_eigenvalues), the smallest, or those of largest magnitude.
//
// Both methods stop only when the eigenvalue has settled (relative change ≤
// Tol) and the residual is small (≤ ResidualTol·‖H‖ estimate); each pair
// reports Converged, Iterations and the explicit Residual. When the budget
// runs out, the last estimates are returned with Converged false and an
// error wrapping [ErrNotConverged] ([*NotConvergedError] holds the last
// estimate and residual).
//
// # Trace
//
// [Hutchinson] uses tr(H) = E[zᵀHz] for Rademacher z (entries ±1), whose
// sample variance is 2(‖H‖_F² − Σᵢ H_ii²). [HutchPP] (Hutch++, Meyer, Musco,
// Musco & Woodruff 2021) first takes the trace of H exactly on a k-column
// random sketch of its range, tr(QᵀHQ), and runs Hutchinson only on the
// deflated (I−QQᵀ)H(I−QQᵀ): far fewer products for the same standard error
// when a few eigenvalues dominate, exact when rank(H) ≤ k. [Trace] picks one
// by [TraceConfig.Method]. Both report the estimate, its standard error s/√n,
// the samples, the products used and Scale, an estimate of ‖H‖_F
// (E‖Hz‖² = ‖H‖_F²), and stop once StdErr ≤ Tol·max(|estimate|, Scale)
// (after at least MinSamples ≥ 2) or at MaxSamples. Relative to the trace
// alone the rule could never be met on a Hessian whose trace is near zero
// next to its size; relative to ‖H‖_F it always can (about 2/Tol² probes).
//
// # Spectral density
//
// [SLQ] (stochastic Lanczos quadrature) approximates the density
// φ(t) = (1/d)Σᵢ δ(t − λᵢ): for a unit probe v = z/√d, m Lanczos steps give
// the Gauss quadrature rule vᵀf(H)v ≈ Σ_k τ_k f(θ_k), exact for polynomials
// of degree < 2m, with nodes θ_k (eigenvalues of T_m) and weights
// τ_k = S_{1k}² (squared first components of T_m's eigenvectors). Averaging
// over probes gives E[vᵀf(H)v] = (1/d)tr f(H) = ∫f dφ. [SLQResult.Density]
// smooths the rules with Gaussians on a grid as PyHessian's density_generate
// and normalises to unit area; [WriteDensityPlot] draws it (PNG, SVG, …).
//
// # Blocks and datasets
//
// [BlockOperator] restricts H to a parameter block b: H_bb·v_b =
// (H·[0 … v_b … 0])_b, the diagonal block of H for one layer. Each product
// costs one full HVP. [Analyze] runs the chosen analyses for the whole model
// and every block. [Average] and [Sweep] form the dataset-level Hessian
// Σ_b n_b·H_b / Σ_b n_b over batches, as PyHessian does with a dataloader.
//
// [BuildDense] assembles H from d products with unit vectors (checking
// symmetry) for small models and tests; [Dense] gives the exact diagonal,
// trace, Frobenius norm and full eigendecomposition (gonum mat.EigenSym).
//
// # Randomness and cost
//
// Starting vectors and probes are drawn from an injected [Rand] (for example
// rand.New(rand.NewPCG(seed, seq)) of math/rand/v2), so results are
// reproducible; nothing in this package holds global state. Lanczos and SLQ
// keep m vectors of length d; all arithmetic is float64. No function is safe
// for concurrent use on the same operator.
package spectrum
